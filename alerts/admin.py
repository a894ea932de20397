"""Enrolment and configuration of the store: households with consent, meters, recipients and
their webhook endpoints, subscriptions, away mode and silences. The API calls these; so do
tests. Each checks its input and raises ``AdminError`` with a one-line reason."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from alerts.all_is_well import DEFAULT_AT as ALL_IS_WELL_DEFAULT_AT
from alerts.all_is_well import EVERY as ALL_IS_WELL_EVERY
from alerts.channels.registry import Registered
from alerts.channels.validation import VENDOR_NAMES, type_for_url
from alerts.models import Endpoint, Household, Meter, Recipient, Silence, Subscription
from alerts.policy import ALL_KINDS, RECIPIENT_ROLES, RESIDENT, SEVERITIES
from alerts.secret_box import SecretBox
from alerts.statuses import EndpointStatus
from alerts.webhook_secrets import seal_webhook_secret
from alerts.webhooks import UnsafeURLError, check_url, new_secret


class AdminError(ValueError):
    """Invalid enrolment or configuration; the message says what is wrong."""


def create_household(
    session: Session,
    *,
    name: str,
    timezone: str,
    grid_cell: str,
    consent_given_by: str,
    consent_given_at: datetime,
    consent_scope: str,
    address: str | None = None,
    community: str | None = None,
) -> Household:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AdminError(f"unknown timezone {timezone!r}; use an IANA name such as Asia/Shanghai") from exc
    household = Household(
        name=name,
        timezone=timezone,
        grid_cell=grid_cell,
        community=community,
        address=address,
        consent_given_by=consent_given_by,
        consent_given_at=consent_given_at,
        consent_scope=consent_scope,
    )
    session.add(household)
    session.flush()
    return household


def add_meter(session: Session, household: Household, *, meter_id: str, reporting_interval_s: int = 3600) -> Meter:
    existing = session.get(Meter, meter_id)
    if existing is not None:
        raise AdminError(f"meter {meter_id} is already enrolled (household {existing.household_id})")
    meter = Meter(meter_id=meter_id, household_id=household.id, reporting_interval_s=reporting_interval_s)
    session.add(meter)
    session.flush()
    return meter


def create_recipient(
    session: Session,
    *,
    name: str,
    role: str,
    webhook_url: str | None,
    allow: Sequence[str] = (),
    require_https: bool = True,
    channel: Registered | None = None,
    box: SecretBox | None = None,
) -> tuple[Recipient, str | None]:
    """A recipient and (optionally) its endpoint: a webhook (returns its signing secret, once) or another
    channel, validated and sealed by ``alerts.channels.registry.Channels.register``."""
    if role not in RECIPIENT_ROLES:
        raise AdminError(f"role must be one of {', '.join(RECIPIENT_ROLES)}")
    recipient = Recipient(name=name, role=role)
    session.add(recipient)
    session.flush()
    secret = None
    if webhook_url is not None:
        _, secret = add_endpoint(session, recipient, url=webhook_url, allow=allow, require_https=require_https, box=box)
    elif channel is not None:
        endpoint = Endpoint(
            recipient_id=recipient.id,
            type=channel.type,
            url=channel.display,
            secret="",
            sealed_config=channel.sealed,
            status=EndpointStatus.ACTIVE,
        )
        session.add(endpoint)
        session.flush()
    return recipient, secret


def add_endpoint(
    session: Session,
    recipient: Recipient,
    *,
    url: str,
    allow: Sequence[str] = (),
    require_https: bool = True,
    box: SecretBox | None = None,
) -> tuple[Endpoint, str]:
    """A webhook endpoint and its new signing secret (returned once; stored only sealed by ``box``)."""
    if box is None:
        raise AdminError("no key to seal the webhook secret with (SHOUWANG_SECRET_KEYS)")
    vendor_type = type_for_url(url)
    if vendor_type is not None:  # a chat robot answers 200 to a Standard Webhook and shows nothing
        raise AdminError(
            f"this is a {VENDOR_NAMES.get(vendor_type, vendor_type)} URL, not a webhook receiver: register it as "
            f'{{"channel": {{"type": "{vendor_type}", "url": …}}}}'
        )
    try:
        check_url(url, allow=allow, require_https=require_https)
    except UnsafeURLError as exc:
        raise AdminError(str(exc)) from exc
    secret = new_secret()
    endpoint = Endpoint(
        recipient_id=recipient.id,
        url=url,
        secret="",
        sealed_config=seal_webhook_secret(box, secret),
        status=EndpointStatus.ACTIVE,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def subscribe(
    session: Session,
    recipient: Recipient,
    *,
    household_id: str | None = None,
    grid_cell: str | None = None,
    community: str | None = None,
    kinds: Sequence[str] | None = None,
    min_severity: str = "info",
    all_is_well_every: str | None = None,
    all_is_well_at: str | None = None,
    all_is_well_call: str | None = None,
) -> Subscription:
    scopes = [s for s in (household_id, grid_cell, community) if s is not None]
    _check_all_is_well(recipient, household_id, scopes, all_is_well_every, all_is_well_at, all_is_well_call)
    if len(scopes) > 1:
        raise AdminError("subscribe to one of household_id, grid_cell or community, not several")
    if recipient.role == "family" and household_id is None:
        raise AdminError("a family member subscribes to one household (household_id)")
    if recipient.role == RESIDENT and household_id is None:
        raise AdminError("a resident subscribes to their own household (household_id)")
    if not scopes and recipient.role not in {"supervisor", "operator"}:
        raise AdminError("only supervisors and operators may subscribe to everything")
    home = session.get(Household, household_id) if household_id is not None else None
    if household_id is not None and (home is None or home.erased_at is not None):  # an erased one is gone
        raise AdminError(f"no household {household_id}")
    if kinds is not None:
        unknown = set(kinds) - ALL_KINDS
        if unknown or not kinds:
            raise AdminError(f"unknown kinds {sorted(unknown)}; kinds are {', '.join(sorted(ALL_KINDS))}")
    if min_severity not in SEVERITIES:
        raise AdminError(f"min_severity must be one of {', '.join(SEVERITIES)}")
    subscription = Subscription(
        recipient_id=recipient.id,
        household_id=household_id,
        grid_cell=grid_cell,
        community=community,
        kinds=list(kinds) if kinds is not None else None,
        min_severity=min_severity,
        all_is_well_every=all_is_well_every,
        all_is_well_at=(all_is_well_at or ALL_IS_WELL_DEFAULT_AT) if all_is_well_every else None,
        all_is_well_call=all_is_well_call if all_is_well_every else None,
    )
    session.add(subscription)
    session.flush()
    return subscription


def _check_all_is_well(
    recipient: Recipient,
    household_id: str | None,
    scopes: Sequence[str],
    every: str | None,
    at: str | None,
    call: str | None,
) -> None:
    """The all-is-well opt-in: a family member's, for one household, daily or weekly."""
    if every is None:
        if at is not None or call is not None:
            raise AdminError("all_is_well_at and all_is_well_call need all_is_well_every (day or week) to opt in")
        return
    if every not in ALL_IS_WELL_EVERY:
        raise AdminError(f"all_is_well_every must be one of {', '.join(ALL_IS_WELL_EVERY)}")
    if recipient.role != "family":
        raise AdminError(f"the all-is-well message is for family members; this recipient's role is {recipient.role}")
    if household_id is None or len(scopes) != 1:
        raise AdminError("the all-is-well message needs a subscription to one household (household_id)")
    if at is not None and not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", at):
        raise AdminError(f"all_is_well_at must be a local time HH:MM, not {at[:20]!r}")


