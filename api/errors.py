"""One error shape for every 4xx and 5xx: ``{"error": {"code", "message", "details"?}}``.
No stack trace ever reaches a client; a 500 carries only a request id to find it in the logs."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    field: str | None = None
    message: str
    index: int | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(HTTPException):
    """An error with a machine-readable code and a message that says what was wrong."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[ErrorDetail] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code
        self.details = details


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(message: str = "your key's role may not do this") -> ApiError:
    return ApiError(403, "forbidden", message)


def _body(code: str, message: str, details: list[ErrorDetail] | None = None) -> dict[str, Any]:
    return ErrorResponse(error=ErrorBody(code=code, message=message, details=details)).model_dump(exclude_none=True)


# What a pattern allows, in words (a regular expression tells a client little); as in shouwang.events.
_PATTERN_HINTS = {
    "meter_id": "must be 1–64 letters, digits or . _ : - (starting with a letter or digit)",
    "grid_cell": "must be 1–32 letters, digits or . _ - (starting with a letter or digit)",
    "grid_cells": "must be 1–32 letters, digits or . _ - (starting with a letter or digit)",
    "community": "must be 1–64 letters, digits or . _ - (starting with a letter or digit)",
    "photo_url": "must be an http(s) URL without spaces",
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in {"body", "query", "path", "header"}]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            _body(exc.code, str(exc.detail), exc.details), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's answer to a body it cannot decode (e.g. not UTF-8): not JSON
            return JSONResponse(_body("invalid_request", "the body is not valid JSON"), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "error")
        return JSONResponse(_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = []
        for error in exc.errors()[:20]:
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            if error.get("type") == "extra_forbidden":
                message = "unknown field"
            elif error.get("type") == "json_invalid":
                message = "the body is not valid JSON"
            elif error.get("type") == "string_pattern_mismatch":
                name = next((str(p) for p in reversed(tuple(error.get("loc", ()))) if isinstance(p, str)), "")
                message = _PATTERN_HINTS.get(name, message)
            details.append(ErrorDetail(field=_field(tuple(error.get("loc", ()))), message=message))
        summary = "; ".join(f"{d.field}: {d.message}" for d in details[:3])
        return JSONResponse(_body("invalid_request", summary or "invalid request", details), status_code=422)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # The request's own id (api/request_id.py), so the answer, the log line and the X-Request-ID agree.
        request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex[:12]
        log.error(
            "internal error %s on %s %s",
            request_id,
            request.method,
            request.url.path,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return JSONResponse(
            _body("internal", f"internal error (request id {request_id})"),
            status_code=500,
            headers={"X-Request-ID": request_id},
        )


_DESCRIPTIONS = {
    401: "Missing, invalid or revoked API key",
    403: "The key's role may not do this",
    404: "Not found, or not in the key's scope",
    409: "The request conflicts with the resource's current state",
    413: "The body is too large",
    422: "The request is invalid; details say where and why",
    429: "Rate limit of this key exceeded; see Retry-After",
    503: "A dependency (Kafka) is not available; retry after Retry-After",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, all with the one error shape."""
    return {code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]} for code in codes}


# Every route of a router: auth, role, scope, validation, and the body limit (any request may carry a body).
ERROR_RESPONSES = error_responses(401, 403, 404, 413, 422)
