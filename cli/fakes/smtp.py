"""A real local SMTP server (aiosmtpd) that records what it receives, for the email channel's tests.

Options mirror what a mail server does to a sender: refuse some recipients with a given reply
(``"550 5.1.1 <x@example.com>: no such user"``, ``"450 4.2.1 mailbox busy"``), offer STARTTLS with a
self-signed certificate (``with_tls=True``; ``ca_file`` is the certificate to trust), require
authentication (``users``, only over TLS). ``silent_server`` accepts connections and never greets,
for timeouts.

aiosmtpd is a development dependency: import this module only where it is installed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, Self

# A development dependency: where it is missing, type checking goes on without it (the tests skip).
from aiosmtpd.controller import Controller  # type: ignore[import-not-found, unused-ignore]
from aiosmtpd.smtp import (  # type: ignore[import-not-found, unused-ignore]
    SMTP,
    AuthResult,
    Envelope,
    LoginPassword,
    Session,
)


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    over_tls: bool
    login: str | None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, written into ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    alt = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(alt, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class FakeSmtp:
    def __init__(
        self,
        *,
        refuse: Mapping[str, str] | None = None,
        with_tls: bool = False,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.refuse = {address.lower(): reply for address, reply in (refuse or {}).items()}
        self.users = dict(users or {})
        self.messages: list[ReceivedMail] = []
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.ca_file: str | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="fake-smtp-")
        self._lock = threading.Condition()
        tls_context = None
        if with_tls:
            cert_file, key_file = self_signed_certificate(Path(self._folder.name))
            tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls_context.load_cert_chain(cert_file, key_file)
            self.ca_file = str(cert_file)
        options: dict[str, Any] = {}
        if tls_context is not None:
            options.update(tls_context=tls_context)
        if self.users:
            options.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=True)
        self._controller = Controller(self, hostname=self.host, port=self.port, **options)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(login) == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    # aiosmtpd's handler hooks (the fake is its own handler).
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.refuse.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(content)
        login = session.auth_data if isinstance(session.auth_data, str) else None
        received = ReceivedMail(
            envelope.mail_from or "", tuple(envelope.rcpt_tos), message, session.ssl is not None, login
        )
        with self._lock:
            self.messages.append(received)
            self._lock.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[ReceivedMail]:
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.messages) >= count, timeout=timeout_s):
                raise TimeoutError(f"the fake received {len(self.messages)} messages, expected {count}")
            return list(self.messages)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
        self._folder.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[str, int]]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield "127.0.0.1", int(sock.getsockname()[1])