def set_away(
    household: Household,
    *,
    until: datetime | None,
    note: str | None,
    now: datetime,
    by: str | None = None,
    max_days: int | None = None,
) -> None:
    """Away mode until a time (travel, hospital), recorded with who set it; ``until=None`` ends it."""
    if until is not None and until <= now:
        raise AdminError("away mode must end in the future")
    if until is not None and max_days is not None and until - now > timedelta(days=max_days):
        raise AdminError(f"away mode lasts at most {max_days} days (SHOUWANG_AWAY_MAX_DAYS)")
    household.away_until, household.away_note, household.away_set_by = until, note, by
    household.away_ends_on_use = False


def withdraw_consent(household: Household, *, by: str, now: datetime) -> None:
    """From now on nothing about this household is notified to anyone."""
    if household.consent_withdrawn_at is None:
        household.consent_withdrawn_at, household.consent_withdrawn_by = now, by


def add_silence(
    session: Session,
    *,
    created_by: str,
    reason: str,
    starts_at: datetime,
    ends_at: datetime,
    household_id: str | None = None,
    meter_id: str | None = None,
    grid_cell: str | None = None,
    kind: str | None = None,
    now: datetime | None = None,
    max_days: int | None = None,
) -> Silence:
    """A maintenance window or ad-hoc silence: alerts matching every matcher given are recorded, not
    notified, from ``starts_at`` until ``ends_at``. At least one matcher (an empty silence would mute
    everything); each must name something that exists, and they must agree (a meter of another
    household, a household of another cell would match nothing). With ``now``, it must end in the
    future and not start in the past; with ``max_days`` too, it may last at most that many days from
    its start (or from now, if it starts earlier)."""
    if not any((household_id, meter_id, grid_cell, kind)):
        raise AdminError(
            "a silence needs at least one matcher (household, meter, grid cell or kind): without one it would "
            "mute every alert"
        )
    if not reason.strip():
        raise AdminError("a silence needs a reason (why it is set)")
    if not created_by.strip():
        raise AdminError("a silence needs the name of who sets it")
    if now is not None and ends_at <= now:
        raise AdminError(f"until {ends_at.isoformat()} is not in the future")
    if ends_at <= starts_at:
        raise AdminError("a silence must end after it starts")
    if now is not None:
        if starts_at < now - SILENCE_START_GRACE:
            raise AdminError(f"start {starts_at.isoformat()} is in the past; leave it out to start now")
        if max_days is not None and ends_at - max(starts_at, now) > timedelta(days=max_days):
            raise AdminError(
                f"a silence lasts at most {max_days} days (SHOUWANG_SILENCE_MAX_DAYS); "
                f"until {ends_at.isoformat()} is {_days(ends_at - max(starts_at, now))} after its start"
            )
    _check_silence_matchers(session, household_id=household_id, meter_id=meter_id, grid_cell=grid_cell, kind=kind)
    silence = Silence(
        household_id=household_id,
        meter_id=meter_id,
        grid_cell=grid_cell,
        kind=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=created_by.strip(),
        reason=reason.strip(),
    )
    session.add(silence)
    session.flush()
    return silence


