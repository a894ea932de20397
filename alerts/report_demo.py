"""A made-up but realistic month for the monthly report's sample (``shouwang report --demo``) and the report page's
screenshot: one community of 36 homes in four grid cells, its staff and families, and two months of activity —
alerts raised through the router's pipeline, answered, acknowledged, escalated and resolved through the lifecycle
functions, residents' reports and a hotspot — written into a store the caller throws away afterwards.

Every action happens at its own time, in order, with the router's timer pass (acknowledgements expiring,
escalation, reminders, check-ins timing out) run before it at that time, so escalations and reminders come from
the same code as in service. Nothing leaves the machine: the dispatcher does not run; each notification is then
marked delivered or dead as a dispatcher would (about 5 % dead), so the delivery section has figures. Seeded
random numbers: the same month gives the same report.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import admin, consent
from alerts.channels.registry import Channels
from alerts.check_ins import answer_fine, check_ins_due, rechecks_due
from alerts.db import Store
from alerts.lifecycle import acknowledge, acknowledgements_expired, escalate_due, remind_due, resolve
from alerts.models import Alert, Delivery, Household, utcnow
from alerts.pipeline import RouteContext, RouterConfig, router_config
from alerts.reports import parse_month
from alerts.stages import default_pipeline
from alerts.statuses import AlertStatus, DeliveryStatus
from detectors.incidents.categories import SEVERITY_OF_URGENCY
from shouwang.events import AlertEvent, AlertKind, Explanation, Severity, alert_id_for
from shouwang.settings import Settings

COMMUNITY = "FT-Lianhua"
CELLS = ("FT-12-1", "FT-12-2", "FT-12-3", "FT-12-4")
TIMEZONE = "Asia/Shanghai"
HOMES = 36
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
LOOPBACK = ("127.0.0.0/8",)
HOOK = "http://127.0.0.1:9/hook"  # nothing listens, and nothing is sent: the dispatcher does not run
# Care alerts of a month: (kind, weight, severities to draw from).
KINDS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("no_usage", 9, ("high", "high", "high", "critical")),
    ("continuous_flow", 5, ("medium", "high")),
    ("spike", 2, ("critical",)),
    ("meter_offline", 3, ("medium",)),
    ("data_quality", 2, ("low",)),
    ("routine_change", 2, ("info", "low")),
)
CATEGORIES = (("ebike", 5), ("clutter", 4), ("water_pipe", 3), ("noise_dispute", 2), ("sanitation", 2), ("facility", 2))
CATEGORY_ZH = {"ebike": "楼道电动车充电", "clutter": "楼道堆物", "water_pipe": "管道漏水", "noise_dispute": "夜间噪音"}
MIN = timedelta(minutes=1)
# The router's timers run every second; here before an action at least this long after the last pass (the
# shortest escalation step is 15 minutes, so nobody is told later than in service by more than this).
TIMER_EVERY = timedelta(minutes=5)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Demo:
    community: str
    month: str
    households: int


Action = tuple[datetime, int, Callable[[Session], None]]


def seed_demo(store: Store, settings: Settings, *, month: str, now: datetime | None = None, seed: int = 2026) -> Demo:
    """Seed the community, then ``month`` and the month before it (only what happened before ``now``)."""
    now = now or utcnow()
    year, mon = parse_month(month)
    zone = ZoneInfo(TIMEZONE)
    start = datetime(year, mon, 1, tzinfo=zone)
    before = datetime(year - 1, 12, 1, tzinfo=zone) if mon == 1 else datetime(year, mon - 1, 1, tzinfo=zone)
    end = datetime(year + 1, 1, 1, tzinfo=zone) if mon == 12 else datetime(year, mon + 1, 1, tzinfo=zone)
    config = router_config(settings)
    channels = Channels(settings)
    rng = random.Random(f"{seed}:{month}")
    homes = _community(store, channels, rng, enrolled=before - timedelta(days=90), late=start + timedelta(days=9))
    actions: list[Action] = []
    for first, last in ((before, start), (start, end)):
        actions += _month_of_alerts(rng, config, homes, first, last)
        actions += _month_of_reports(rng, config, first, last)
    withdrawn = homes[-1]  # a family ends the service in the month: its consent is withdrawn, not its history
    ends = start + timedelta(days=20, hours=3)
    actions.append((ends, 0, lambda s: _withdraw(s, withdrawn["id"], ends)))
    ordered = sorted((a for a in actions if a[0] < now), key=lambda a: (a[0], a[1]))
    passed: datetime | None = None
    for at, _, action in ordered:
        with store.transaction() as session:  # the router's timer pass at that moment, then the action
            if passed is None or at - passed >= TIMER_EVERY:
                for timer in (acknowledgements_expired, escalate_due, remind_due, check_ins_due, rechecks_due):
                    timer(session, now=at, config=config)
                session.flush()
                passed = at
            action(session)
    _dispatched(store, rng)
    return Demo(community=COMMUNITY, month=f"{year:04d}-{mon:02d}", households=len(homes))


def _community(
    store: Store, channels: Channels, rng: random.Random, *, enrolled: datetime, late: datetime
) -> list[dict[str, Any]]:
    """The homes (three enrolled during the month), a grid worker per cell on a DingTalk group robot, a supervisor
    on a WeCom group robot, an operator, families with webhooks, and residents asked first in a few homes."""
    homes: list[dict[str, Any]] = []
    with store.transaction() as session:
        for cell in CELLS:
            token = f"{CELLS.index(cell) + 1}" * 32
            robot = channels.register(
                "dingtalk_robot",
                {"url": f"https://oapi.dingtalk.com/robot/send?access_token={token}", "secret": "SEC" + token + "ab"},
            )
            worker, _ = admin.create_recipient(session, name=f"网格员 {cell}", role="grid_worker", webhook_url=None,
                                               channel=robot)  # fmt: skip
            admin.subscribe(session, worker, grid_cell=cell)
        group = channels.register(
            "wecom_robot", {"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + "5" * 32}
        )
        supervisor, _ = admin.create_recipient(
            session, name="社区主管", role="supervisor", webhook_url=None, channel=group
        )
        admin.subscribe(session, supervisor, community=COMMUNITY)
        operator, _ = admin.create_recipient(
            session, name="运维值班", role="operator", webhook_url=HOOK, allow=LOOPBACK, box=channels.box
        )
        admin.subscribe(session, operator)
        for i in range(HOMES):
            cell = CELLS[i % len(CELLS)]
            created = late if i >= HOMES - 3 else enrolled
            home = admin.create_household(
                session,
                name=f"{SURNAMES[i % len(SURNAMES)]}{'阿姨' if i % 2 else '伯'}",
                timezone=TIMEZONE,
                grid_cell=cell,
                community=COMMUNITY,
                address=f"莲花路 {12 + i // 12} 号 {1 + i % 6} 栋 {101 + (i * 7) % 600}",
                consent_given_by="老人本人",
                consent_given_at=created,
                consent_scope="用水异常提醒：家属与网格员",
            )
            meter = admin.add_meter(session, home, meter_id=f"SZ-FT-{i + 1:04d}")
            home.created_at, meter.created_at = created, created
            if rng.random() < 0.7:
                family, _ = admin.create_recipient(
                    session, name=f"家属 {i + 1}", role="family", webhook_url=HOOK, allow=LOOPBACK, box=channels.box
                )
                admin.subscribe(session, family, household_id=home.id)
            resident = i % 4 == 0
            if resident:
                elder, _ = admin.create_recipient(
                    session, name=f"老人 {i + 1}", role="resident", webhook_url=HOOK, allow=LOOPBACK, box=channels.box
                )
                admin.subscribe(session, elder, household_id=home.id)
            homes.append(
                {"id": home.id, "meter": meter.meter_id, "cell": cell, "created": created, "resident": resident}
            )
    return homes


def _route(config: RouterConfig, event: AlertEvent) -> Callable[[Session], None]:
    def run(session: Session) -> None:
        default_pipeline().run(RouteContext(session=session, event=event, now=event.at, config=config))

    return run


def _on_alert(alert_id: str, act: Callable[[Session, Alert], object]) -> Callable[[Session], None]:
    """Act on the alert if it is still open (a timer may have closed or changed it meanwhile)."""

    def run(session: Session) -> None:
        alert = session.get(Alert, alert_id)
        if alert is not None and alert.status != AlertStatus.RESOLVED:
            act(session, alert)

    return run


def _ack(by: str, at: datetime, config: RouterConfig) -> Callable[[Session, Alert], None]:
    def run(session: Session, alert: Alert) -> None:
        if alert.status in (AlertStatus.RAISED, AlertStatus.ACKNOWLEDGED):
            acknowledge(session, alert, by=by, now=at, role="grid_worker", config=config)

    return run


def _resolve(by: str, outcome: str, at: datetime, config: RouterConfig) -> Callable[[Session, Alert], object]:
    notes = {"help_given": "已上门协助处理", "emergency": "已联系 120 并通知家属", "resident_fine": "电话确认老人安好"}
    return lambda session, alert: resolve(
        session, alert, by=by, outcome=outcome, note=notes.get(outcome), now=at, config=config
    )


def _fine(at: datetime, config: RouterConfig) -> Callable[[Session, Alert], object]:
    """The resident taps 我很好 (only while still asked: a timer may have told the carers already)."""

    def run(session: Session, alert: Alert) -> None:
        if alert.status == AlertStatus.CHECKING:
            answer_fine(session, alert, by="老人本人", now=at, config=config)

    return run


def _event(
    home: dict[str, Any], kind: str, severity: str, since: datetime, at: datetime, transition: str
) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id_for(home["meter"], kind, since),
        event=transition,  # type: ignore[arg-type]
        meter_id=home["meter"],
        kind=AlertKind(kind),
        severity=Severity(severity),
        since=since,
        at=at,
        explanation=Explanation(zh="演示数据", en="demo data"),
    )


def _month_of_alerts(
    rng: random.Random, config: RouterConfig, homes: list[dict[str, Any]], first: datetime, last: datetime
) -> list[Action]:
    """About seventeen care alerts, each with what people and the detector did about it."""
    actions: list[Action] = []
    kinds = [kind for kind, weight, _ in KINDS for _ in range(weight)]
    severities = {kind: choices for kind, _, choices in KINDS}
    days = (last - first).days
    for n in range(rng.randint(14, 20)):
        kind = rng.choice(kinds)
        severity = rng.choice(severities[kind])
        home = rng.choice([h for h in homes if h["created"] < first + timedelta(days=days - 1)])
        since = first + timedelta(days=rng.randrange(days - 1), hours=rng.randrange(24), minutes=rng.randrange(60))
        at = since + timedelta(hours=rng.choice((1, 2, 6, 10, 13)) if kind != "spike" else 0)
        worker = f"网格员 {home['cell']}"
        if kind == "no_usage" and home["resident"]:  # the resident is asked first
            raised = _event(home, kind, severity, since, at, "check_in")
            actions.append((at, n, _route(config, raised)))
            if rng.random() < 0.7:
                answer = at + rng.randint(4, 25) * MIN
                actions.append((answer, n, _on_alert(raised.alert_id, _fine(answer, config))))
                back = answer + rng.randint(1, 3) * HOUR  # and the water runs again: the detector's all-clear
                actions.append((back, n, _route(config, _event(home, kind, severity, since, back, "resolved"))))
            else:  # no answer: the timer tells the carers; the water comes back later
                back = at + rng.randint(2, 5) * HOUR
                actions.append((back, n, _route(config, _event(home, kind, severity, since, back, "resolved"))))
            continue
        raised = _event(home, kind, severity, since, at, "raised")
        actions.append((at, n, _route(config, raised)))
        if kind in ("meter_offline", "data_quality"):  # the meter comes back: the detector clears it
            back = at + timedelta(hours=rng.choice((3, 8, 20, 30, 52)) if kind == "meter_offline" else 4)
            actions.append((back, n, _route(config, _event(home, kind, severity, since, back, "resolved"))))
            continue
        slow = rng.random() < 0.12  # nobody picks it up in time: it escalates past the grid worker
        acked = at + (rng.randint(40, 120) if slow else rng.randint(2, 13)) * MIN
        actions += _handled(
            config, raised.alert_id, worker, _outcome(rng, kind), acked, acked + rng.randint(15, 100) * MIN, last, n
        )
    return actions


def _handled(
    config: RouterConfig, alert_id: str, by: str, outcome: str, acked: datetime, done: datetime, last: datetime, n: int
) -> list[Action]:
    """Acknowledged, then resolved with an outcome, within the staff's hold (no re-raise); one raised in the
    month's last two days is still open at its end (acknowledged, not yet resolved)."""
    actions: list[Action] = [(acked, n, _on_alert(alert_id, _ack(by, acked, config)))]
    if acked < last - timedelta(days=2):
        actions.append((done, n, _on_alert(alert_id, _resolve(by, outcome, done, config))))
    return actions


