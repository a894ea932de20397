"""The FastAPI application: `shouwang api` serves it with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.types import Message, Receive, Scope, Send

from alerts.action_links import ActionLinkSigner
from alerts.admin import AdminError
from alerts.channels.registry import Channels
from alerts.db import Store
from alerts.secret_box import secret_keys
from api import console, metrics
from api.auth import ensure_admin_key, write_first_key
from api.deps import Operator, no_nul_in_url
from api.errors import ApiError, error_responses, install_error_handlers
from api.ratelimit import TokenBuckets
from api.request_id import RequestId
from api.routes import (
    actions,
    alerts,
    audit,
    concerns,
    household_data,
    households,
    ingest,
    people,
    reports,
    silences,
    sms_replies,
)
from api.schemas import Health
from api.security_headers import SecurityHeaders
from shouwang.durability import durable_producer
from shouwang.settings import Settings
from shouwang.topics import Topics

log = logging.getLogger(__name__)


class BodyLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"error": {"code": "too_large", "message": f"the body exceeds {self.max_bytes} bytes"}}, status_code=413
        )
        await response(scope, receive, send)


class _TooLarge(ApiError):
    """Raised while the body streams in; an ApiError so the app's handlers answer 413 (FastAPI would
    turn any other exception raised while it reads the body into a 400, and a route that reads the
    body itself into a 500)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, "too_large", f"the body exceeds {max_bytes} bytes")


async def _connect_producer(app: FastAPI, settings: Settings) -> None:
    """Connect to Kafka in the background, retrying: the API serves health and reads meanwhile."""
    while True:
        producer = durable_producer(settings.bootstrap_servers, client_id="shouwang-api")
        try:
            await producer.start()
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable yet"
            log.warning("Kafka not reachable yet (%s); retrying", type(exc).__name__)
            with contextlib.suppress(Exception):
                await producer.stop()
            await asyncio.sleep(2)
            continue
        app.state.producer = producer
        return


def create_app(settings: Settings, *, store: Store | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = store or Store(settings.store_url)
        with app.state.store.transaction() as session:
            token = ensure_admin_key(
                session, admin_token=settings.admin_token.get_secret_value() if settings.admin_token else None
            )
        if token is not None:  # to a file only its owner reads; the log says where, never the key
            log.warning(
                "first operator API key written to %s (owner-only): keep it safe",
                write_first_key(settings.var_dir, token),
            )
        app.state.producer = None
        connecting = asyncio.create_task(_connect_producer(app, settings))
        yield
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
        if app.state.producer is not None:
            await app.state.producer.stop()
        if store is None:
            app.state.store.close()

    app = FastAPI(
        title="Shouwang API",
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs" if settings.api_docs else None,  # the interactive docs only when turned on
        redoc_url="/redoc" if settings.api_docs else None,
        openapi_url="/openapi.json" if settings.api_docs else None,
        description="Water-meter risk early warning for elders living alone: enrolment, subscriptions, "
        "alerts, readings and incident ingest. Every route but /healthz and /readyz needs "
        "`Authorization: Bearer <API key>`; what a key sees depends on its role.",
    )
    app.state.settings = settings
    app.state.rate_limits = TokenBuckets(rate_per_s=settings.ingest_rate_per_s, burst=settings.ingest_burst)
    install_error_handlers(app)
    # Added before `measure`, so `measure` wraps it and counts the 413s too.
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestId)  # around the body limit: a 413 carries its request id too

    @app.exception_handler(AdminError)
    async def admin_error(_request: Request, exc: AdminError) -> JSONResponse:
        return JSONResponse({"error": {"code": "invalid_request", "message": str(exc)}}, status_code=422)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.REQUESTS.labels(request.method, route, f"{response.status_code // 100}xx").inc()
        metrics.LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    routers = (households, household_data, people, alerts, silences, ingest, concerns, sms_replies, reports, audit)
    for module in routers:
        app.include_router(module.router, dependencies=[Depends(no_nul_in_url)])
    app.include_router(console.router)
    app.include_router(actions.router)
    app.state.link_signer = ActionLinkSigner(secret_keys(settings))
    app.state.channels = Channels(settings)

    @app.get("/healthz", response_model=Health, tags=["health"], summary="The process is up")
    def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["health"],
        responses={503: {"model": Health}},
        summary="The database and Kafka are reachable",
    )
    async def readyz(request: Request) -> JSONResponse:
        checks = {"database": "ok", "kafka": "ok"}
        try:
            await asyncio.to_thread(_ping_database, request.app.state.store)
        except Exception as exc:  # noqa: BLE001 - reported as the check's state
            checks["database"] = f"unreachable ({type(exc).__name__})"
        producer = request.app.state.producer
        if producer is None:
            checks["kafka"] = "not connected"
        else:
            try:
                await asyncio.wait_for(producer.partitions_for(Topics.from_settings(settings).readings), 3)
            except Exception as exc:  # noqa: BLE001 - reported as the check's state
                checks["kafka"] = f"unreachable ({type(exc).__name__})"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            Health(status="ready" if ready else "not ready", checks=checks).model_dump(),
            status_code=200 if ready else 503,
        )

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses=error_responses(401, 403),
        summary="Prometheus metrics (operator key; Prometheus sends it as a bearer token)",
    )
    def prometheus_metrics(_: Operator) -> Response:
        return Response(
            generate_latest(),
            media_type=CONTENT_TYPE_LATEST.split(";")[0],
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    return app


def _ping_database(store: Store) -> None:
    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def run_api(settings: Settings) -> None:
    import signal
    import sys

    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handlers that
    # were there before it: make those exit 0, so a clean stop is not reported as a crash.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))

    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )


__all__ = ["create_app", "run_api"]
