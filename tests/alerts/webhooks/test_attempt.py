"""The sender against real HTTP servers on 127.0.0.1 (see receiver.py), not mocks."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
import pytest

from alerts.webhooks import (
    USER_AGENT,
    AttemptResult,
    EndpointLimiter,
    make_client,
    new_message_id,
    new_secret,
    parse_retry_after,
    send_once,
)
from tests.alerts.conftest import LOOPBACK
from tests.alerts.webhooks.receiver import Receiver

T = TypeVar("T")
BODY = json.dumps({"alert_id": "a-1", "kind": "no_water_use", "severity": "high"}).encode()


def run(factory: Callable[[httpx.AsyncClient], Awaitable[T]], **client_options: float) -> T:
    async def main() -> T:
        async with make_client(allow=LOOPBACK, **client_options) as client:  # type: ignore[arg-type]
            return await factory(client)

    return asyncio.run(main())


def send(url: str, secret: str, *, timeout_s: float = 5.0, body: bytes = BODY) -> AttemptResult:
    return run(
        lambda client: send_once(
            client,
            url=url,
            secret=secret,
            message_id=new_message_id(),
            body=body,
            now=datetime.now(UTC),
            timeout_s=timeout_s,
        )
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_delivered_with_a_signature_the_reference_receiver_verifies() -> None:
    secret = new_secret()
    with Receiver() as receiver:
        result = send(receiver.url, secret)
        assert result.outcome == "delivered"
        assert (result.status_code, result.error, result.retry_after_s) == (200, None, None)
        assert result.duration_s > 0
        [request] = receiver.requests
        assert request.method == "POST" and request.body == BODY
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == USER_AGENT
        assert request.headers["webhook-id"].startswith("msg_")
        assert receiver.verify_with(secret) == json.loads(BODY)


def test_retries_of_one_delivery_keep_the_webhook_id() -> None:
    secret, message_id = new_secret(), new_message_id()
    with Receiver() as receiver:
        receiver.respond_with([503, 200])
        for _ in range(2):
            run(
                lambda client: send_once(
                    client, url=receiver.url, secret=secret, message_id=message_id, body=BODY, now=datetime.now(UTC)
                )
            )
        assert [r.headers["webhook-id"] for r in receiver.requests] == [message_id, message_id]
        assert [r.status for r in receiver.requests] == [503, 200]
        for request in receiver.requests:
            receiver.verify_with(secret, request)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (204, "delivered"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (410, "disable"),
        (400, "reject"),
        (401, "reject"),
        (404, "reject"),
        (413, "reject"),
        (301, "reject"),
        (302, "reject"),
        (307, "reject"),
    ],
)
def test_status_classification(status: int, outcome: str) -> None:
    with Receiver() as receiver:
        receiver.respond_with([status])
        result = send(receiver.url, new_secret())
        assert (result.outcome, result.status_code) == (outcome, status)
        assert (result.error is None) == (outcome == "delivered")
        assert len(receiver.requests) == 1  # nothing followed, nothing retried inside send_once


def test_error_carries_the_start_of_the_receivers_answer_on_one_line() -> None:
    with Receiver() as receiver:
        receiver.response_body = b'{"error":\n "unknown recipient"}' + b"x" * 5000
        receiver.respond_with([400])
        result = send(receiver.url, new_secret())
    assert result.outcome == "reject"
    assert result.error is not None and result.error.startswith('HTTP 400 Bad Request: {"error": "unknown')
    assert "\n" not in result.error and len(result.error) <= 300


def test_redirect_is_rejected_and_not_followed() -> None:
    with Receiver() as target, Receiver() as receiver:
        receiver.respond_with([302], headers={"Location": target.url})
        result = send(receiver.url, new_secret())
        assert result.outcome == "reject" and result.status_code == 302
        assert result.error is not None and "redirects are not followed" in result.error
        assert target.requests == []


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [
        (429, "7", 7.0),
        (503, "120", 120.0),
        (429, "999999999", 86400.0),  # capped at 24 h
        (429, "soon", None),
        (500, "7", None),  # only 429 and 503 carry a meaningful Retry-After
    ],
)
def test_retry_after(status: int, header: str, expected: float | None) -> None:
    with Receiver() as receiver:
        receiver.respond_with([status], headers={"Retry-After": header})
        result = send(receiver.url, new_secret())
    assert result.outcome == "retry"
    assert result.retry_after_s == expected


def test_retry_after_http_date() -> None:
    now = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sat, 01 Mar 2025 08:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Sat, 01 Mar 2025 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("Sat, 08 Mar 2025 08:00:00 GMT", now=now) == 86400.0
    assert parse_retry_after(None, now=now) is None
    assert parse_retry_after("-5", now=now) is None


def test_slow_receiver_is_a_retry_with_a_timeout_error() -> None:
    with Receiver(delay_s=5.0) as receiver:
        result = send(receiver.url, new_secret(), timeout_s=0.3)
    assert result.outcome == "retry" and result.status_code is None
    assert result.error is not None and result.error.startswith("timeout")
    assert result.duration_s < 3.0


def test_closed_port_is_a_retry_with_a_connection_error() -> None:
    secret = new_secret()
    result = send(f"http://127.0.0.1:{free_port()}/hook", secret)
    assert result.outcome == "retry" and result.status_code is None
    assert result.error is not None and result.error.startswith("connection error")
    assert secret not in result.error and secret.removeprefix("whsec_") not in result.error


def test_server_hanging_up_without_answer_is_a_retry() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(10)

        def hang_up() -> None:  # read the request, then close without a status line
            connection, _ = server.accept()
            with connection:
                connection.settimeout(10)
                connection.recv(65536)

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        result = send(f"http://127.0.0.1:{server.getsockname()[1]}/hook", new_secret())
        thread.join(timeout=10)
    assert result.outcome == "retry" and result.status_code is None
    # RemoteProtocolError on a clean close, ReadError if the close became a reset: both are transient.
    assert result.error is not None and result.error.startswith("transport error: ")


def test_unsupported_scheme_is_a_reject_not_an_exception() -> None:
    result = send("ftp://127.0.0.1/hook", new_secret())
    assert result.outcome == "reject" and result.error is not None and "invalid webhook URL" in result.error


def test_our_own_bad_inputs_raise_value_error() -> None:
    async def naive_now(client: httpx.AsyncClient) -> AttemptResult:
        return await send_once(
            client,
            url="http://127.0.0.1:9/",
            secret=new_secret(),
            message_id=new_message_id(),
            body=BODY,
            now=datetime.now(UTC).replace(tzinfo=None),
        )

    with pytest.raises(ValueError, match="timezone-aware"):
        run(naive_now)


def test_endpoint_limiter_serializes_one_endpoint_without_blocking_others() -> None:
    secret = new_secret()
    limiter = EndpointLimiter(limit=1)
    with Receiver(delay_s=0.6) as receiver:

        async def main(client: httpx.AsyncClient) -> list[str]:
            events: list[str] = []

            async def deliver(endpoint: str, name: str) -> None:
                async with limiter.slot(endpoint):
                    events.append(f"start {name}")
                    result = await send_once(
                        client,
                        url=f"{receiver.url}/{name}",
                        secret=secret,
                        message_id=new_message_id(),
                        body=BODY,
                        now=datetime.now(UTC),
                    )
                    assert result.outcome == "delivered"
                    events.append(f"end {name}")

            await asyncio.gather(deliver("a", "a1"), deliver("a", "a2"), deliver("b", "b1"))
            return events

        events = run(main)
        requests = {r.path.rsplit("/", 1)[-1]: r for r in receiver.requests}

    # Same endpoint: the second send starts only after the first finished, also as the receiver saw it.
    assert events.index("start a2") > events.index("end a1")
    assert requests["a2"].received_at >= requests["a1"].responded_at  # type: ignore[operator]
    # Other endpoint: sent while a1 was still being served.
    assert events.index("start b1") < events.index("end a1")
    assert requests["b1"].received_at < requests["a1"].responded_at  # type: ignore[operator]
    assert not limiter._slots  # semaphores are dropped when idle: the map does not grow with every endpoint


def test_endpoint_limiter_default_allows_two_at_once() -> None:
    limiter = EndpointLimiter()

    async def main() -> int:
        inside = peak = 0

        async def hold() -> None:
            nonlocal inside, peak
            async with limiter.slot(42):
                inside += 1
                peak = max(peak, inside)
                await asyncio.sleep(0.05)
                inside -= 1

        await asyncio.gather(*(hold() for _ in range(5)))
        return peak

    assert asyncio.run(main()) == 2
    with pytest.raises(ValueError):
        EndpointLimiter(0)


def test_make_client_ignores_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{free_port()}")
    with Receiver() as receiver:
        assert send(receiver.url, new_secret()).outcome == "delivered"


def test_signature_uses_the_time_of_the_attempt() -> None:
    secret = new_secret()
    with Receiver() as receiver:
        old = datetime.now(UTC) - timedelta(hours=1)
        run(
            lambda client: send_once(
                client, url=receiver.url, secret=secret, message_id=new_message_id(), body=BODY, now=old
            )
        )
        assert receiver.requests[0].headers["webhook-timestamp"] == str(int(old.timestamp()))
