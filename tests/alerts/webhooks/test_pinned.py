"""Outbound connections are pinned: the address the SSRF guard checked is the address the request connects to,
and https still verifies the certificate against the host name. Real sockets on loopback throughout: 127.0.0.2
stands for a public machine (allowlisted), 127.0.0.1 for the internal service a rebinding DNS answer aims at."""

from __future__ import annotations

import asyncio
import itertools
import socket
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from alerts.channels.robots import WeComRobot
from alerts.channels.wecom_app import TokenCache, WeComApp
from alerts.db import Store
from alerts.models import Delivery
from alerts.outbox import OutboxConfig, OutboxDispatcher
from alerts.pipeline import RouterConfig
from alerts.statuses import AttemptOutcome
from alerts.webhooks import AttemptResult, EndpointLimiter, make_client, new_message_id, new_secret, send_once
from cli.fakes.wecom import FakeWeComApp, FakeWeComRobot
from tests.alerts.channels.chat_helpers import notification
from tests.alerts.conftest import BOX, build_world
from tests.alerts.test_pipeline import event, route
from tests.alerts.webhooks.receiver import Receiver

PUBLIC = "127.0.0.2"  # allowlisted below: the guard takes it for a public address
INTERNAL = "127.0.0.1"
ALLOW = (f"{PUBLIC}/32",)
BODY = b'{"type":"endpoint.ping","data":{}}'


def answers(*addresses: str) -> Callable[[str, int], list[str]]:
    """A resolver that answers each address in turn, then the last one for good (a rebinding DNS)."""
    sequence = itertools.chain(addresses, itertools.repeat(addresses[-1]))
    return lambda host, port: [next(sequence)]


def port_of(receiver: Receiver) -> int:
    return int(receiver.url.split(":")[2].split("/")[0])


@pytest.fixture
def machines() -> Iterator[tuple[Receiver, Receiver]]:
    """A receiver on the 'public' machine and one on loopback, on the same port."""
    for _ in range(5):
        with Receiver(host=PUBLIC) as public:
            try:
                internal = Receiver(host=INTERNAL, port=port_of(public)).__enter__()
            except OSError:  # that port is taken on 127.0.0.1: try another
                continue
            try:
                yield public, internal
            finally:
                internal.__exit__(None, None, None)
            return
    pytest.fail("no port free on both loopback addresses")


def send(url: str, **client: Any) -> list[AttemptResult]:
    """``url`` POSTed twice, one after the other, through one client made with ``client``."""

    async def main() -> list[AttemptResult]:
        async with make_client(timeout_s=3.0, **client) as http:
            return [
                await send_once(
                    http, url=url, secret=new_secret(), message_id=new_message_id(), body=BODY, now=datetime.now(UTC)
                )
                for _ in range(2)
            ]

    return asyncio.run(main())


def test_a_dns_answer_that_turns_to_loopback_is_refused_never_connected(
    machines: tuple[Receiver, Receiver],
) -> None:
    public, internal = machines
    url = f"http://rebind.test:{port_of(public)}/hook"
    guard = {"allow": ALLOW, "require_https": False}  # so the refusal names the address, not the scheme
    first, second = send(url, **guard, resolve=answers(PUBLIC, INTERNAL))
    assert first.outcome == AttemptOutcome.DELIVERED, first.error
    assert second.outcome == AttemptOutcome.REJECT and "loopback" in (second.error or "")
    assert len(public.requests) == 1 and internal.requests == []
    # The Host header is the URL's name, not the address connected to.
    assert public.requests[0].headers["host"] == f"rebind.test:{port_of(public)}"
    # A name with a public and an internal address at once is refused whole, not tried address by address.
    mixed = send(url, **guard, resolve=lambda host, port: [PUBLIC, INTERNAL])
    assert {result.outcome for result in mixed} == {AttemptOutcome.REJECT}
    assert len(public.requests) == 1 and internal.requests == []


def test_a_host_that_does_not_resolve_now_is_retried_not_dead() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    results = send("https://hooks.example/hook", resolve=broken)
    assert {r.outcome for r in results} == {AttemptOutcome.RETRY}
    assert "cannot resolve" in (results[0].error or "")


