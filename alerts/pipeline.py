"""The router's pipeline: small stages run in order over one alert event, in the manner of
Alertmanager's notify pipeline. Each stage may stop the flow with a reason; the clock is
injected once per event so every decision can be tested with a fixed time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from alerts.models import Alert, Delivery, Household
from alerts.policy import EscalationPolicy, parse_ack_timeouts, parse_duration, parse_policy
from shouwang.events import AlertEvent
from shouwang.settings import Settings


@dataclass(frozen=True)
class RouterConfig:
    policy: EscalationPolicy
    repeat_interval: timedelta
    public_url: str
    check_in_timeout: timedelta = timedelta(minutes=30)  # the resident's time to answer before carers are told
    away_max: timedelta = timedelta(days=30)  # the longest away mode anyone may set
    # How long a staff acknowledgement holds an alert without a resolution, per severity (alerts/lifecycle.py).
    staff_ack_timeouts: Mapping[str, timedelta] = field(default_factory=dict)


def router_config(settings: Settings) -> RouterConfig:
    return RouterConfig(
        policy=parse_policy(settings.escalation),
        repeat_interval=parse_duration(settings.repeat_interval),
        public_url=settings.public_url,
        check_in_timeout=parse_duration(settings.check_in_timeout),
        away_max=timedelta(days=settings.away_max_days),
        staff_ack_timeouts=parse_ack_timeouts(settings.staff_ack_timeout),
    )


@dataclass
class RouteContext:
    """What the stages know and decide about one alert event."""

    session: Session
    event: AlertEvent
    now: datetime
    config: RouterConfig
    household: Household | None = None
    alert: Alert | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    result: str = "notified"  # why the flow ended: duplicate, silenced:<by>, not-notified, …
    stopped: bool = False

    def stop(self, result: str) -> None:
        self.result = result
        self.stopped = True


class Stage(Protocol):
    def __call__(self, ctx: RouteContext) -> None: ...


@dataclass(frozen=True)
class Pipeline:
    stages: Sequence[Stage]

    def run(self, ctx: RouteContext) -> RouteContext:
        for stage in self.stages:
            stage(ctx)
            if ctx.stopped:
                break
        return ctx