# A start given a little before the server's clock (the client's clock, the request's time on the way)
# is not "in the past".
SILENCE_START_GRACE = timedelta(minutes=5)


def _days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.1f} days"


def _check_silence_matchers(
    session: Session, *, household_id: str | None, meter_id: str | None, grid_cell: str | None, kind: str | None
) -> None:
    if kind is not None and kind not in ALL_KINDS:
        raise AdminError(f"unknown kind {kind[:40]!r}; kinds are {', '.join(sorted(ALL_KINDS))}")
    household = session.get(Household, household_id) if household_id is not None else None
    if household_id is not None and household is None:
        raise AdminError(f"unknown household {household_id[:40]}")
    meter = session.get(Meter, meter_id) if meter_id is not None else None
    if meter_id is not None and meter is None:
        raise AdminError(f"unknown meter {meter_id[:64]}")
    if household is not None and meter is not None and meter.household_id != household.id:
        raise AdminError(f"meter {meter.meter_id} is not a meter of household {household.id}: it would match nothing")
    if grid_cell is not None:
        for place in (household, meter.household if meter is not None else None):
            if place is not None and place.grid_cell != grid_cell:
                raise AdminError(
                    f"household {place.id} is in grid cell {place.grid_cell}, not {grid_cell}: it would match nothing"
                )


def silence_state(silence: Silence, now: datetime) -> Literal["scheduled", "active", "expired"]:
    """scheduled (not started yet), active, or expired (ended, by its time or by being expired)."""
    if silence.ends_at <= now:
        return "expired"
    return "scheduled" if silence.starts_at > now else "active"


def find_silences(
    *,
    now: datetime,
    include_expired: bool = False,
    household_id: str | None = None,
    meter_id: str | None = None,
    grid_cell: str | None = None,
    kind: str | None = None,
) -> Select[Silence]:
    """Silences not yet ended (active and scheduled), or all of them, newest first; a filter keeps the
    silences with exactly that matcher."""
    query = select(Silence)
    if not include_expired:
        query = query.where(Silence.ends_at > now)
    for column, value in (
        (Silence.household_id, household_id),
        (Silence.meter_id, meter_id),
        (Silence.grid_cell, grid_cell),
        (Silence.kind, kind),
    ):
        if value is not None:
            query = query.where(column == value)
    return query.order_by(Silence.created_at.desc(), Silence.id.desc())


def expire_silence(silence: Silence, *, now: datetime) -> bool:
    """End a silence now; it is kept as history, never deleted. False if it had ended already."""
    if silence.ends_at <= now:
        return False
    silence.ends_at = now
    return True


def reseal_credentials(session: Session, box: SecretBox, *, progress: Callable[[int, int], None] | None = None) -> int:
    """Every endpoint's sealed value (channel credentials and webhook signing secrets) encrypted again under
    the first key (after a key rotation: put the new key first in SHOUWANG_SECRET_KEYS, reseal, then drop
    the old key). ``progress(done, total)`` is told along the way. Returns how many."""
    endpoints = session.scalars(select(Endpoint).where(Endpoint.sealed_config.is_not(None))).all()
    for done, endpoint in enumerate(endpoints, start=1):
        assert endpoint.sealed_config is not None
        endpoint.sealed_config = box.reseal(endpoint.sealed_config)
        if progress is not None:
            progress(done, len(endpoints))
    return len(endpoints)
