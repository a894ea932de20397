"""The retention job (alerts/retention.py) on a real store (SQLite and PostgreSQL), its clock moved by the test:
what is past its time is purged, what is not is kept, and a second pass finds nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from alerts.db import Store
from alerts.lifecycle import resolve
from alerts.models import Alert, AlertTransition, Delivery, DeliveryAttempt, MeterDay
from alerts.pipeline import RouterConfig
from alerts.reports import rank_concerns
from alerts.retention import ANONYMISED_EN, Purged, RetentionJob, RetentionPolicy
from alerts.statuses import DeliveryStatus
from tests.alerts.conftest import T0, build_world
from tests.alerts.test_pipeline import event, route

POLICY = RetentionPolicy(
    payload_after=timedelta(days=30),
    alert_facts_after=timedelta(days=90),
    attempts_after=timedelta(days=60),
    daily_after=timedelta(days=14),
)
NOW = T0 + timedelta(days=100)
RECENT = NOW - timedelta(days=5)
INCIDENT_FACTS = {"category": "ebike", "urgency": "high", "report_count": 3, "households": 2, "confidence": 0.9}


def test_the_job_purges_what_is_old_and_keeps_what_is_not(store: Store, config: RouterConfig) -> None:
    build_world(store)
    old, recent, still_open = event("MA"), event("MB", since=RECENT - timedelta(hours=6)), event("MA", kind="spike")
    incident = event("C1", kind="incident").model_copy(update={"meter_id": None, "grid_cell": "C1"})
    incident = incident.model_copy(update={"facts": INCIDENT_FACTS})
    for alert_event in (old, recent, still_open, incident):
        route(store, config, alert_event.model_copy(update={"facts": alert_event.facts or {"silence_h": 9.5}}), T0)
    with store.transaction() as session:
        for alert_id, closed_at in ((old.alert_id, T0), (recent.alert_id, RECENT), (incident.alert_id, T0)):
            alert = session.get(Alert, alert_id)
            assert alert is not None
            resolve(
                session, alert, by="Grid worker C1", outcome="help_given", note="fell", now=closed_at, config=config
            )
        deliveries = list(session.scalars(select(Delivery).order_by(Delivery.id)))
        assert len(deliveries) >= 4
        ended_long_ago, ended_lately, dead_long_ago, pending = deliveries[:4]
        ended_long_ago.status, ended_long_ago.delivered_at = DeliveryStatus.DELIVERED, T0
        ended_lately.status, ended_lately.delivered_at = DeliveryStatus.DELIVERED, RECENT
        dead_long_ago.status, dead_long_ago.next_attempt_at = DeliveryStatus.DEAD, T0
        pending.next_attempt_at = T0  # still trying: its body is needed
        for at in (T0, RECENT):
            session.add(DeliveryAttempt(delivery_id=pending.id, at=at, outcome="retry", error="503", duration_ms=9))
        for day in ("2026-03-02", (NOW - timedelta(days=2)).date().isoformat()):
            session.add(MeterDay(meter_id="MA", day=day, litres=100.0, hours_with_use=8, complete=True))
        ids = [d.id for d in (ended_long_ago, ended_lately, dead_long_ago, pending)]

    job = RetentionJob(store, POLICY, every_s=3600, clock=lambda: NOW)
    purged = job.run_once()
    assert purged == Purged(payloads=2, alerts=2, attempts=1, meter_days=1)
    with store.transaction() as session:
        bodies = [session.get(Delivery, delivery_id) for delivery_id in ids]
        assert [bool(d and d.payload) for d in bodies] == [False, True, False, True]
        alerts = {a.id: a for a in session.scalars(select(Alert))}
        gone, kept, open_one, report = (alerts[e.alert_id] for e in (old, recent, still_open, incident))
        assert (gone.explanation_en, gone.facts, gone.resolution_note, gone.resolved_by) == (
            ANONYMISED_EN,
            {},
            None,
            None,
        )
        assert (gone.outcome, gone.severity, gone.since) == ("help_given", "high", T0)  # the statistics stay
        actors = set(session.scalars(select(AlertTransition.actor).where(AlertTransition.alert_id == gone.id)))
        assert "Grid worker C1" not in actors
        assert (kept.facts, kept.resolution_note, kept.anonymised_at) == ({"silence_h": 9.5}, "fell", None)
        assert open_one.anonymised_at is None and open_one.explanation_en == "no water use since 21:15"
        # A resident's report keeps what the reports rank concerns by, not its words.
        assert report.facts == {k: v for k, v in INCIDENT_FACTS.items() if k != "confidence"}
        (concern,) = rank_concerns([report])
        assert (concern["category"], concern["reports"], concern["households"]) == ("ebike", 3, 2)
        assert [a.at for a in session.scalars(select(DeliveryAttempt))] == [RECENT]
        assert [d.day for d in session.scalars(select(MeterDay))] == [(NOW - timedelta(days=2)).date().isoformat()]
    assert job.run_once() == Purged()  # nothing is due twice
