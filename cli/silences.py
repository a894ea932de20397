"""``shouwang silence add|list|expire``: maintenance windows and ad-hoc silences, on the alert store
directly (an operator at the server's shell). The same rules as the API: at least one matcher, a
reason, an end at most SHOUWANG_SILENCE_MAX_DAYS after the start."""

from __future__ import annotations

import getpass
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from alerts.models import Silence

app = typer.Typer(
    no_args_is_help=True,
    help="Silences: mute matching alerts for a while (recorded, not notified). Kept as history when expired.",
)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _quiet() -> None:
    """The answer stays one line: no migration chatter (before alembic is imported)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"shouwang: {message}", err=True)
    return typer.Exit(code=1)


def _when(value: str, now: datetime, option: str) -> datetime:
    """ISO 8601 with an offset (or epoch seconds), or a duration from now such as 90m, 4h, 2d."""
    from shouwang.events import parse_timestamp

    match = _DURATION.match(value.strip())
    if match:
        return now + timedelta(**{_UNITS[match[2]]: float(match[1])})
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError) as exc:
        raise _fail(f"{option}: {exc}; give a time with an offset (2026-12-08T18:00+08:00) or 90m, 4h, 2d") from exc


@contextmanager
def _session() -> Iterator[Session]:
    from alerts.db import Store
    from shouwang.settings import get_settings

    store = Store(get_settings().store_url)  # migrates the store if it is not current
    try:
        with store.transaction() as session:
            yield session
    finally:
        store.close()


def _line(silence: Silence, now: datetime) -> str:
    from alerts.admin import silence_state

    matchers = " ".join(
        f"{name}={value}"
        for name, value in (
            ("household", silence.household_id),
            ("meter", silence.meter_id),
            ("grid_cell", silence.grid_cell),
            ("kind", silence.kind),
        )
        if value is not None
    )
    return (
        f"{silence.id}\t{silence_state(silence, now)}\t{silence.starts_at.isoformat()} → {silence.ends_at.isoformat()}"
        f"\t{matchers}\tby {silence.created_by}\t{silence.reason}"
    )


def _default_by() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@app.command("add")
def add(
    reason: Annotated[str, typer.Option("--reason", help="Why, e.g. 'maintenance: meter swap'.")],
    until: Annotated[str, typer.Option("--until", help="When it ends: 2026-12-08T18:00+08:00, or 90m, 4h, 2d.")],
    household: Annotated[str | None, typer.Option("--household", help="Household id (hh_…).")] = None,
    meter: Annotated[str | None, typer.Option("--meter", help="Meter id.")] = None,
    grid_cell: Annotated[str | None, typer.Option("--grid-cell", help="Grid cell, e.g. FT-12-3.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Alert kind, e.g. no_usage.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="When it starts (default: now).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who sets it (default: cli:<login>).")] = None,
) -> None:
    """Silence alerts matching every matcher given (at least one) until a time."""
    _quiet()
    from alerts import admin
    from alerts.audit import Actor, record
    from alerts.models import utcnow
    from shouwang.settings import get_settings

    now = utcnow()
    ends_at = _when(until, now, "--until")
    starts_at = _when(start, now, "--start") if start is not None else now
    with _session() as session:
        try:
            silence = admin.add_silence(
                session,
                created_by=by or _default_by(),
                reason=reason,
                starts_at=starts_at,
                ends_at=ends_at,
                household_id=household,
                meter_id=meter,
                grid_cell=grid_cell,
                kind=kind,
                now=now,
                max_days=get_settings().silence_max_days,
            )
        except admin.AdminError as exc:
            raise _fail(str(exc)) from exc
        # In the audit trail with the write, as the API's silences are (the login, not --by, acted).
        actor = Actor(_default_by(), "operator")
        record(session, actor, "silence.create", "silence", silence.id, household_id=silence.household_id, now=now)
        typer.echo(_line(silence, now))


@app.command("list")
def list_(
    include_expired: Annotated[bool, typer.Option("--all", help="Ended silences too.")] = False,
    household: Annotated[str | None, typer.Option("--household")] = None,
    meter: Annotated[str | None, typer.Option("--meter")] = None,
    grid_cell: Annotated[str | None, typer.Option("--grid-cell")] = None,
    kind: Annotated[str | None, typer.Option("--kind")] = None,
) -> None:
    """Silences not yet ended (active and scheduled), newest first; one per line."""
    _quiet()
    from alerts import admin
    from alerts.models import utcnow

    now = utcnow()
    with _session() as session:
        query = admin.find_silences(
            now=now,
            include_expired=include_expired,
            household_id=household,
            meter_id=meter,
            grid_cell=grid_cell,
            kind=kind,
        )
        lines = [_line(silence, now) for silence in session.scalars(query)]
    typer.echo("\n".join(lines) if lines else "no silences")


@app.command("expire")
def expire(silence_id: Annotated[str, typer.Argument(help="The silence's id (sil_…).")]) -> None:
    """End a silence now; it is kept as history."""
    _quiet()
    from alerts import admin
    from alerts.audit import Actor, record
    from alerts.models import Silence, utcnow

    now = utcnow()
    with _session() as session:
        silence = session.get(Silence, silence_id)
        if silence is None:
            raise _fail(f"unknown silence {silence_id}")
        if not admin.expire_silence(silence, now=now):
            typer.echo(f"{silence_id} had already ended at {silence.ends_at.isoformat()}")
            return
        actor = Actor(_default_by(), "operator")
        record(session, actor, "silence.expire", "silence", silence.id, household_id=silence.household_id, now=now)
        typer.echo(_line(silence, now))
