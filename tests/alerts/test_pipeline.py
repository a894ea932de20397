"""The router's pipeline and timers on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from alerts import admin
from alerts.db import Store
from alerts.lifecycle import LifecycleError, acknowledge, escalate_due, remind_due, resolve
from alerts.models import Alert, Delivery
from alerts.pipeline import RouteContext, RouterConfig
from alerts.stages import default_pipeline
from shouwang.events import AlertEvent, AlertKind, Explanation, Severity, alert_id_for
from tests.alerts.conftest import T0, World, build_world


def event(
    meter: str,
    kind: str = "no_usage",
    severity: str = "high",
    transition: str = "raised",
    since: datetime = T0,
    at: datetime | None = None,
) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id_for(meter, kind, since),
        event=transition,  # type: ignore[arg-type]
        meter_id=meter,
        kind=AlertKind(kind),
        severity=Severity(severity),
        since=since,
        at=at or since + timedelta(hours=6),
        explanation=Explanation(zh="自 21:15 起无用水", en="no water use since 21:15"),
    )


def route(store: Store, config: RouterConfig, alert_event: AlertEvent, now: datetime) -> str:
    with store.transaction() as session:
        return default_pipeline().run(RouteContext(session=session, event=alert_event, now=now, config=config)).result


def told(store: Store, alert_id: str, event_type: str | None = None) -> list[str]:
    with store.transaction() as session:
        query = select(Delivery).where(Delivery.alert_id == alert_id)
        if event_type:
            query = query.where(Delivery.event_type == event_type)
        return sorted(d.recipient_id for d in session.scalars(query))


@pytest.fixture
def world(store: Store) -> World:
    return build_world(store)


def test_raise_tells_the_family_of_that_home_and_its_grid_worker_once(
    store: Store, config: RouterConfig, world: World
) -> None:
    raised = event("MA")
    assert route(store, config, raised, T0) == "notified"
    assert told(store, raised.alert_id) == sorted([world.family_a.id, world.grid_worker.id])
    assert route(store, config, raised, T0 + timedelta(seconds=5)) == "duplicate"
    assert len(told(store, raised.alert_id)) == 2
    with store.transaction() as session:
        delivery = session.scalars(select(Delivery).where(Delivery.recipient_id == world.family_a.id)).one()
        body = json.loads(delivery.payload)
    assert body["type"] == "alert.raised"
    assert body["data"]["view"] == "family"  # the family's view names the home as they know it, not by its id
    assert body["data"]["household"] == {"name": "Home A", "timezone": "Asia/Shanghai"}
    assert body["data"]["acknowledge_url"].endswith(f"/v1/alerts/{raised.alert_id}/ack")


def test_family_of_another_home_never_hears(store: Store, config: RouterConfig, world: World) -> None:
    for kind in ("no_usage", "continuous_flow", "spike"):
        route(store, config, event("MA", kind=kind), T0)
    with store.transaction() as session:
        heard = session.scalars(select(Delivery.alert_id).where(Delivery.recipient_id == world.family_b.id))
        assert list(heard) == []


def test_operations_kinds_go_to_staff_not_families(store: Store, config: RouterConfig, world: World) -> None:
    quality = event("MA", kind="data_quality", severity="low")
    route(store, config, quality, T0)
    assert told(store, quality.alert_id) == sorted([world.grid_worker.id, world.operator.id])


def test_away_mode_mutes_no_usage_for_that_home_only(store: Store, config: RouterConfig, world: World) -> None:
    with store.transaction() as session:
        home = session.get(type(world.home_a), world.home_a.id)
        assert home is not None
        admin.set_away(home, until=T0 + timedelta(days=3), note="visiting son", now=T0)
    silent = event("MA")
    assert route(store, config, silent, T0) == "silenced:away"
    assert told(store, silent.alert_id) == []
    leak = event("MA", kind="continuous_flow")  # a leak in an empty home still matters
    assert route(store, config, leak, T0) == "notified"
    other_home = event("MB")
    assert route(store, config, other_home, T0) == "notified"
    cleared = event("MA", transition="resolved", at=T0 + timedelta(hours=8))
    assert route(store, config, cleared, T0 + timedelta(hours=8)) == "silenced:away"
    assert told(store, silent.alert_id) == []  # no all-clear for an alert nobody heard


def test_consent_withdrawal_stops_everything(store: Store, config: RouterConfig, world: World) -> None:
    with store.transaction() as session:
        home = session.get(type(world.home_a), world.home_a.id)
        assert home is not None
        admin.withdraw_consent(home, by="the elder", now=T0)
    for kind in ("no_usage", "spike", "data_quality"):
        alert_event = event("MA", kind=kind)
        assert route(store, config, alert_event, T0) == "silenced:consent"
        assert told(store, alert_event.alert_id) == []
    with store.transaction() as session:
        alert = session.get(Alert, event("MA", kind="spike").alert_id)
        assert alert is not None and alert.silenced_by == "consent"  # recorded, not notified


def test_maintenance_silence_matches_its_meter(store: Store, config: RouterConfig, world: World) -> None:
    with store.transaction() as session:
        admin.add_silence(
            session,
            created_by="operator",
            reason="maintenance: meter swap",
            meter_id="MA",
            starts_at=T0 - timedelta(hours=1),
            ends_at=T0 + timedelta(hours=2),
        )
    assert route(store, config, event("MA", kind="spike"), T0).startswith("silenced:sil_")
    assert route(store, config, event("MB", kind="spike"), T0) == "notified"
    assert (
        route(store, config, event("MA", kind="spike", since=T0 + timedelta(hours=3)), T0 + timedelta(hours=3))
        == "notified"
    )  # the window is over


def test_detector_resolve_sends_the_all_clear_to_everyone_told(
    store: Store, config: RouterConfig, world: World
) -> None:
    route(store, config, event("MA"), T0)
    cleared = event("MA", transition="resolved", at=T0 + timedelta(hours=9))
    assert route(store, config, cleared, T0 + timedelta(hours=9)) == "notified"
    assert told(store, cleared.alert_id, "alert.resolved") == sorted([world.family_a.id, world.grid_worker.id])
    assert route(store, config, cleared, T0 + timedelta(hours=10)) == "duplicate"
    with store.transaction() as session:
        alert = session.get(Alert, cleared.alert_id)
        assert alert is not None
        assert (alert.status, alert.outcome, alert.resolved_by) == ("resolved", "condition_cleared", "detector")
        assert alert.next_escalation_at is None and alert.next_reminder_at is None


def test_unacknowledged_critical_alert_climbs_the_chain_and_ack_stops_it(
    store: Store, config: RouterConfig, world: World
) -> None:
    first, second = event("MA", severity="critical"), event("MB", severity="critical")
    route(store, config, first, T0)
    route(store, config, second, T0)
    with store.transaction() as session:
        assert escalate_due(session, now=T0 + timedelta(minutes=14), config=config) == []
        second_alert = session.get(Alert, second.alert_id)
        assert second_alert is not None
        acknowledge(session, second_alert, by="grid worker C1", now=T0 + timedelta(minutes=10))
    with store.transaction() as session:
        escalated = escalate_due(session, now=T0 + timedelta(minutes=15), config=config)
        assert [a.id for a in escalated] == [first.alert_id]
    assert told(store, first.alert_id, "alert.escalated") == [world.supervisor.id]
    assert told(store, second.alert_id, "alert.escalated") == []
    with store.transaction() as session:
        escalate_due(session, now=T0 + timedelta(minutes=45), config=config)  # 15 + 30 min: operators
    assert told(store, first.alert_id, "alert.escalated") == sorted([world.supervisor.id, world.operator.id])
    with store.transaction() as session:
        assert escalate_due(session, now=T0 + timedelta(hours=5), config=config) == []  # chain done


def test_reminders_repeat_while_unacknowledged(store: Store, config: RouterConfig, world: World) -> None:
    quiet = event("MA", kind="continuous_flow", severity="low")  # low: no escalation chain
    route(store, config, quiet, T0)
    with store.transaction() as session:
        assert remind_due(session, now=T0 + timedelta(hours=3), config=config) == []
        assert len(remind_due(session, now=T0 + timedelta(hours=4), config=config)) == 1
    assert told(store, quiet.alert_id, "alert.reminder") == sorted([world.family_a.id, world.grid_worker.id])
    with store.transaction() as session:
        alert = session.get(Alert, quiet.alert_id)
        assert alert is not None
        acknowledge(session, alert, by="daughter", now=T0 + timedelta(hours=5))
        assert remind_due(session, now=T0 + timedelta(hours=9), config=config) == []


def test_person_resolves_with_an_outcome_and_everyone_told_hears_it(
    store: Store, config: RouterConfig, world: World
) -> None:
    raised = event("MA")
    route(store, config, raised, T0)
    with store.transaction() as session:
        alert = session.get(Alert, raised.alert_id)
        assert alert is not None
        with pytest.raises(LifecycleError, match="outcome must be one of"):
            resolve(session, alert, by="gw", outcome="shrug", note=None, now=T0, config=config)
        resolve(
            session,
            alert,
            by="grid worker C1",
            outcome="resident_fine",
            note="was napping",
            now=T0 + timedelta(hours=1),
            config=config,
        )
    assert told(store, raised.alert_id, "alert.resolved") == sorted([world.family_a.id, world.grid_worker.id])
    with store.transaction() as session:
        alert = session.get(Alert, raised.alert_id)
        assert alert is not None and alert.outcome == "resident_fine"
        with pytest.raises(LifecycleError, match="already resolved"):
            acknowledge(session, alert, by="x", now=T0 + timedelta(hours=2))
    # the detector's own clear arrives later: recorded, nobody is told twice
    late = event("MA", transition="resolved", at=T0 + timedelta(hours=3))
    assert route(store, config, late, T0 + timedelta(hours=3)) == "already-resolved"
    assert len(told(store, raised.alert_id, "alert.resolved")) == 2


def test_unknown_meter_reaches_operators_only(store: Store, config: RouterConfig, world: World) -> None:
    stray = event("M-UNKNOWN", kind="spike")
    assert route(store, config, stray, T0) == "no-recipient"  # spike's tier 0 has no global subscribers
    offline = event("M-UNKNOWN", kind="meter_offline", severity="low")
    route(store, config, offline, T0)
    assert told(store, offline.alert_id) == [world.operator.id]


def test_incident_reaches_the_cell_and_merged_reports_only_raise_its_count(
    store: Store, config: RouterConfig, world: World
) -> None:
    def incident(count: int) -> AlertEvent:
        return AlertEvent(
            alert_id=alert_id_for("cell:C1:inc_1", "incident", T0),
            event="raised",
            grid_cell="C1",
            kind=AlertKind.INCIDENT,
            severity=Severity.HIGH,
            since=T0,
            at=T0,
            explanation=Explanation(zh=f"楼道充电（{count} 条报告）", en=f"corridor charging ({count} reports)"),
            facts={"category": "ebike", "report_count": count},
        )

    first = incident(1)
    assert route(store, config, first, T0) == "notified"
    assert told(store, first.alert_id) == [world.grid_worker.id]  # families never get incidents
    assert route(store, config, incident(3), T0 + timedelta(hours=1)) == "duplicate"
    assert route(store, config, incident(2), T0 + timedelta(hours=2)) == "duplicate"  # late: no step back
    assert told(store, first.alert_id) == [world.grid_worker.id]
    with store.transaction() as session:
        alert = session.get(Alert, first.alert_id)
        assert alert is not None and alert.facts["report_count"] == 3 and "3 条" in alert.explanation_zh


def test_a_silence_that_goes_on_raises_the_severity_and_tells_everyone_again(
    store: Store, config: RouterConfig, world: World
) -> None:
    raised = event("MA", severity="high")
    route(store, config, raised, T0)
    worse = event("MA", severity="critical", transition="escalated", at=T0 + timedelta(hours=24))
    assert worse.alert_id == raised.alert_id
    assert route(store, config, worse, T0 + timedelta(hours=24)) == "notified"
    assert told(store, raised.alert_id, "alert.updated") == sorted([world.family_a.id, world.grid_worker.id])
    with store.transaction() as session:
        alert = session.get(Alert, raised.alert_id)
        assert alert is not None and alert.severity == "critical"
    assert route(store, config, worse, T0 + timedelta(hours=25)) == "duplicate"


def test_an_escalation_never_lowers_severity_nor_reopens(store: Store, config: RouterConfig, world: World) -> None:
    raised = event("MA", severity="critical")
    route(store, config, raised, T0)
    assert route(store, config, event("MA", severity="high", transition="escalated"), T0) == "not-worse"
    other = event("MB", severity="high")
    route(store, config, other, T0)
    route(store, config, event("MB", transition="resolved"), T0 + timedelta(hours=1))
    late = event("MB", severity="critical", transition="escalated")
    assert route(store, config, late, T0 + timedelta(hours=2)) == "already-resolved"


def test_an_escalation_whose_raise_was_lost_is_the_raise(store: Store, config: RouterConfig, world: World) -> None:
    worse = event("MA", severity="critical", transition="escalated")
    assert route(store, config, worse, T0) == "notified"
    assert told(store, worse.alert_id, "alert.raised") == sorted([world.family_a.id, world.grid_worker.id])
