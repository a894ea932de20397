"""Request and response bodies of the API. Requests are strict: unknown fields are a 422."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from detectors.incidents.text import has_content
from shouwang.events import ClockTime, GridCell, MeterId, RoutineHints, Timestamp

Role = Literal["resident", "family", "grid_worker", "supervisor", "operator"]
KeyRole = Literal["operator", "supervisor", "grid_worker", "family", "device"]
Severity = Literal["info", "low", "medium", "high", "critical"]
Kind = Literal[
    "no_usage", "continuous_flow", "spike", "meter_offline", "data_quality", "routine_change", "incident", "hotspot"
]
Outcome = Literal["false_alarm", "resident_fine", "help_given", "emergency"]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000: it would be a 500 when stored, so it is a 422 here.
    if "\x00" in value:
        raise ValueError("must not contain NUL (U+0000) characters")
    return value


NoNul = AfterValidator(_no_nul)
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
Text500 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NoNul]
Community = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {value!r}; use an IANA name such as Asia/Shanghai") from exc
    return value


TimezoneName = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_timezone)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Consent(Strict):
    given_by: Text200 = Field(description="Who consented: the elder, or their legal guardian")
    given_at: Timestamp
    scope: Text500 = Field(description="What was consented to, e.g. 'water-use alerts to family and grid worker'")


class HouseholdCreate(Strict):
    name: Text200
    timezone: TimezoneName
    grid_cell: GridCell
    community: Community | None = None
    address: Text500 | None = None
    consent: Consent
    routine_hints: RoutineHints | None = Field(
        default=None,
        description="The elder's usual getting-up time and regular outings, for the detector to start from "
        "(a new household's first month otherwise leans on typical homes)",
    )


class HouseholdPatch(Strict):
    name: Text200 | None = None
    timezone: TimezoneName | None = None
    grid_cell: GridCell | None = None
    community: Community | None = None
    address: Text500 | None = None
    routine_hints: RoutineHints | None = None


class ConsentEventOut(BaseModel):
    action: str = Field(description="withdrawn or granted")
    by: str
    evidence: str
    scope: str | None
    recorded_by: str
    at: datetime


class ConsentOut(BaseModel):
    given_by: str
    given_at: datetime
    scope: str
    withdrawn_at: datetime | None
    withdrawn_by: str | None
    history: list[ConsentEventOut] = Field(default_factory=list, description="Every withdrawal and grant since")


class MeterOut(BaseModel):
    meter_id: str
    reporting_interval_s: int


class HouseholdOut(BaseModel):
    id: str
    name: str
    timezone: str
    grid_cell: str
    community: str | None
    address: str | None
    consent: ConsentOut
    away_until: datetime | None
    away_note: str | None
    away_set_by: str | None = Field(description="Who set away mode (a resident answering a check-in, a key's holder)")
    routine_hints: RoutineHints | None
    meters: list[MeterOut]


class ConsentWithdraw(Strict):
    by: Text200 = Field(description="Who withdrew consent (the elder, a guardian)")
    evidence: Text500 = Field(description="On what evidence, e.g. 'signed form of 2026-12-06, filed as …'")


class ConsentGrant(Strict):
    by: Text200 = Field(description="Who gave consent (the elder, a guardian)")
    evidence: Text500 = Field(description="On what evidence")
    scope: Text500 = Field(description="What was consented to, e.g. '用水异常提醒家属和网格员'")


class MeterCreate(Strict):
    meter_id: MeterId
    reporting_interval_s: int = Field(default=3600, ge=60, le=7 * 86400)


class AwayMode(Strict):
    until: Timestamp
    note: Text500 | None = None


ChannelTypeName = Literal["webhook", "wecom_robot", "dingtalk_robot", "feishu_bot", "wecom_app", "sms", "email"]


class ChannelIn(BaseModel):
    """Where the recipient is told. The fields besides ``type`` depend on it: ``url`` (webhook, and the robot's
    URL for wecom_robot / dingtalk_robot / feishu_bot, with ``secret`` for DingTalk's ``SEC…`` and Feishu's
    signing secret, and ``keyword`` when the group uses one); ``corp_id``, ``corp_secret``, ``agent_id``,
    ``user_ids`` (wecom_app); ``phone`` in E.164 (sms); ``address`` (email)."""

    model_config = ConfigDict(extra="allow")
    type: ChannelTypeName

    def config(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RecipientCreate(Strict):
    name: Text200
    role: Role
    webhook_url: Annotated[str, StringConstraints(min_length=1, max_length=2000), NoNul] | None = Field(
        default=None, description='Shorthand for {"channel": {"type": "webhook", "url": …}}'
    )
    channel: ChannelIn | None = None

    @model_validator(mode="after")
    def _one_channel(self) -> RecipientCreate:
        if self.webhook_url is not None and self.channel is not None:
            raise ValueError("give webhook_url or channel, not both")
        return self


class ChannelOut(BaseModel):
    type: str
    display: str = Field(description="The channel, masked: credentials are never shown after creation")
    status: str
    failing_since: datetime | None = Field(description="Since when the vendor refuses it for good, if it does")
    last_error: str | None


class RecipientOut(BaseModel):
    id: str
    name: str
    role: str
    webhook_url: str | None
    webhook_status: str | None
    channel: ChannelOut | None = None


class RecipientCreated(RecipientOut):
    webhook_secret: str | None = Field(description="The signing secret (whsec_…), shown only now")


class SecretRotated(BaseModel):
    recipient_id: str
    webhook_secret: str


class PingResult(BaseModel):
    outcome: str
    status_code: int | None
    error: str | None


CallName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), NoNul]


class SubscriptionCreate(Strict):
    recipient_id: Text200
    household_id: Text200 | None = None
    grid_cell: GridCell | None = None
    community: Community | None = None
    kinds: list[Kind] | None = Field(default=None, min_length=1, max_length=8)
    min_severity: Severity = "info"
    all_is_well_every: Literal["day", "week"] | None = Field(
        default=None,
        description="A family member's opt-in to the all-is-well (平安) message: daily, or weekly on Mondays",
    )
    all_is_well_at: ClockTime | None = Field(default=None, description="Local time HH:MM (default 10:00)")
    all_is_well_call: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), NoNul] | None
    ) = Field(default=None, description="What the family calls the elder (妈妈); default the household's name")


class SubscriptionOut(BaseModel):
    id: str
    recipient_id: str
    household_id: str | None
    grid_cell: str | None
    community: str | None
    kinds: list[str] | None
    min_severity: str
    all_is_well_every: str | None = None
    all_is_well_at: str | None = None
    all_is_well_call: str | None = None


class KeyCreate(Strict):
    name: Text200
    role: KeyRole
    recipient_id: Text200 | None = Field(default=None, description="Required for family keys")
    grid_cells: list[GridCell] | None = Field(default=None, max_length=500)
    community: Community | None = None
    meters: list[MeterId] | None = Field(
        default=None, max_length=10_000, description="Device keys: the meters it may report for"
    )
    meter_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")] | None = Field(
        default=None, description="Device keys: the id prefix of the meters it may report for (e.g. a gateway's)"
    )


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    token: str | None = Field(default=None, description="The bearer token, shown only at creation")


class Reading(Strict):
    meter_id: MeterId
    ts: Timestamp
    register_l: Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]


class IngestResult(BaseModel):
    accepted: int
    rejected: list[dict[str, Any]] = Field(description="Items not accepted: {index, error}")


class IncidentCreate(Strict):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), NoNul]
    grid_cell: GridCell
    reporter: Annotated[str, StringConstraints(max_length=100), NoNul] | None = None
    photo_url: Annotated[str, StringConstraints(pattern=r"^https?://\S{1,2000}$"), NoNul] | None = None
    ts: Timestamp | None = None

    @model_validator(mode="after")
    def _readable(self) -> IncidentCreate:
        # Emoji or punctuation alone says nothing a grid worker can act on — unless a photo does.
        if self.photo_url is None and not has_content(self.text):
            raise ValueError("text has no words (only emoji or punctuation); describe the problem or add a photo")
        return self


class IncidentAccepted(BaseModel):
    id: str


class AttemptOut(BaseModel):
    at: datetime
    outcome: str
    status_code: int | None
    error: str | None


class NotificationOut(BaseModel):
    id: str = Field(description="The webhook-id")
    recipient_id: str
    event_type: str
    tier: int
    status: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    history: list[AttemptOut] = []


class AlertOut(BaseModel):
    id: str
    kind: str
    severity: str
    status: str
    meter_id: str | None
    household_id: str | None
    grid_cell: str | None
    since: datetime
    raised_at: datetime
    explanation: dict[str, str]
    facts: dict[str, Any]
    silenced_by: str | None
    acknowledged_at: datetime | None = Field(description="By staff: someone has it in hand")
    acknowledged_by: str | None
    family_seen_at: datetime | None = Field(
        default=None, description="A family member saw it: staff are still asked to act"
    )
    family_seen_by: str | None = None
    resolved_at: datetime | None
    resolved_by: str | None
    outcome: str | None
    resolution_note: str | None
    escalation_tier: int
    check_in: str | None = Field(
        default=None,
        description="How asking the resident first went: asked, fine, away, unanswered, failed, fine_silent",
    )


class AlertDetail(AlertOut):
    notifications: list[NotificationOut]


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class Resolve(Strict):
    outcome: Outcome
    note: Annotated[str, StringConstraints(max_length=1000), NoNul] | None = None


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