def _outcome(rng: random.Random, kind: str) -> str:
    table = {
        "no_usage": ("resident_fine",) * 6 + ("help_given",) * 2 + ("false_alarm", "emergency"),
        "continuous_flow": ("help_given",) * 3 + ("false_alarm",) * 2,
        "spike": ("emergency", "help_given", "false_alarm"),
        "routine_change": ("resident_fine",),
    }
    return rng.choice(table[kind])


def _month_of_reports(rng: random.Random, config: RouterConfig, first: datetime, last: datetime) -> list[Action]:
    """Residents' reports (随手拍) as the incidents stream merges them, a hotspot, and their closing."""
    actions: list[Action] = []
    categories = [c for c, weight in CATEGORIES for _ in range(weight)]
    days = (last - first).days
    for n in range(rng.randint(8, 12)):
        category = rng.choice(categories)
        urgency = rng.choice(
            ("low", "normal", "normal", "normal", "high", "critical" if category == "water_pipe" else "high")
        )
        cell = rng.choice(CELLS)
        since = first + timedelta(days=rng.randrange(days - 1), hours=rng.randint(7, 21))
        reports = rng.choice((1, 1, 1, 2, 3))
        facts = {"category": category, "urgency": urgency, "report_count": reports, "households": max(1, reports - 1)}
        event = _incident(cell, f"{first:%Y%m}-{n}", since, facts, "incident", CATEGORY_ZH.get(category, "居民上报"))
        actions.append((since, 100 + n, _route(config, event)))
        acked = since + rng.randint(5, 40) * MIN
        done = acked + (rng.randint(1, 3) if urgency in ("high", "critical") else rng.randint(2, 10)) * HOUR
        outcome = "false_alarm" if rng.random() < 0.15 else "help_given"
        actions += _handled(config, event.alert_id, f"网格员 {cell}", outcome, acked, done, last, 100 + n)
    hot = first + timedelta(days=rng.randint(5, days - 3), hours=20)
    facts = {"category": "ebike", "count": 4}
    event = _incident(CELLS[2], f"hot-{first:%Y%m}", hot, facts, "hotspot", "同一楼栋多起电动车充电上报")
    actions.append((hot, 200, _route(config, event)))
    actions += _handled(
        config, event.alert_id, f"网格员 {CELLS[2]}", "help_given", hot + 20 * MIN, hot + 6 * HOUR, last, 200
    )
    return actions


