"""A household erased on request (PIPL's right to deletion): its personal data goes, its alerts stay as
anonymous statistics, and the worker forgets its meters.

In the one transaction of ``erase_household``:

- the household becomes an anonymous shell: its id, time zone, grid cell, community and dates stay (the monthly
  reports count past months with them); its name, address, consent texts, away mode and routine hints go, and
  its consent counts as withdrawn, so every path that checks consent before telling anyone stops too;
- its consent history, its silences and its meters' day summaries are deleted;
- its open alerts are closed (``resolved_by`` "erasure", timers cleared, nothing told) and every alert of it is
  anonymised (``alerts.retention.anonymise_alerts``): kind, severity, times, outcome, grid cell stay;
- notifications about it not sent yet are dead-lettered, and every stored notification body about it is emptied
  (with the attempts' error texts);
- recipients that exist only for it (family members or the resident whose every subscription is to this home)
  lose their name and channel addresses and credentials; their channels are disabled and their keys revoked.
  Staff are never erased with a household. Every subscription to the household is deleted;
- ``HouseholdErasure`` records who erased it and when, and how many records of each kind, never what.

Afterwards the API refuses its meters' readings, the router records no alert of them, and the router's feedback
publisher tells the worker (``erase``, one message per meter; streams/feedback.py), which replaces each meter's
learned state by a marker for good and dead-letters its readings with the reason.

The meter rows stay, linked to the shell: a meter id names a device, linked here to no person any more, and it is
what readings are refused by. Such a meter cannot be enrolled again (its id stays taken).

Idempotent: erasing an erased household finds its record and changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, delete, or_, select, update
from sqlalchemy.orm import Session

from alerts.consent import household_of_payload
from alerts.models import (
    Alert,
    AllIsWellMessage,
    ApiKey,
    ConsentEvent,
    Delivery,
    DeliveryAttempt,
    Endpoint,
    Household,
    HouseholdErasure,
    Meter,
    MeterDay,
    Recipient,
    Silence,
    Subscription,
)
from alerts.policy import RESIDENT
from alerts.retention import anonymise_alerts, close_erased
from alerts.statuses import DeliveryStatus, EndpointStatus

ERASED_ERROR = "household erased: not sent"
PERSONAL_ROLES = ("family", RESIDENT)  # recipients who are there for one home; staff are there for many


def erase_household(session: Session, household: Household, *, by: str, now: datetime) -> tuple[HouseholdErasure, bool]:
    """Erase ``household`` (module docstring). ``by`` is the operator's key (``role:key_id``). Returns the erasure
    record and whether this call erased it (False: it was erased before, and nothing changed)."""
    existing = session.get(HouseholdErasure, household.id)
    if existing is not None:
        return existing, False
    meter_ids = list(session.scalars(select(Meter.meter_id).where(Meter.household_id == household.id)))
    counts = {"meters": len(meter_ids)}
    counts.update(_alerts(session, household, now))
    counts.update(_notifications(session, household))
    counts.update(_people(session, household, now))
    counts["consent_events"] = _deleted(session, delete(ConsentEvent).where(ConsentEvent.household_id == household.id))
    silences = or_(Silence.household_id == household.id, Silence.meter_id.in_(meter_ids))
    counts["silences"] = _deleted(session, delete(Silence).where(silences))
    counts["meter_days"] = _deleted(session, delete(MeterDay).where(MeterDay.meter_id.in_(meter_ids)))
    household.name, household.address = "", None
    household.consent_given_by, household.consent_scope = "", ""
    household.consent_withdrawn_at = household.consent_withdrawn_at or now
    household.consent_withdrawn_by = None
    household.away_until = household.away_note = household.away_set_by = None
    household.away_ends_on_use = False
    household.routine_hints = None
    household.erased_at = household.updated_at = now
    # Without meters there is nothing to tell the worker: the record is "sent" at once.
    record = HouseholdErasure(
        household_id=household.id, erased_at=now, erased_by=by, counts=counts, sent_at=None if meter_ids else now
    )
    session.add(record)
    session.flush()
    return record, True


def _deleted(session: Session, statement: Delete) -> int:
    result = cast("CursorResult[Any]", session.execute(statement))  # a DELETE's result is a cursor result
    return result.rowcount


def _alerts(session: Session, household: Household, now: datetime) -> dict[str, int]:
    alerts = list(session.scalars(select(Alert).where(Alert.household_id == household.id)))
    closed = 0
    for alert in alerts:
        closed += close_erased(session, alert, now=now)
        alert.feedback_sent_at = alert.feedback_sent_at or now  # nothing is taught to an erased meter
        alert.updated_at = now
    anonymise_alerts(session, alerts, now=now)
    return {"alerts": len(alerts), "alerts_closed": closed}


def _notifications(session: Session, household: Household) -> dict[str, int]:
    """Stop what is not sent; empty every stored body about the household (those of its alerts, and the
    messages about no alert that name it: all is well, away mode)."""
    naming_it = [
        delivery_id
        for delivery_id, payload in session.execute(
            select(Delivery.id, Delivery.payload).where(
                Delivery.alert_id.is_(None), Delivery.payload.contains(f'"{household.id}"')
            )
        )
        if household_of_payload(payload) == household.id
    ]
    about_it = or_(
        Delivery.alert_id.in_(select(Alert.id).where(Alert.household_id == household.id)), Delivery.id.in_(naming_it)
    )
    stopped = 0
    deliveries = list(session.scalars(select(Delivery).where(about_it)))
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.PENDING:
            delivery.status, delivery.last_error, delivery.claimed_until = DeliveryStatus.DEAD, ERASED_ERROR, None
            stopped += 1
        elif delivery.last_error is not None:
            delivery.last_error = "erased"  # an error text may quote a channel's address
        delivery.payload = ""
    session.execute(
        update(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id.in_(select(Delivery.id).where(about_it)), DeliveryAttempt.error.is_not(None))
        .values(error="erased")
        .execution_options(synchronize_session=False)
    )
    return {"notifications": len(deliveries), "notifications_stopped": stopped}


def _people(session: Session, household: Household, now: datetime) -> dict[str, int]:
    """Recipients there only for this household are erased; every subscription to it is deleted."""
    subscriptions = list(session.scalars(select(Subscription).where(Subscription.household_id == household.id)))
    erased = 0
    for recipient_id in sorted({s.recipient_id for s in subscriptions}):
        recipient = session.get(Recipient, recipient_id)
        if recipient is None or recipient.role not in PERSONAL_ROLES:
            continue
        elsewhere = session.scalar(
            select(Subscription.id)
            .where(
                Subscription.recipient_id == recipient_id,
                or_(Subscription.household_id.is_(None), Subscription.household_id != household.id),
            )
            .limit(1)
        )
        if elsewhere is not None:  # a daughter with both parents enrolled apart stays for the other home
            continue
        recipient.name = ""
        for endpoint in session.scalars(select(Endpoint).where(Endpoint.recipient_id == recipient_id)):
            endpoint.url, endpoint.secret, endpoint.sealed_config = "", "", None
            endpoint.status, endpoint.disabled_reason = EndpointStatus.DISABLED, "erased with its household"
            endpoint.failing_since = endpoint.last_error = endpoint.send_lease_until = None
        for key in session.scalars(select(ApiKey).where(ApiKey.recipient_id == recipient_id)):
            key.name = ""
            key.revoked_at = key.revoked_at or now
        erased += 1
    subscription_ids = [s.id for s in subscriptions]
    session.execute(delete(AllIsWellMessage).where(AllIsWellMessage.subscription_id.in_(subscription_ids)))
    session.execute(delete(Subscription).where(Subscription.id.in_(subscription_ids)))
    return {"recipients": erased, "subscriptions": len(subscriptions)}


def erasure_of(session: Session, household_id: str) -> HouseholdErasure | None:
    return session.get(HouseholdErasure, household_id)
