"""`shouwang fake-receiver`: a local stand-in for a chat vendor's robot (DingTalk, WeCom, Feishu) that
checks every message as the vendor would (signature, format, size, rate) and prints what the group
would see, links included: for trying the chat channels out without a real group."""

from __future__ import annotations

import json
import secrets
import sys
import time
from typing import Annotated, Any, Literal

import typer

from cli.fakes.dingtalk import FakeDingTalk
from cli.fakes.feishu import FakeFeishu
from cli.fakes.vendor_server import FakeVendor
from cli.fakes.wecom import FakeWeComRobot

Vendor = Literal["dingtalk", "wecom", "feishu"]
_TYPES = {"dingtalk": "dingtalk_robot", "wecom": "wecom_robot", "feishu": "feishu_bot"}


def fake_receiver(
    vendor: Annotated[Vendor, typer.Argument(help="dingtalk, wecom or feishu")],
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1)")] = 9100,
    secret: Annotated[
        str | None, typer.Option(help="The robot's signing secret (DingTalk SEC…, Feishu); default: a new one")
    ] = None,
) -> None:
    """Run a local robot of VENDOR on 127.0.0.1:PORT and print each message it accepts."""
    token = secrets.token_hex(16)
    fake: FakeVendor
    if vendor == "dingtalk":
        dingtalk = FakeDingTalk()
        dingtalk.start(port)
        secret = secret or "SEC" + secrets.token_hex(24)
        url = dingtalk.add_robot(token, secret=secret)
        fake = dingtalk
    elif vendor == "feishu":
        feishu = FakeFeishu()
        feishu.start(port)
        secret = secret or secrets.token_hex(12)
        url = feishu.add_bot(token, secret=secret)
        fake = feishu
    else:
        wecom = FakeWeComRobot()
        wecom.start(port)
        secret = None  # a WeCom group robot has no secret: its key is in the URL
        url = wecom.add_robot(token)
        fake = wecom
    channel: dict[str, Any] = {"type": _TYPES[vendor], "url": url}
    if secret:
        channel["secret"] = secret
    print(f"a {vendor} robot on {fake.url} (Ctrl-C to stop); register it as:", file=sys.stderr, flush=True)
    print(json.dumps({"channel": channel}, ensure_ascii=False), flush=True)
    shown, refused = 0, 0
    try:
        while True:
            time.sleep(0.2)
            for received in fake.messages[shown:]:
                print(json.dumps(received.message, ensure_ascii=False), flush=True)
            for code in fake.refusals[refused:]:
                print(f"refused with errcode {code}", file=sys.stderr, flush=True)
            shown, refused = len(fake.messages), len(fake.refusals)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