def _incident(cell: str, name: str, since: datetime, facts: dict[str, Any], kind: str, text: str) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id_for(f"cell:{cell}:{name}", kind, since),
        event="raised",
        grid_cell=cell,
        kind=AlertKind(kind),
        severity=Severity(SEVERITY_OF_URGENCY.get(str(facts.get("urgency")), "medium")),
        since=since,
        at=since,
        explanation=Explanation(zh=text, en="residents' report"),
        facts=facts,
    )


def _withdraw(session: Session, household_id: str, at: datetime) -> None:
    home = session.get(Household, household_id)
    if home is not None and home.consent_active:
        consent.withdraw(session, home, by="家属", evidence="书面申请（演示）", recorded_by="运维值班", now=at)


def _dispatched(store: Store, rng: random.Random) -> None:
    """What the dispatcher would have recorded: most delivered within seconds, about 5 % dead letters."""
    with store.transaction() as session:
        for delivery in session.scalars(select(Delivery).order_by(Delivery.created_at, Delivery.id)):
            if delivery.status != DeliveryStatus.PENDING:
                continue  # dead-lettered already (a withdrawn consent)
            if rng.random() < 0.05:
                delivery.status, delivery.attempts = DeliveryStatus.DEAD, 9
                delivery.last_error = "HTTP 502 from the receiver on every attempt"
            else:
                delivery.status, delivery.attempts = DeliveryStatus.DELIVERED, 1
                delivery.delivered_at = delivery.created_at + timedelta(seconds=rng.randint(1, 20))
        session.flush()
