"""``shouwang report``: a community's monthly report from the alert store, as JSON, an Excel workbook or a PDF of the
console's printable page (an operator at the server's shell: any community, or every one when none is named).
``--demo`` makes the report from a made-up month seeded into a throwaway store instead (alerts/report_demo.py)."""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

FORMATS = ("json", "xlsx", "pdf")
LANGUAGES = ("zh", "en")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"shouwang: {message}", err=True)
    return typer.Exit(code=1)


def report(
    month: Annotated[
        str | None,
        typer.Option("--month", help="YYYY-MM, in the community's time zone (not a future one); --demo: last month"),
    ] = None,
    community: Annotated[str | None, typer.Option("--community", help="The community; every one when left out")] = None,
    format_: Annotated[str, typer.Option("--format", help="json, xlsx (an Excel workbook) or pdf")] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", help="The file to write; JSON goes to standard output without it")
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="The PDF's language: zh or en")] = "zh",
    demo: Annotated[
        bool, typer.Option("--demo", help="A made-up month of a 36-home community, in a throwaway store")
    ] = False,
) -> None:
    """A month's report: households, alerts, response times, outcomes, residents' reports, delivery; the
    previous month beside each figure."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line of answer, no migration chatter
    if format_ not in FORMATS:
        raise _fail(f"--format must be json, xlsx or pdf, not {format_!r}")
    if lang not in LANGUAGES:
        raise _fail(f"--lang must be zh or en, not {lang!r}")
    if format_ in ("xlsx", "pdf") and out is None:
        raise _fail(f"--out FILE is needed for a {'workbook (xlsx)' if format_ == 'xlsx' else 'PDF'}")
    if out is not None and not out.parent.is_dir():
        raise _fail(f"--out: no such folder {out.parent}")
    if month is None and not demo:
        raise _fail("--month YYYY-MM is needed (e.g. --month 2026-11)")

    from alerts.reports import ReportError
    from cli.report_pdf import PdfError, find_chromium
    from shouwang.settings import get_settings

    settings = get_settings()
    try:
        chromium = find_chromium(settings.chromium) if format_ == "pdf" else ""  # before minutes of work, not after
        result = _demo_report(month, community) if demo else _stored_report(settings.store_url, month or "", community)
    except (ReportError, PdfError) as exc:
        raise _fail(f"--{exc.field}: {exc}" if isinstance(exc, ReportError) else str(exc)) from exc
    try:
        _write(result, format_, out, chromium=chromium, lang=lang)
    except PdfError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:
        raise _fail(f"--out: cannot write {out}: {exc.strerror or exc}") from exc


def _stored_report(store_url: str, month: str, community: str | None) -> dict[str, Any]:
    from alerts.db import Store
    from alerts.reports import OPERATOR, monthly_report

    store = Store(store_url)  # migrates the store if it is not current
    try:
        with store.transaction() as session:
            return monthly_report(session, community=community, month=month, scope=OPERATOR)
    finally:
        store.close()


def _demo_report(month: str | None, community: str | None) -> dict[str, Any]:
    """The demo community's month, seeded into a SQLite store in a temporary folder that is removed afterwards."""
    from alerts.db import Store
    from alerts.report_demo import seed_demo
    from alerts.reports import OPERATOR, ReportError, monthly_report, parse_month, previous_month_of
    from shouwang.settings import Settings

    month = month or previous_month_of(date.today())
    parse_month(month)  # a bad month is refused before anything is seeded
    with tempfile.TemporaryDirectory(prefix="shouwang-demo-") as folder:
        settings = Settings(var_dir=Path(folder), database_url=f"sqlite:///{Path(folder) / 'demo.db'}")
        store = Store(settings.store_url)
        try:
            with store.transaction() as session:  # a future month is refused before anything is seeded, too
                monthly_report(session, community=None, month=month, scope=OPERATOR)
            demo = seed_demo(store, settings, month=month)
            if community is not None and community != demo.community:
                raise ReportError("community", f"the demo has one community, {demo.community}, not {community}")
            with store.transaction() as session:
                return monthly_report(session, community=demo.community, month=demo.month, scope=OPERATOR)
        finally:
            store.close()


def _write(result: dict[str, Any], format_: str, out: Path | None, *, chromium: str, lang: str) -> None:
    if format_ == "xlsx":
        from alerts.report_workbook import write_workbook

        assert out is not None
        write_workbook(result, out)
    elif format_ == "pdf":
        from cli.report_pdf import write_pdf

        assert out is not None
        write_pdf(result, out, chromium=chromium, lang=lang)
    elif out is None:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    else:
        out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    typer.echo(f"wrote {out} ({result['community'] or 'every community'}, {result['month']})")
