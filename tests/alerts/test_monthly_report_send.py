"""The monthly report sent on its own (alerts/monthly_report_send.py), on a real store (SQLite and PostgreSQL), by the
router's timer pass with an injected clock: on the 1st in the community's time zone and not before, to the
supervisor only, once — across a restart, with two routers at once, and against a second insert of the same row."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from alerts import admin
from alerts.db import Store
from alerts.models import Delivery, Endpoint, Household, MonthlyReportMessage, Recipient
from alerts.monthly_report_send import EVENT_TYPE, monthly_reports_due, send_report
from alerts.pipeline import RouterConfig
from alerts.reports import OPERATOR, monthly_report
from alerts.router import Router
from shouwang.settings import Settings
from tests.alerts.conftest import BOX, LOOPBACK, T0, build_world
from tests.alerts.test_payloads import SCHEMA
from tests.alerts.test_pipeline import event, route


def local(moment: str) -> datetime:
    """A time on the community's clock (Shanghai, UTC+8), as the router's UTC clock reads it."""
    return datetime.fromisoformat(f"{moment}+08:00").astimezone(UTC)


def reports_sent(store: Store) -> list[Delivery]:
    with store.transaction() as session:
        return list(session.scalars(select(Delivery).where(Delivery.event_type == EVENT_TYPE)))


def test_the_supervisor_gets_last_months_report_on_the_first_once(
    store: Store, config: RouterConfig, tmp_path: Path
) -> None:
    world = build_world(store)
    with store.transaction() as session:  # enrolled in February
        for home in session.scalars(select(Household)):
            home.created_at = T0 - timedelta(days=20)
    route(store, config, event("MA", kind="spike", severity="critical"), T0)  # 2 March
    clock = [local("2026-04-01T05:59:00")]
    settings = Settings(
        var_dir=tmp_path, database_url=store.url, public_url="https://shouwang.example", monthly_report_at="06:00"
    )

    def router() -> Router:
        return Router(settings, clock=lambda: clock[0], all_is_well_check_s=0)

    first = router()
    try:
        first.run_timers_once()
        assert reports_sent(store) == [], "not before 06:00 on the 1st, on the community's clock"
        clock[0] = local("2026-04-01T06:00:00")  # still 31 March in UTC: the community's day counts
        assert clock[0].day == 31
        first.run_timers_once()
        [sent] = reports_sent(store)
        second = router()  # another router, at the same time
        try:
            clock[0] += timedelta(minutes=5)
            first.run_timers_once()
            second.run_timers_once()
        finally:
            second.store.close()
    finally:
        first.store.close()
    restarted = router()  # the first one restarted, later that day
    try:
        clock[0] = local("2026-04-01T18:00:00")
        restarted.run_timers_once()
    finally:
        restarted.store.close()
    assert [d.id for d in reports_sent(store)] == [sent.id], "once, whatever the number of routers or restarts"

    # To the supervisor of FT-Lianhua only (the operator, grid workers and families hear nothing), on their channel.
    with store.transaction() as session:
        endpoint = session.get(Endpoint, sent.endpoint_id)
        assert endpoint is not None and endpoint.recipient_id == world.supervisor.id
        report = monthly_report(session, community="FT-Lianhua", month="2026-03", scope=OPERATOR, now=clock[0])
    body = json.loads(sent.payload)
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(body)
    data = body["data"]
    assert (data["community"], data["month"], data["previous_month"]) == ("FT-Lianhua", "2026-03", "2026-02")
    assert sent.alert_id is None and data["summary"]["alerts"] == report["sections"]["alerts"]["total"]["value"] == 1
    assert data["links"] == {
        "page": "https://shouwang.example/console/report?community=FT-Lianhua&month=2026-03",
        "workbook": "https://shouwang.example/console/report?community=FT-Lianhua&month=2026-03&download=xlsx",
    }
    assert data["message"]["zh"].startswith("FT-Lianhua 2026年3月报表：在册 2 户；告警 1 条（上月 0 条）")

    # The unique row is what keeps it once: a second insert of the same report fails, and records nothing.
    with pytest.raises(IntegrityError), store.transaction() as session:
        send_report(session, world.supervisor.id, "FT-Lianhua", "2026-03", now=clock[0], public_url="https://x")
    assert len(reports_sent(store)) == 1


def test_late_in_the_first_week_never_after_and_never_when_off(store: Store, tmp_path: Path) -> None:
    build_world(store)
    with store.transaction() as session:  # a second supervisor, of a community with no households at all
        other, _ = admin.create_recipient(
            session, name="Supervisor 2", role="supervisor", webhook_url="http://127.0.0.1:9/h", allow=LOOPBACK, box=BOX
        )
        admin.subscribe(session, other, community="FT-Empty")
        supervisors = {r.id for r in session.scalars(select(Recipient).where(Recipient.role == "supervisor"))}
    url = "https://shouwang.example"
    assert monthly_reports_due(store, now=local("2026-04-03T10:00:00"), public_url=url, at="off") == []
    assert monthly_reports_due(store, now=local("2026-04-08T10:00:00"), public_url=url) == [], "past the first week"
    assert len(monthly_reports_due(store, now=local("2026-04-07T23:00:00"), public_url=url)) == 2  # a router was down
    with store.transaction() as session:
        rows = session.scalars(select(MonthlyReportMessage)).all()
        assert {(r.recipient_id, r.month) for r in rows} == {(s, "2026-03") for s in supervisors}
    [empty] = [d for d in reports_sent(store) if json.loads(d.payload)["data"]["community"] == "FT-Empty"]
    assert json.loads(empty.payload)["data"]["summary"]["households"] == 0  # an empty report, not an error
