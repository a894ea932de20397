"""The alert store's tables (SQLAlchemy 2). Migrations in ``alerts/migrations`` must match.

Times are stored in UTC and always come back timezone-aware, on SQLite as on PostgreSQL.
Ids are short prefixed strings (``hh_…``, ``rcp_…``) so a log line says what it refers to.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from alerts.statuses import DeliveryStatus, EndpointStatus


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}  # noqa: RUF012


class Household(Base):
    """One enrolled home; the elder's consent is part of it (no consent, no notifications)."""

    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("hh"))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    grid_cell: Mapped[str] = mapped_column(String(32), index=True)
    community: Mapped[str | None] = mapped_column(String(64), index=True)
    address: Mapped[str | None] = mapped_column(String(500))
    consent_given_by: Mapped[str] = mapped_column(String(200))
    consent_given_at: Mapped[datetime]
    consent_scope: Mapped[str] = mapped_column(String(500))
    consent_withdrawn_at: Mapped[datetime | None]
    consent_withdrawn_by: Mapped[str | None] = mapped_column(String(200))
    away_until: Mapped[datetime | None]
    away_note: Mapped[str | None] = mapped_column(String(500))
    away_set_by: Mapped[str | None] = mapped_column(String(200))  # who set away mode (a resident from a check-in…)
    away_ends_on_use: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")  # water used: home
    # What enrolment knows of the elder's routine (shouwang.events.RoutineHints), for the detector to start from.
    routine_hints: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # Erased on request (alerts/erasure.py): what is left is an anonymous shell (id, zone, grid cell, community,
    # dates) that keeps the monthly reports' past figures; the API no longer shows it.
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    meters: Mapped[list[Meter]] = relationship(back_populates="household")

    @property
    def consent_active(self) -> bool:
        return self.consent_withdrawn_at is None

    def is_away(self, now: datetime) -> bool:
        return self.away_until is not None and self.away_until > now


class ConsentEvent(Base):
    """The history of a household's consent: every withdrawal and every new grant, who gave or withdrew
    it, on what evidence, and who recorded it (alerts/consent.py). Never changed or deleted."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # withdrawn | granted
    by: Mapped[str] = mapped_column(String(200))  # the person: the elder, a guardian
    evidence: Mapped[str] = mapped_column(String(1000))  # e.g. "signed form 2026-12-06, scanned as …"
    scope: Mapped[str | None] = mapped_column(String(500))  # a grant's scope
    recorded_by: Mapped[str] = mapped_column(String(200))  # the operator's key
    at: Mapped[datetime]
    sent_at: Mapped[datetime | None]  # the worker was told (its readings dropped, its state deleted)


class HouseholdErasure(Base):
    """The record that a household's personal data was erased (alerts/erasure.py): who, when and how much,
    never what. Kept for good; a second erasure of the same household finds it and changes nothing."""

    __tablename__ = "household_erasures"

    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), primary_key=True)
    erased_at: Mapped[datetime]
    erased_by: Mapped[str] = mapped_column(String(200))  # the operator's key (role:key_id), never a name
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)  # what was erased or anonymised, by kind of record
    sent_at: Mapped[datetime | None]  # the worker was told (its meters' learned state deleted, readings refused)


class Meter(Base):
    __tablename__ = "meters"

    meter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), index=True)
    reporting_interval_s: Mapped[int] = mapped_column(Integer, default=3600)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    hints_sent_at: Mapped[datetime | None]  # the household's routine hints reached the worker (feedback topic)

    household: Mapped[Household] = relationship(back_populates="meters")


class Recipient(Base):
    """A person who receives notifications: family member, grid worker, supervisor, operator."""

    __tablename__ = "recipients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("rcp"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    endpoints: Mapped[list[Endpoint]] = relationship(back_populates="recipient")


class Endpoint(Base):
    """Where a recipient is told: one channel of one type (``alerts/channels``). The table keeps its
    first name, from when every channel was a Standard Webhooks endpoint."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ep"))
    recipient_id: Mapped[str] = mapped_column(ForeignKey("recipients.id"), index=True)
    type: Mapped[str] = mapped_column(String(32), default="webhook", server_default="webhook")
    # webhook: the URL. Other types: a masked form for people to recognise it by (a robot URL carries
    # its access token: the real one is sealed in ``sealed_config``).
    url: Mapped[str] = mapped_column(String(2000))
    # Empty: a webhook's signing secret is sealed in ``sealed_config`` (a plain one from before migration
    # 0009 was sealed by it); other types' credentials too.
    secret: Mapped[str] = mapped_column(String(100))
    # Encrypted (alerts/secret_box.py). Webhook: its signing secret, and after a rotation the previous one
    # with when it stops signing (alerts/webhook_secrets.py). Other types: their whole configuration.
    sealed_config: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=EndpointStatus.ACTIVE)  # EndpointStatus
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    # Set when the vendor refused a delivery for good (a wrong secret, an unknown key): operators are
    # told (shouwang_router_endpoints_failing); cleared by the next success.
    failing_since: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Rate-limited channels are sent to by one router at a time (alerts/digests.py): it holds this lease.
    send_lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    recipient: Mapped[Recipient] = relationship(back_populates="endpoints")


