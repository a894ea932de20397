"""The console for grid workers: server-rendered HTML and static scripts, served at ``/console``; the monthly
report's printable page at ``/console/report``.

The pages hold no data. The script keeps the API key the user types in ``sessionStorage`` and calls
the JSON API (``/v1/alerts``, ``/v1/households/{id}``, …) with ``Authorization: Bearer …``, so every
access rule of the API applies unchanged. Nothing is fetched from outside this server: the chart is
inline SVG drawn by the script, and the Content-Security-Policy allows only this origin, with no inline
script. See docs/CONSOLE.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from api.errors import not_found

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# The only files served from api/static, with their media types: nothing else can be asked for.
STATIC_FILES = {
    "console.js": "text/javascript",
    "console.css": "text/css",
    "actions.css": "text/css",
    "report.js": "text/javascript",
    "report.css": "text/css",
}
REPORT_FILES = ("console.css", "report.css", "report.js")  # what the report page loads (and a printed copy)
STATIC_BASE = "/console/static"

router = APIRouter(tags=["console"], include_in_schema=False)


@router.get("/console", response_class=HTMLResponse)
def console(request: Request) -> HTMLResponse:
    """The console page: the sign-in form and the empty frame the script fills in.

    No authentication here, on purpose: the page is the same for everyone and holds no data. The data
    comes from the JSON API, which the script calls with the key the user signed in with."""
    response = templates.TemplateResponse(request, "console/index.html", {})
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/console/", response_class=RedirectResponse)
def console_slash() -> RedirectResponse:
    """``/console/`` → ``/console`` (no authentication: a redirect holds no data)."""
    return RedirectResponse("/console", status_code=308)


@router.get("/console/report", response_class=HTMLResponse)
def report_page(request: Request) -> HTMLResponse:
    """The monthly report's printable page (figures, charts, print CSS). No authentication here either: the page
    holds no data; its script reads ``GET /v1/reports/monthly`` with the key the user signs in with."""
    context = {"static": STATIC_BASE, "embedded": None, "lang": None}
    response = templates.TemplateResponse(request, "console/report.html", context)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


def report_html(report: dict[str, Any], *, lang: str = "zh", static: str = STATIC_BASE) -> str:
    """The same page with ``report`` inside it (the article's data-report attribute, escaped like any attribute),
    for a file printed without a server: ``shouwang report --format pdf``. ``static``: where its files are."""
    return templates.get_template("console/report.html").render(
        static=static, embedded=json.dumps(report, ensure_ascii=False), lang=lang
    )


@router.get("/console/static/{name}")
def console_static(name: str) -> FileResponse:
    """The console's script and style sheet (no authentication: static files, no data)."""
    if name not in STATIC_FILES:
        raise not_found(f"file {name}")
    return FileResponse(
        STATIC / name, media_type=STATIC_FILES[name], headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    )
