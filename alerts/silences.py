"""Why an alert must not be notified now: consent withdrawn, away mode, maintenance and ad-hoc silences.

Consulted by the router's stages (a new alert) and by the check-in timers (carers told later)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.models import Alert, Household, Silence
from alerts.policy import AWAY_MUTED_KINDS


def silence_reason(session: Session, alert: Alert, household: Household | None, now: datetime) -> str | None:
    """Why this alert must not be notified now, or None."""
    if household is not None and not household.consent_active:
        return "consent"
    if household is not None and household.is_away(now) and alert.kind in AWAY_MUTED_KINDS:
        return "away"
    candidates = session.scalars(select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now))
    for silence in candidates:
        if _matches(silence, alert):
            return silence.id
    return None


def _matches(silence: Silence, alert: Alert) -> bool:
    pairs = (
        (silence.household_id, alert.household_id),
        (silence.meter_id, alert.meter_id),
        (silence.grid_cell, alert.grid_cell),
        (silence.kind, alert.kind),
    )
    return all(wanted is None or wanted == actual for wanted, actual in pairs)
