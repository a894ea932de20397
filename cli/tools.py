"""`shouwang webhook-receiver`: a small receiver that verifies Standard Webhooks signatures and
prints each payload — for trying Shouwang out, and as a reference for integrators."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import typer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

_MAX_BODY = 1_000_000


def webhook_receiver(
    secret: Annotated[
        str, typer.Option(envvar="SHOUWANG_RECEIVER_SECRET", help="The recipient's signing secret (whsec_…)")
    ],
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1)")] = 9000,
) -> None:
    """Listen on 127.0.0.1:PORT, verify each webhook's signature, print its JSON body as one line."""
    verifier = Webhook(secret)
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > _MAX_BODY:
                self._answer(413)
                return
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            try:
                payload: Any = verifier.verify(body, headers)
            except WebhookVerificationError as exc:
                print(f"rejected: {exc}", file=sys.stderr, flush=True)
                self._answer(401)
                return
            message_id = headers.get("webhook-id", "")
            duplicate = message_id in seen  # a resend after a crash carries the same id
            seen.add(message_id)
            print(
                json.dumps({"webhook_id": message_id, "duplicate": duplicate, "payload": payload}, ensure_ascii=False),
                flush=True,
            )
            self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"verifying webhooks on http://127.0.0.1:{port}/ (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def sample_readings(
    meter_id: Annotated[str, typer.Argument(help="The meter whose history to make up.")],
    days: Annotated[int, typer.Option(min=1, max=200, help="Days of an ordinary routine.")] = 21,
    silence_h: Annotated[float, typer.Option(min=0, max=72, help="Hours without any water use at the end.")] = 20,
    tz: Annotated[str, typer.Option(help="The household's time zone.")] = "Asia/Shanghai",
    seed: Annotated[int, typer.Option(help="Random seed (the same seed, the same history).")] = 1,
) -> None:
    """Print a JSON array of hourly readings for POST /v1/readings: DAYS of an elder's routine
    (mornings, lunch, evenings, quiet nights) ending now, the last SILENCE_H hours without water."""
    import random
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    rng = random.Random(seed)
    zone = ZoneInfo(tz)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = days * 24 + int(silence_h)
    register, items = 1000.0, []
    usual = {6: 0.7, 7: 0.9, 8: 0.6, 11: 0.5, 12: 0.6, 17: 0.5, 18: 0.8, 19: 0.8, 20: 0.6, 21: 0.5}
    for step in range(hours, -1, -1):
        ts = end - timedelta(hours=step)
        local_hour = (ts - timedelta(hours=1)).astimezone(zone).hour
        if step > silence_h and rng.random() < usual.get(local_hour, 0.04):
            register += round(rng.uniform(4, 35), 1)
        items.append({"meter_id": meter_id, "ts": ts.astimezone(zone).isoformat(), "register_l": round(register, 1)})
    typer.echo(json.dumps(items))
