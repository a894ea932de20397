"""Checks of a channel's configuration at registration, one validator per type.

Each validator takes the registrant's configuration (a JSON object) and returns the keyword arguments of
its channel's constructor, or raises ``ChannelConfigError`` naming the field (for a 422 with a ``loc``).
Unknown fields are errors too: a misspelt ``secert`` must not silently register an unsigned robot.

Robot URLs must be https on the vendor's host with the vendor's path and token. ``allow_hosts`` lets the
caller admit other hosts (its SSRF allowlist: local fakes in tests, a private WeCom deployment); the path
and token are checked there too, and such a host may use plain http. A URL of another vendor's robot
names the type to register it as (``type_for_url``). No DNS here: the SSRF guard resolves at send time.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from alerts.channels.types import ChannelType
from alerts.webhooks.ssrf import parse_allowlist

HostPredicate = Callable[[str], bool]
Validator = Callable[..., dict[str, Any]]

VENDOR_HOSTS: Mapping[str, frozenset[str]] = {
    ChannelType.DINGTALK_ROBOT: frozenset({"oapi.dingtalk.com"}),
    ChannelType.WECOM_ROBOT: frozenset({"qyapi.weixin.qq.com"}),
    ChannelType.WECOM_APP: frozenset({"qyapi.weixin.qq.com"}),
    ChannelType.FEISHU_BOT: frozenset({"open.feishu.cn", "open.larksuite.com"}),
}
# The path that tells robots apart (WeCom's group robot and application share a host).
_ROBOT_PATHS: tuple[tuple[str, str, bool], ...] = (  # (type, path, path is a prefix)
    (ChannelType.DINGTALK_ROBOT, "/robot/send", False),
    (ChannelType.WECOM_ROBOT, "/cgi-bin/webhook/send", False),
    (ChannelType.FEISHU_BOT, "/open-apis/bot/v2/hook/", True),
)
VENDOR_NAMES: Mapping[str, str] = {
    ChannelType.DINGTALK_ROBOT: "DingTalk robot",
    ChannelType.WECOM_ROBOT: "WeCom group robot",
    ChannelType.WECOM_APP: "WeCom application",
    ChannelType.FEISHU_BOT: "Feishu bot",
}
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_DINGTALK_SECRET = re.compile(r"SEC[A-Za-z0-9]{16,128}")
_FEISHU_SECRET = re.compile(r"[A-Za-z0-9]{8,64}")
_KEYWORD_MAX = 64
_CORP_ID = re.compile(r"[A-Za-z0-9]{4,64}")
_CORP_SECRET = re.compile(r"[A-Za-z0-9_-]{8,128}")
_USER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_MAX_USERS = 1000  # WeCom's limit per message
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{}|~-]{1,64}")
_EMAIL_DOMAIN = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
)


class ChannelConfigError(ValueError):
    """A configuration a channel cannot use; ``field`` names the offending field (for a 422's ``loc``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def vendor_hosts_only(host: str) -> bool:
    """The strict default: no host but the vendors' own."""
    return False


def allowlist_predicate(allow: Sequence[str]) -> HostPredicate:
    """A predicate for the SSRF allowlist's entries (hostnames, and IP networks that admit IP literals)."""
    names, networks = parse_allowlist(allow)

    def allowed(host: str) -> bool:
        if host in names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in networks)

    return allowed


def type_for_url(url: str) -> str | None:
    """The channel type a robot URL belongs to, from its host (or, on another host, its path), or None."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    for channel_type, path, prefix in _ROBOT_PATHS:
        on_path = parts.path.startswith(path) if prefix else parts.path.rstrip("/") == path
        if on_path and (host in VENDOR_HOSTS[channel_type] or not any(host in h for h in VENDOR_HOSTS.values())):
            return channel_type
    for channel_type, hosts in VENDOR_HOSTS.items():
        if host in hosts and channel_type != ChannelType.WECOM_APP:  # an application has no URL to register
            return channel_type
    return None


def _fields(config: Mapping[str, Any], required: Sequence[str], optional: Sequence[str]) -> None:
    if not isinstance(config, Mapping):
        raise ChannelConfigError("config", "must be a JSON object")
    for name in config:
        if name not in required and name not in optional:
            raise ChannelConfigError(str(name), f"unknown field; expected {', '.join([*required, *optional])}")
    for name in required:
        if config.get(name) in (None, ""):
            raise ChannelConfigError(name, "is required")


def _string(config: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str | None:
    value = config.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ChannelConfigError(name, "must be a string")
    value = value.strip()
    if pattern is not None and not pattern.fullmatch(value):
        raise ChannelConfigError(name, what or "has an invalid format")
    return value


def _host_ok(channel_type: str, field: str, url: str, allow_hosts: HostPredicate) -> tuple[str, Any]:
    """Parse ``url``; it must be https on the vendor's host, or on a host ``allow_hosts`` admits."""
    if len(url) > 2000 or any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise ChannelConfigError(field, "must be one URL without spaces, at most 2000 characters")
    parts = urlsplit(url)
    try:
        host = (parts.hostname or "").rstrip(".").lower()
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ChannelConfigError(field, "is not a valid URL") from None
    if parts.username or parts.password:
        raise ChannelConfigError(field, "must not contain credentials (user:password@)")
    if parts.fragment:
        raise ChannelConfigError(field, "must not have a #fragment")
    name = VENDOR_NAMES[channel_type]
    if host in VENDOR_HOSTS[channel_type]:
        if parts.scheme != "https":
            raise ChannelConfigError(field, f"a {name} URL must use https")
    elif not host or not allow_hosts(host):
        expected = " or ".join(sorted(VENDOR_HOSTS[channel_type]))
        raise ChannelConfigError(field, f"a {name} URL must be on {expected} (host {host or '(none)'} is not)")
    elif parts.scheme not in ("http", "https"):
        raise ChannelConfigError(field, "must be an http(s) URL")
    return host, parts