def test_the_dispatcher_connects_to_the_address_it_checked(
    machines: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config: RouterConfig
) -> None:
    """The OS resolver itself answers the public address, then loopback: before pinning, the guard checked the
    first answer and httpx connected to the second."""
    public, internal = machines
    real = socket.getaddrinfo
    dns = [answers(PUBLIC)]  # while the recipients register

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("rebind.test", b"rebind.test"):  # anyio asks with bytes
            return real(dns[0](host, port)[0], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    build_world(store, receiver_url=f"http://rebind.test:{port_of(public)}/hook")
    route(store, config, event("MA"), datetime(2026, 3, 2, 1, 0, tzinfo=UTC))  # family A and the grid worker
    dns[0] = answers(PUBLIC, INTERNAL)  # now the name turns to loopback after one more answer

    async def run() -> None:
        client = make_client(allow=ALLOW, require_https=False, timeout_s=3.0)
        dispatcher = OutboxDispatcher(
            store,
            OutboxConfig(schedule=(60.0,), lease=timedelta(seconds=30), timeout_s=3.0),
            client=client,
            limiter=EndpointLimiter(1),
            box=BOX,
        )
        try:
            await dispatcher.run_once()
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
        with store.transaction() as session:
            outcomes = sorted((d.status, d.last_error or "") for d in session.scalars(select(Delivery)))
    finally:
        store.close()
    assert internal.requests == [], "a request reached the loopback service"
    # The first lookup's answer was checked and connected to; the later lookups answer loopback and are refused.
    assert len(public.requests) == 1
    assert [status for status, _ in outcomes].count("delivered") == len(public.requests)
    assert all("loopback" in error for status, error in outcomes if status != "delivered")


def test_channels_go_through_the_same_guard() -> None:
    with FakeWeComRobot() as robot, FakeWeComApp(token_ttl_s=7200) as app:  # both on 127.0.0.1
        robot_url = robot.add_robot("k" * 32).replace(INTERNAL, "robot.test")
        app.add_app("ww1234567890abcdef", "corp-secret-Abc123_xyz", 1000002, users=("zhangsan",))
        channels = [
            WeComRobot(robot_url),
            WeComApp(
                api_base=app.url.replace(INTERNAL, "robot.test"),
                corp_id="ww1234567890abcdef",
                corp_secret="corp-secret-Abc123_xyz",
                agent_id=1000002,
                user_ids=["zhangsan"],
                token_cache=TokenCache(),
            ),
        ]

        async def main() -> list[AttemptResult]:
            guard = {"allow": ALLOW, "require_https": False, "resolve": answers(INTERNAL)}
            async with make_client(timeout_s=3.0, **guard) as http:  # type: ignore[arg-type]
                return [await c.send(http, notification(), now=datetime.now(UTC), timeout_s=3.0) for c in channels]

        results = asyncio.run(main())
        assert [r.outcome for r in results] == [AttemptOutcome.REJECT] * 2, [r.error for r in results]
        assert all("loopback" in (r.error or "") for r in results)
        assert robot.requests == 0 and app.requests == 0


# --- TLS: the pinned connection still checks the certificate against the host name ---


def _certificates(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A test CA and a server certificate it signed for ``name`` (no IP address in it): the server's
    context, and a client context that trusts the CA."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shouwang test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "server.pem").write_bytes(
        leaf.public_bytes(pem) + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "server.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


def test_https_to_a_pinned_address_verifies_the_certificate_against_the_host_name(tmp_path: Path) -> None:
    server, trusting = _certificates(tmp_path, "hooks.test")
    names: list[str | None] = []
    server.sni_callback = lambda connection, name, context: names.append(name)
    with Receiver(tls=server) as receiver:
        port = port_of(receiver)
        loopback = {"allow": ("hooks.test", "other.test"), "resolve": answers(INTERNAL)}
        # The certificate is for the name, not for 127.0.0.1: it verifies only because the name is checked.
        ok = send(f"https://hooks.test:{port}/hook", verify=trusting, **loopback)
        assert [r.outcome for r in ok] == [AttemptOutcome.DELIVERED] * 2, ok[0].error
        assert names and set(names) == {"hooks.test"}, "SNI carries the host name"
        assert receiver.requests[0].headers["host"] == f"hooks.test:{port}"
        # An untrusted CA (the system's CAs only) or another name on the same address: refused by TLS.
        untrusted = send(f"https://hooks.test:{port}/hook", **loopback)
        wrong_name = send(f"https://other.test:{port}/hook", verify=trusting, **loopback)
    assert untrusted[0].outcome == AttemptOutcome.RETRY and "CERTIFICATE_VERIFY_FAILED" in (untrusted[0].error or "")
    assert wrong_name[0].outcome == AttemptOutcome.RETRY and "other.test" in (wrong_name[0].error or "")
    assert len(receiver.requests) == 2  # only the trusted, matching ones
