"""A request id for every request: the caller's ``X-Request-ID`` when it is well formed (a gateway or a
client that logs its own ids can follow a request through), otherwise a new one. It is returned in the
response's ``X-Request-ID`` and written on the request's audit events (alerts/audit.py)."""

from __future__ import annotations

import re
import uuid

from fastapi import Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
# Letters, digits and . _ : - only, 8 to 64 of them: anything else (a long or odd value meant to spoil a
# log or the audit trail) is replaced, not trusted.
WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,64}")


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(HEADER, "")
        request_id = given if WELL_FORMED.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id  # read back as request.state.request_id

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, with_id)


def request_id_of(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def client_address(request: Request) -> str | None:
    """The peer's address as this server sees it. The API does not trust X-Forwarded-For (a client could
    write anything there): behind a proxy this is the proxy's address; docs/PRIVACY.md says so."""
    return request.client.host if request.client else None
