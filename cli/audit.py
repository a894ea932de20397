"""``shouwang audit export``: the audit trail (alerts/audit.py) as JSON Lines, one event a line, oldest first,
for a data officer or an archive. Read straight from the store (an operator at the server's shell); the
export is itself recorded in the trail, as ``cli:<login>``."""

from __future__ import annotations

import getpass
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="The audit trail: who read or changed which household, alert or delivery.")
BATCH = 1000


def _fail(message: str) -> typer.Exit:
    typer.echo(f"shouwang: {message}", err=True)
    return typer.Exit(code=1)


def _time(value: str | None, option: str) -> datetime | None:
    from shouwang.events import parse_timestamp

    if value is None:
        return None
    try:
        parsed: datetime = parse_timestamp(value)
    except (ValueError, TypeError) as exc:
        raise _fail(f"{option}: {exc}; give a time with an offset, e.g. 2026-12-01T00:00+08:00") from exc
    return parsed


def _login() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@app.command("export")
def export(
    out: Annotated[Path, typer.Option("--out", help="The JSON Lines file to write (replaced if it exists).")],
    since: Annotated[
        str | None, typer.Option("--since", help="Events at or after, e.g. 2026-12-01T00:00+08:00.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Events before this time.")] = None,
    household: Annotated[
        str | None, typer.Option("--household", help="Only events about this household (hh_…), list reads included.")
    ] = None,
) -> None:
    """Write the audit events matching the filters to --out, oldest first, with a progress line on stderr."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the progress and the count, no migration chatter
    start, end = _time(since, "--since"), _time(until, "--until")
    if start is not None and end is not None and start >= end:
        raise _fail("--since must be before --until")
    if not out.parent.is_dir():
        raise _fail(f"--out: no such folder {out.parent}")

    from sqlalchemy import func, select

    from alerts.audit import Actor, AuditEvent, as_dict, find, record
    from alerts.db import Store
    from shouwang.settings import get_settings

    store = Store(get_settings().store_url)  # migrates the store if it is not current
    matching = find(household_id=household, since=start, until=end)
    partial = out.with_name(f".{out.name}.{os.getpid()}")  # a cut-short export never looks like a whole one
    written = 0
    try:
        with store.transaction() as session:
            total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
            last = 0
            with partial.open("w", encoding="utf-8") as file:
                while True:  # in batches by id: memory stays flat however long the trail
                    batch = list(
                        session.scalars(matching.where(AuditEvent.id > last).order_by(AuditEvent.id).limit(BATCH))
                    )
                    for event in batch:
                        file.write(json.dumps(as_dict(event), ensure_ascii=False) + "\n")
                    written += len(batch)
                    if batch:
                        last = batch[-1].id
                        session.expunge_all()
                    typer.echo(f"\rexported {written}/{max(total, written)}", nl=not batch, err=True)
                    if not batch:
                        break
        os.replace(partial, out)
        asked = {"household_id": household, "since": since, "until": until}
        with store.transaction() as session:
            record(
                session,
                Actor(_login(), "operator"),
                "audit.export",
                "audit",
                household_id=household,
                detail={"filter": {k: v for k, v in asked.items() if v is not None}, "count": written},
            )
    finally:
        partial.unlink(missing_ok=True)
        store.close()
    typer.echo(f"{written} audit event(s) written to {out}")
