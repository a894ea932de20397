"""``shouwang report``: a community's monthly report from the alert store, as JSON or an Excel workbook (an
operator at the server's shell: any community, or every one when none is named)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

FORMATS = ("json", "xlsx")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"shouwang: {message}", err=True)
    return typer.Exit(code=1)


def report(
    month: Annotated[str, typer.Option("--month", help="YYYY-MM, in the community's time zone (not a future one)")],
    community: Annotated[str | None, typer.Option("--community", help="The community; every one when left out")] = None,
    format_: Annotated[str, typer.Option("--format", help="json or xlsx (an Excel workbook)")] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", help="The file to write; JSON goes to standard output without it")
    ] = None,
) -> None:
    """A month's report: households, alerts, response times, outcomes, residents' reports, delivery; the
    previous month beside each figure."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line of answer, no migration chatter
    if format_ not in FORMATS:
        raise _fail(f"--format must be json or xlsx, not {format_!r}")
    if format_ == "xlsx" and out is None:
        raise _fail("--out FILE is needed for a workbook (xlsx)")
    if out is not None and not out.parent.is_dir():
        raise _fail(f"--out: no such folder {out.parent}")

    from alerts.db import Store
    from alerts.reports import OPERATOR, ReportError, monthly_report
    from shouwang.settings import get_settings

    store = Store(get_settings().store_url)  # migrates the store if it is not current
    try:
        with store.transaction() as session:
            result = monthly_report(session, community=community, month=month, scope=OPERATOR)
    except ReportError as exc:
        raise _fail(f"--{exc.field}: {exc}") from exc
    finally:
        store.close()
    try:
        if format_ == "xlsx":
            from alerts.report_workbook import write_workbook

            assert out is not None
            write_workbook(result, out)
        elif out is None:
            typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
            return
        else:
            out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise _fail(f"--out: cannot write {out}: {exc.strerror or exc}") from exc
    typer.echo(f"wrote {out} ({result['community'] or 'every community'}, {result['month']})")