def _robot_url(channel_type: str, config: Mapping[str, Any], allow_hosts: HostPredicate) -> tuple[str, Any]:
    url = _string(config, "url")
    if url is None:
        raise ChannelConfigError("url", "is required")
    actual = type_for_url(url)
    if actual is not None and actual != channel_type:
        raise ChannelConfigError("url", f"this is a {VENDOR_NAMES[actual]} URL: register it as type {actual}")
    _host, parts = _host_ok(channel_type, "url", url, allow_hosts)
    return url, parts


def validate_dingtalk_robot(
    config: Mapping[str, Any], *, allow_hosts: HostPredicate = vendor_hosts_only
) -> dict[str, Any]:
    """``{"url": "https://oapi.dingtalk.com/robot/send?access_token=…", "secret": "SEC…", "keyword": …}``"""
    _fields(config, ("url",), ("secret", "keyword"))
    url, parts = _robot_url(ChannelType.DINGTALK_ROBOT, config, allow_hosts)
    query = parse_qs(parts.query)
    if parts.path.rstrip("/") != "/robot/send":
        raise ChannelConfigError("url", "a DingTalk robot URL's path is /robot/send")
    tokens = query.get("access_token", [])
    if len(tokens) != 1 or not _TOKEN.fullmatch(tokens[0]):
        raise ChannelConfigError("url", "must carry the robot's access_token (copy the whole webhook URL)")
    secret = _string(config, "secret", _DINGTALK_SECRET, "a DingTalk signing secret starts with SEC (加签)")
    keyword = _keyword(config)
    # A pasted URL may hold an old timestamp and sign; the channel signs each message afresh.
    return {"url": url, "secret": secret, "keyword": keyword}


def validate_wecom_robot(
    config: Mapping[str, Any], *, allow_hosts: HostPredicate = vendor_hosts_only
) -> dict[str, Any]:
    """``{"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…", "msgtype": "markdown" | "text"}``"""
    _fields(config, ("url",), ("msgtype",))
    url, parts = _robot_url(ChannelType.WECOM_ROBOT, config, allow_hosts)
    if parts.path.rstrip("/") != "/cgi-bin/webhook/send":
        raise ChannelConfigError("url", "a WeCom group robot URL's path is /cgi-bin/webhook/send")
    keys = parse_qs(parts.query).get("key", [])
    if len(keys) != 1 or not _TOKEN.fullmatch(keys[0]):
        raise ChannelConfigError("url", "must carry the robot's key (copy the whole webhook URL)")
    msgtype = _string(config, "msgtype") or "markdown"
    if msgtype not in ("markdown", "text"):
        raise ChannelConfigError("msgtype", "must be markdown or text")
    return {"url": url, "msgtype": msgtype}


def validate_feishu_bot(config: Mapping[str, Any], *, allow_hosts: HostPredicate = vendor_hosts_only) -> dict[str, Any]:
    """``{"url": "https://open.feishu.cn/open-apis/bot/v2/hook/…", "secret": …, "keyword": …}``"""
    _fields(config, ("url",), ("secret", "keyword"))
    url, parts = _robot_url(ChannelType.FEISHU_BOT, config, allow_hosts)
    prefix = "/open-apis/bot/v2/hook/"
    token = parts.path[len(prefix) :].rstrip("/") if parts.path.startswith(prefix) else ""
    if not _TOKEN.fullmatch(token):
        raise ChannelConfigError("url", f"a Feishu bot URL is {prefix}<token> (copy the whole webhook URL)")
    if parts.query:
        raise ChannelConfigError("url", "a Feishu bot URL has no query string")
    secret = _string(config, "secret", _FEISHU_SECRET, "the signing secret (签名校验) is 8-64 letters and digits")
    return {"url": url, "secret": secret, "keyword": _keyword(config)}


