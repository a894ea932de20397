"""Email over SMTP: a subject, a plain-text body and an HTML alternative, from the templates.

``smtplib`` runs in a worker thread (``asyncio.to_thread``): one short conversation per message, and no
dependency beyond the standard library. STARTTLS is used whenever the server offers it (``security="auto"``);
``"starttls"`` refuses a server that does not (a man in the middle can strip the offer), ``"tls"`` speaks
TLS from the first byte (port 465). A password is never sent over an unencrypted connection.

The server's reply code is the verdict, as SMTP defines it: 4xx is temporary (RETRY), 5xx permanent
(REJECT: an unknown mailbox, 550, stays unknown). A connection that fails or hangs is RETRY.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import ClassVar, Literal

import httpx

from alerts.channels.base import Audience, Channel, Notification, Verdict
from alerts.channels.robots import redact_secrets
from alerts.channels.templates import Templates, default_templates
from alerts.channels.types import ChannelType
from alerts.statuses import AttemptOutcome
from alerts.webhooks.attempt import AttemptResult

Security = Literal["auto", "starttls", "tls"]
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class SmtpSettings:
    """The outgoing mail server, one per deployment (operator settings, not a registrant's)."""

    host: str
    port: int = 587
    sender: str = "Shouwang <shouwang@localhost>"  # the From header and the envelope sender
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security: Security = "auto"
    ca_file: str | None = None  # trust this CA (a private relay) instead of the system's


def judge_reply(code: int | None, text: str = "") -> Verdict:
    """An SMTP reply as a verdict: 2xx delivered, 4xx try again later, 5xx refused for good."""
    message = f"SMTP {code}: {text}".strip() if code is not None else f"SMTP: {text}".strip()
    if code is not None and 200 <= code < 400:
        return Verdict(AttemptOutcome.DELIVERED)
    if code is not None and 500 <= code < 600:
        return Verdict(AttemptOutcome.REJECT, message)
    return Verdict(AttemptOutcome.RETRY, message)


class EmailChannel(Channel):
    """One mailbox, ``to``, reached through the deployment's SMTP server."""

    type: ClassVar[str] = ChannelType.EMAIL
    audience: ClassVar[Audience] = "person"

    def __init__(self, to: str, *, smtp: SmtpSettings, templates: Templates | None = None) -> None:
        self.to = to
        self.smtp = smtp
        self.templates = templates or default_templates()

    def render(self, notification: Notification, *, now: datetime) -> EmailMessage:
        rendered = self.templates.render(notification, channel_type=self.type, family="email", audience=self.audience)
        message = EmailMessage()
        message["Subject"] = rendered.title
        message["From"] = self.smtp.sender
        message["To"] = self.to
        message["Date"] = format_datetime(now)
        # The delivery id: a resend after a lapsed lease carries the same Message-ID, which mail clients
        # and archives use to drop the duplicate.
        domain = parseaddr(self.smtp.sender)[1].rpartition("@")[2] or "shouwang.localhost"
        message["Message-ID"] = f"<{_ID_UNSAFE.sub('', notification.message_id) or 'message'}@{domain}>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to an alert
        message.set_content(rendered.body)
        if rendered.html:
            message.add_alternative(rendered.html, subtype="html")
        return message

    async def send(
        self, client: httpx.AsyncClient, notification: Notification, *, now: datetime, timeout_s: float
    ) -> AttemptResult:
        """``client`` is not used: email is not HTTP. ``timeout_s`` bounds every socket operation and the
        whole conversation."""
        started = time.perf_counter()
        message = self.render(notification, now=now)
        try:
            async with asyncio.timeout(timeout_s):
                verdict = await asyncio.to_thread(self._deliver, message, timeout_s)
        except TimeoutError:
            verdict = Verdict(AttemptOutcome.RETRY, f"timeout: the mail server did not finish within {timeout_s:g} s")
        error = None if verdict.error is None else self.redact(" ".join(verdict.error.split()))[:300]
        return AttemptResult(verdict.outcome, None, error, time.perf_counter() - started, verdict.retry_after_s)

    def _deliver(self, message: EmailMessage, timeout_s: float) -> Verdict:
        settings = self.smtp
        context = ssl.create_default_context(cafile=settings.ca_file)
        try:
            if settings.security == "tls":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=timeout_s, context=context
                )
            else:
                connection = smtplib.SMTP(settings.host, settings.port, timeout=timeout_s)
            with connection as smtp:
                smtp.ehlo()
                encrypted = settings.security == "tls"
                if not encrypted and smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                    encrypted = True
                if not encrypted and (settings.security == "starttls" or settings.username):
                    why = "a password is never sent in clear" if settings.username else "security is starttls"
                    return Verdict(AttemptOutcome.RETRY, f"the mail server does not offer STARTTLS ({why})")
                if settings.username:
                    smtp.login(settings.username, settings.password or "")
                smtp.send_message(message, from_addr=parseaddr(settings.sender)[1] or None, to_addrs=[self.to])
        except smtplib.SMTPRecipientsRefused as exc:
            # One recipient per channel: its refusal is the verdict (550 no such user, 452 mailbox full, …).
            code, reply = next(iter(exc.recipients.values()), (None, b""))
            return judge_reply(code, f"recipient refused: {_text(reply)}")
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth failed, greeting 554
            return judge_reply(exc.smtp_code, _text(exc.smtp_error))
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:  # disconnected, refused, timed out
            return Verdict(AttemptOutcome.RETRY, f"mail server: {type(exc).__name__}: {exc}".rstrip(": "))
        return Verdict(AttemptOutcome.DELIVERED)

    def redact(self, text: str) -> str:
        return redact_secrets(text, self.smtp.password)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
