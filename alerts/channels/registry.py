"""The channels of one deployment: validating a registrant's channel, sealing it for the store, and
building the adapter that sends on it. The settings hold what the deployment shares (the SMS provider,
the mail server, the template override folder); the store holds each endpoint's own configuration,
sealed (alerts/secret_box.py), and a masked form for people to recognise it by."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from alerts.channels.base import Channel
from alerts.channels.email import EmailChannel, SmtpSettings
from alerts.channels.robots import DingTalkRobot, FeishuBot, WeComRobot
from alerts.channels.sms import SmsChannel, SmsConfig, parse_templates, validate_phone
from alerts.channels.templates import Templates, check_templates
from alerts.channels.types import ChannelType
from alerts.channels.validation import ChannelConfigError, allowlist_predicate, validate
from alerts.channels.wecom_app import TokenCache, WeComApp
from alerts.secret_box import SecretBox, SecretBoxError, secret_box
from shouwang.settings import Settings


@dataclass(frozen=True)
class Registered:
    """A validated channel, ready to store."""

    type: str
    display: str  # masked: never a token, a secret or a whole phone number
    sealed: str


class Channels:
    def __init__(self, settings: Settings, *, box: SecretBox | None = None, templates: Templates | None = None) -> None:
        self.settings = settings
        self.box = box or secret_box(settings)
        self.templates = templates or Templates(settings.channel_templates_dir)
        self._allow_hosts = allowlist_predicate(settings.webhook_allowlist)
        self._tokens = TokenCache()  # WeCom access tokens, shared by every wecom_app endpoint of this process

    def check(self) -> int:
        """Render every template once (at start-up): a broken override stops the process, naming the file."""
        return check_templates(self.templates)

    def register(self, channel_type: str, config: Mapping[str, Any]) -> Registered:
        """Validate a registrant's channel (``ChannelConfigError`` names the field) and seal it."""
        if channel_type == ChannelType.SMS:
            self._require_sms()
            if set(config) - {"phone"}:
                raise ChannelConfigError(sorted(set(config) - {"phone"})[0], "is not a field of an sms channel")
            try:
                stored: dict[str, Any] = {"phone": validate_phone(str(config.get("phone") or ""))}
            except ValueError as exc:
                raise ChannelConfigError("phone", str(exc).removeprefix("phone: ")) from None
        elif channel_type == ChannelType.EMAIL:
            if not self.settings.smtp_host:
                raise ChannelConfigError("type", "email is not set up here: the operator sets SHOUWANG_SMTP_HOST")
            renamed = {("to" if key == "address" else key): value for key, value in config.items()}
            stored = validate(channel_type, renamed, allow_hosts=self._allow_hosts)
        else:
            stored = validate(channel_type, config, allow_hosts=self._allow_hosts)
        return Registered(channel_type, _display(channel_type, stored), self.box.seal(stored))

    def build(self, channel_type: str, sealed: str | None) -> Channel:
        """The adapter of a stored endpoint; ValueError when it cannot be built (the outbox rejects then)."""
        if sealed is None:
            raise ValueError(f"the {channel_type} endpoint has no stored configuration")
        try:
            stored = self.box.open(sealed)
        except SecretBoxError as exc:
            raise ValueError(str(exc)) from None
        templates = self.templates
        if channel_type == ChannelType.DINGTALK_ROBOT:
            return DingTalkRobot(**stored, templates=templates)
        if channel_type == ChannelType.WECOM_ROBOT:
            return WeComRobot(**stored, templates=templates)
        if channel_type == ChannelType.FEISHU_BOT:
            return FeishuBot(**stored, templates=templates)
        if channel_type == ChannelType.WECOM_APP:
            return WeComApp(**stored, templates=templates, token_cache=self._tokens)
        if channel_type == ChannelType.SMS:
            return SmsChannel(phone=stored["phone"], config=self._require_sms())
        if channel_type == ChannelType.EMAIL:
            return EmailChannel(stored["to"], smtp=self._smtp(), templates=templates)
        raise ValueError(f"unknown channel type {channel_type!r}")

    def _require_sms(self) -> SmsConfig:
        settings = self.settings
        if settings.sms_provider is None:
            raise ChannelConfigError("type", "SMS is not set up here: the operator sets SHOUWANG_SMS_PROVIDER")
        try:
            return SmsConfig(
                provider=settings.sms_provider,
                access_key_id=settings.sms_access_key_id,
                access_key_secret=settings.sms_access_key_secret.get_secret_value()
                if settings.sms_access_key_secret
                else "",
                sign_name=settings.sms_sign_name,
                templates=parse_templates(settings.sms_templates or "{}"),
                sdk_app_id=settings.sms_sdk_app_id,
                endpoint=settings.sms_endpoint,
                region=settings.sms_region,
                max_variable_chars=settings.sms_max_variable_chars,
                link_prefix=settings.sms_link_prefix,
                mask_names=settings.sms_mask_names,
                default_timezone=settings.household_tz,
            )
        except ValueError as exc:
            raise ChannelConfigError("type", f"SMS is not set up right here (SHOUWANG_SMS_*): {exc}") from None

    def _smtp(self) -> SmtpSettings:
        settings = self.settings
        if not settings.smtp_host:
            raise ValueError("email is not set up here: SHOUWANG_SMTP_HOST is unset")
        return SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            security=settings.smtp_security,
            ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )


def _display(channel_type: str, stored: Mapping[str, Any]) -> str:
    """How people recognise the channel without seeing its credentials."""
    if "url" in stored:
        parts = urlsplit(str(stored["url"]))
        token = parts.path.rsplit("/", 1)[-1] if channel_type == ChannelType.FEISHU_BOT else ""
        shown = f"{parts.scheme}://{parts.netloc}{parts.path.removesuffix(token)}"
        return f"{shown}{token[:4]}…" if token else f"{shown}?…"
    if "phone" in stored:
        phone = str(stored["phone"])
        return phone[:-8] + "****" + phone[-4:] if len(phone) > 8 else "****"
    if "to" in stored:
        local, _, domain = str(stored["to"]).partition("@")
        return f"{local[:1]}***@{domain}"
    if "corp_id" in stored:
        return f"WeCom app {stored.get('agent_id')} of {stored['corp_id']} → {len(stored.get('user_ids') or [])} people"
    return json.dumps(sorted(stored))