def validate_wecom_app(config: Mapping[str, Any], *, allow_hosts: HostPredicate = vendor_hosts_only) -> dict[str, Any]:
    """``{"corp_id", "corp_secret", "agent_id", "user_ids": [...], "msgtype"?, "api_base"?}``"""
    _fields(config, ("corp_id", "corp_secret", "agent_id", "user_ids"), ("msgtype", "api_base"))
    corp_id = _string(config, "corp_id", _CORP_ID, "is the corp id (企业ID), letters and digits")
    corp_secret = _string(config, "corp_secret", _CORP_SECRET, "is the application's Secret")
    agent_id = config.get("agent_id")
    if isinstance(agent_id, str) and agent_id.strip().isdigit():
        agent_id = int(agent_id)
    if not isinstance(agent_id, int) or isinstance(agent_id, bool) or not 0 < agent_id < 2**31:
        raise ChannelConfigError("agent_id", "must be the application's AgentId, a positive integer")
    users = config.get("user_ids")
    if isinstance(users, str):
        users = [user for user in users.split("|") if user]
    if not isinstance(users, list) or not users or len(users) > _MAX_USERS:
        raise ChannelConfigError("user_ids", f"must list 1 to {_MAX_USERS} member ids (账号)")
    for user in users:
        if not isinstance(user, str) or not _USER_ID.fullmatch(user.strip()):
            raise ChannelConfigError("user_ids", f"{str(user)[:70]!r} is not a member id")
        if user.strip().lower() == "@all":
            raise ChannelConfigError("user_ids", "@all is refused: an alert goes to named people only")
    msgtype = _string(config, "msgtype") or "markdown"
    if msgtype not in ("markdown", "text"):
        raise ChannelConfigError("msgtype", "must be markdown or text")
    api_base = (_string(config, "api_base") or "https://qyapi.weixin.qq.com").rstrip("/")
    _host, parts = _host_ok(ChannelType.WECOM_APP, "api_base", api_base, allow_hosts)
    if parts.path or parts.query:
        raise ChannelConfigError("api_base", "is a scheme and host only, like https://qyapi.weixin.qq.com")
    return {
        "corp_id": corp_id,
        "corp_secret": corp_secret,
        "agent_id": agent_id,
        "user_ids": [user.strip() for user in users],
        "msgtype": msgtype,
        "api_base": api_base,
    }


def validate_email_address(value: object, field: str = "to") -> str:
    """One plain address (``name@example.com``): no display name, no list, nothing a header could split on."""
    if not isinstance(value, str) or not value.strip():
        raise ChannelConfigError(field, "must be an email address")
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if not at or len(address) > 254 or not _EMAIL_LOCAL.fullmatch(local):
        raise ChannelConfigError(field, f"{address[:80]!r} is not an email address like name@example.com")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")  # 例子.中国 is fine; SMTP gets its ASCII form
    except UnicodeError:
        raise ChannelConfigError(field, f"{domain[:80]!r} is not a mail domain") from None
    if not _EMAIL_DOMAIN.fullmatch(ascii_domain):
        raise ChannelConfigError(field, f"{domain[:80]!r} is not a mail domain")
    return f"{local}@{ascii_domain.lower()}"


def validate_email(config: Mapping[str, Any], *, allow_hosts: HostPredicate = vendor_hosts_only) -> dict[str, Any]:
    """``{"to": "name@example.com"}``; the server is the deployment's (``SmtpSettings``)."""
    _fields(config, ("to",), ())
    return {"to": validate_email_address(config.get("to"))}


def _keyword(config: Mapping[str, Any]) -> str | None:
    keyword = _string(config, "keyword")
    if keyword is not None and (len(keyword) > _KEYWORD_MAX or "\n" in keyword):
        raise ChannelConfigError("keyword", f"must be one line of at most {_KEYWORD_MAX} characters")
    return keyword


VALIDATORS: Mapping[str, Validator] = {
    ChannelType.DINGTALK_ROBOT: validate_dingtalk_robot,
    ChannelType.WECOM_ROBOT: validate_wecom_robot,
    ChannelType.FEISHU_BOT: validate_feishu_bot,
    ChannelType.WECOM_APP: validate_wecom_app,
    ChannelType.EMAIL: validate_email,
}


def validate(
    channel_type: str, config: Mapping[str, Any], *, allow_hosts: HostPredicate = vendor_hosts_only
) -> dict[str, Any]:
    """The constructor arguments of a ``channel_type`` channel from ``config``, or ChannelConfigError."""
    validator = VALIDATORS.get(channel_type)
    if validator is None:
        raise ChannelConfigError("type", f"{channel_type!r} is not one of {', '.join(VALIDATORS)}")
    return validator(config, allow_hosts=allow_hosts)