class Subscription(Base):
    """Who hears about what: one household, one grid cell, one community, or (staff) all."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("sub"))
    recipient_id: Mapped[str] = mapped_column(ForeignKey("recipients.id"), index=True)
    household_id: Mapped[str | None] = mapped_column(ForeignKey("households.id"), index=True)
    grid_cell: Mapped[str | None] = mapped_column(String(32), index=True)
    community: Mapped[str | None] = mapped_column(String(64), index=True)
    kinds: Mapped[list[str] | None] = mapped_column(JSON)  # None: every kind the role may get
    min_severity: Mapped[str] = mapped_column(String(16), default="info")
    # A family member's opt-in to the all-is-well (平安) message (alerts/all_is_well.py): how often ("day" or
    # "week"; None: not opted in), at what local time ("HH:MM"), and what to call the elder (妈妈…).
    all_is_well_every: Mapped[str | None] = mapped_column(String(8))
    all_is_well_at: Mapped[str | None] = mapped_column(String(5))
    all_is_well_call: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    recipient: Mapped[Recipient] = relationship()


class Silence(Base):
    """Mute matching alerts for a time: maintenance windows and ad-hoc silences.
    Matchers left empty match anything; a silenced alert is recorded, not notified."""

    __tablename__ = "silences"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("sil"))
    household_id: Mapped[str | None] = mapped_column(String(32))
    meter_id: Mapped[str | None] = mapped_column(String(64))
    grid_cell: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str | None] = mapped_column(String(32))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))  # e.g. "maintenance: meter swap"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """One episode (the alert id is stable per meter, kind and start) and its lifecycle."""

    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)  # AlertStatus
    meter_id: Mapped[str | None] = mapped_column(String(64), index=True)
    household_id: Mapped[str | None] = mapped_column(ForeignKey("households.id"), index=True)
    grid_cell: Mapped[str | None] = mapped_column(String(32), index=True)
    since: Mapped[datetime]
    raised_at: Mapped[datetime] = mapped_column(index=True)  # event time of the raise
    explanation_zh: Mapped[str] = mapped_column(Text)
    explanation_en: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    silenced_by: Mapped[str | None] = mapped_column(String(64))  # consent | away | sil_… ; None = notified
    acknowledged_at: Mapped[datetime | None]  # by staff: someone has it in hand
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    # A family member saw it ("family has seen it"): staff are still asked to act (alerts/lifecycle.py).
    family_seen_at: Mapped[datetime | None]
    family_seen_by: Mapped[str | None] = mapped_column(String(200))
    # A staff acknowledgement holds until then without a resolution; then the next tier is told.
    ack_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))  # "detector" on auto-resolve
    outcome: Mapped[str | None] = mapped_column(String(32))
    resolution_note: Mapped[str | None] = mapped_column(String(1000))
    escalation_tier: Mapped[int] = mapped_column(Integer, default=0)
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)
    next_reminder_at: Mapped[datetime | None] = mapped_column(index=True)
    # The resident asked first (alerts/check_ins.py): CheckIn state, when carers are told if nobody answers,
    # and, after "I'm fine", when a silence still going on goes to carers anyway.
    check_in: Mapped[str | None] = mapped_column(String(16))
    check_in_due_at: Mapped[datetime | None] = mapped_column(index=True)
    recheck_at: Mapped[datetime | None] = mapped_column(index=True)
    feedback_sent_at: Mapped[datetime | None]  # a person's false_alarm / resident_fine reached the detector
    # Its personal facts (explanation, usage series, notes, who acted) were removed, by the retention job or
    # the household's erasure (alerts/retention.py): an anonymous statistic from then on.
    anonymised_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertTransition(Base):
    """Every event the router accepted; (alert, event) is unique, which makes dedup exact."""

    __tablename__ = "alert_transitions"
    __table_args__ = (UniqueConstraint("alert_id", "event", name="uq_alert_transition"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))  # raised | resolved | acknowledged | escalated:N …
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """The outbox: one notification to one webhook endpoint. Written in the same transaction
    as the alert change that caused it, sent afterwards; its id is the ``webhook-id``, so a
    resend after a crash carries the same id and receivers can drop the duplicate."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # msg_…
    # None: a message about no alert (the all-is-well message); it carries no action links.
    alert_id: Mapped[str | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    recipient_id: Mapped[str] = mapped_column(ForeignKey("recipients.id"), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(40))  # alert.raised | alert.resolved | …
    tier: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[str] = mapped_column(Text)  # exact JSON body, fixed when recorded
    # pending → delivered | dead (DeliveryStatus); claimed_until leases a row to one dispatcher
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)  # DeliveryStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    # Who holds the lease (one claim's token, alerts/outbox.py): a router sends, and records what happened,
    # only while the row is still its own; another router's claim replaces the token.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MeterDay(Base):
    """One meter's local day as the worker summarised it (the daily topic): the morning's first water use, the
    litres and hours with use. A later summary of the same day replaces an earlier one, never a complete one."""

    __tablename__ = "meter_days"
    __table_args__ = (UniqueConstraint("meter_id", "day", name="uq_meter_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, the household's local day
    first_use_at: Mapped[datetime | None]
    litres: Mapped[float] = mapped_column(Float)
    hours_with_use: Mapped[int] = mapped_column(Integer)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AllIsWellMessage(Base):
    """An all-is-well message sent to one subscription for one local day (a weekly one: its Monday). Unique, and
    written in the transaction that records the message: several routers, or one restarted, never send twice."""

    __tablename__ = "all_is_well_messages"
    __table_args__ = (UniqueConstraint("subscription_id", "day", name="uq_all_is_well_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    day: Mapped[str] = mapped_column(String(10))
    sent_at: Mapped[datetime]


class MonthlyReportMessage(Base):
    """A community's monthly report sent to one supervisor (alerts/monthly_report_send.py). Unique, and written in
    the transaction that records the message: several routers, or one restarted, never send it twice."""

    __tablename__ = "monthly_report_messages"
    __table_args__ = (UniqueConstraint("recipient_id", "community", "month", name="uq_monthly_report_message"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recipient_id: Mapped[str] = mapped_column(ForeignKey("recipients.id", ondelete="CASCADE"))
    community: Mapped[str] = mapped_column(String(64))
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, the month reported (the one before it was sent)
    sent_at: Mapped[datetime]


class EndpointMessage(Base):
    """A message sent to a rate-limited channel (one notification, or a digest of several): the minute's
    history every router reads before it sends (alerts/digests.py)."""

    __tablename__ = "endpoint_messages"
    __table_args__ = (Index("ix_endpoint_messages_endpoint_sent", "endpoint_id", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    sent_at: Mapped[datetime]
    notifications: Mapped[int] = mapped_column(Integer)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)


class ActionLinkUse(Base):
    """A one-tap action link that was used (alerts/action_links.py): each works once."""

    __tablename__ = "action_link_uses"
    __table_args__ = (UniqueConstraint("delivery_id", "action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"))
    action: Mapped[str] = mapped_column(String(16))
    used_at: Mapped[datetime]


class DeliveryAttempt(Base):
    """History of every HTTP attempt, for the alert's notification history."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer)


class ApiKey(Base):
    """A bearer key for the API. Only a SHA-256 of its secret is stored (the secret is 32 random
    bytes, so a slow hash adds nothing); the full token is shown once, when issued."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("key"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # operator | supervisor | grid_worker | family | device
    secret_hash: Mapped[str] = mapped_column(String(64))
    recipient_id: Mapped[str | None] = mapped_column(ForeignKey("recipients.id"), index=True)
    grid_cells: Mapped[list[str] | None] = mapped_column(JSON)  # a grid worker's or supervisor's cells
    community: Mapped[str | None] = mapped_column(String(64))  # a supervisor's community
    # A device key's meters: the ids it may report for, or an id prefix (a gateway's meters share one).
    meters: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    meter_prefix: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


# Tables kept in modules of their own join the metadata here, so Alembic and every session see them.
from alerts import audit as _audit  # noqa: E402, F401
