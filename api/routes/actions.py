"""One-tap action links (``/a/{token}``): the page a link in a chat message or text message opens.

No API key: the signed link is the credential (alerts/action_links.py), scoped to one recipient, one
alert and one action. A GET only shows the alert and a confirm button, because chat apps open links to
preview them; the button's POST performs the action, recorded with the recipient as the actor. An
invalid, expired, reused or no longer needed link gets a clear page and changes nothing. A page that shows
an alert is an audit event of the link's recipient (a read, or the action it performed).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from alerts.action_links import LABELS, ActionLinkSigner, LinkView, open_link, use_link
from alerts.audit import Actor, record
from alerts.channels.templates import building_of, mask_name
from alerts.channels.wording import KIND_LABELS, OUTCOME_LABELS, SEVERITY_LABELS
from alerts.lifecycle import LifecycleError
from alerts.models import Household, utcnow
from alerts.payloads import STAFF_VIEW, elder_as_called, view_of
from alerts.pipeline import router_config
from alerts.statuses import PERSON_OUTCOMES
from api.console import SECURITY_HEADERS, templates
from api.deps import SessionDep
from api.request_id import client_address, request_id_of
from shouwang.settings import Settings

router = APIRouter(tags=["action links"], include_in_schema=False)

_STATUS = {"ready": 200, "done": 200, "closed": 200, "used": 410, "expired": 410, "invalid": 404}
_TITLES = {
    "acknowledge": ("确认接手处理", "Acknowledge"),
    "resolve": ("记录处理结果", "Resolve"),
    "fine": ("您还好吗？", "Are you well?"),
    "away": ("您不在家吗？", "Are you away?"),
    None: ("守望告警", "Shouwang alert"),
}
_STATUS_ZH = {"checking": "询问老人中", "raised": "待处理", "acknowledged": "已有人接手", "resolved": "已处理完毕"}
RESIDENT_ACTIONS = frozenset({"fine", "away"})
_AUDITED = {
    "acknowledge": "alert.acknowledge",
    "resolve": "alert.resolve",
    "fine": "check_in.fine",
    "away": "check_in.away",
}
_MAX_FORM_BYTES = 4096


def _signer(request: Request) -> ActionLinkSigner:
    signer: ActionLinkSigner = request.app.state.link_signer
    return signer


def _ttl(request: Request) -> timedelta:
    settings: Settings = request.app.state.settings
    return timedelta(hours=settings.action_link_ttl_h)


def _audit(request: Request, session: SessionDep, view: LinkView) -> None:
    """A genuine link's page shows its alert (and the home): a read by the link's recipient, or the action
    the link performed. An invalid link shows nothing, and is not recorded."""
    if view.alert is None or view.recipient is None:
        return
    actor = Actor(view.recipient.id, view.recipient.role, request_id_of(request), client_address(request))
    action = _AUDITED.get(view.action or "") if view.state == "done" else "alert.read"
    record(
        session,
        actor,
        action or "alert.read",
        "alert",
        view.alert.id,
        household_id=view.alert.household_id,
        detail={"via": "action_link", "link": view.action, "state": view.state},
    )


def _page(request: Request, session: SessionDep, token: str, view: LinkView) -> HTMLResponse:
    _audit(request, session, view)
    alert, recipient = view.alert, view.recipient
    place = None
    raised_at = ""
    zone = ZoneInfo("Asia/Shanghai")
    if alert is not None:
        household = session.get(Household, alert.household_id) if alert.household_id else None
        zone = ZoneInfo(household.timezone) if household else zone
        raised_at = alert.raised_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        # The page shows the household as the message did: a link from a group chat may be opened by anyone
        # in the group, so it gets the masked name and the building only; a relative's (or the elder's own)
        # the elder as they call them, without the address, as their message (alerts/payloads.py).
        if household is not None and recipient is not None and not view.group:
            if view_of(recipient.role) != STAFF_VIEW:
                place = elder_as_called(session, recipient.id, household) or household.name
            elif household.address:
                place = f"{household.name} · {household.address}"
            else:
                place = household.name
        elif household is not None:
            place = " · ".join(p for p in (mask_name(household.name), building_of(household.address)) if p)
        elif alert.grid_cell:
            place = alert.grid_cell
    title_zh, title_en = _TITLES.get(view.action, _TITLES[None])
    settings: Settings = request.app.state.settings
    local_now = utcnow().astimezone(zone)
    today = local_now.date().isoformat()
    away_last_day = (local_now.date() + timedelta(days=settings.away_max_days)).isoformat()
    button_zh, button_en = LABELS.get(view.action or "", ("确认", "Confirm"))
    context = {
        "view": view,
        "alert": alert,
        "place": place,
        "raised_at": raised_at,
        "title_zh": title_zh,
        "title_en": title_en,
        "button_zh": button_zh,
        "button_en": button_en,
        "kind_zh": KIND_LABELS.get(alert.kind, (alert.kind, alert.kind))[0] if alert else "",
        "severity_zh": SEVERITY_LABELS.get(alert.severity, (alert.severity, ""))[0] if alert else "",
        "status_zh": _STATUS_ZH.get(alert.status, alert.status) if alert else "",
        "outcomes": [(o.value, *OUTCOME_LABELS.get(o.value, (o.value, o.value))) for o in PERSON_OUTCOMES],
        "action_path": f"/a/{token}",
        "for_resident": view.action in RESIDENT_ACTIONS,
        "today": today,
        "away_last_day": away_last_day,
    }
    response = templates.TemplateResponse(request, "actions/page.html", context, status_code=_STATUS[view.state])
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/a/{token}", response_class=HTMLResponse)
def show_link(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    view = open_link(session, _signer(request), token, now=utcnow(), ttl=_ttl(request))
    return _page(request, session, token, view)


@router.post("/a/{token}", response_class=HTMLResponse)
async def use(token: str, request: Request) -> HTMLResponse:
    body = await request.body()
    form = parse_qs(body[:_MAX_FORM_BYTES].decode("utf-8", "replace"))
    outcome = form.get("outcome", [""])[0] or None
    note = form.get("note", [""])[0].strip() or None
    until = form.get("until", [""])[0].strip()[:10] or None
    settings: Settings = request.app.state.settings
    with request.app.state.store.transaction() as session:
        try:
            view = use_link(
                session,
                _signer(request),
                token,
                now=utcnow(),
                ttl=_ttl(request),
                outcome=outcome,
                note=note[:2000] if note else None,
                config=router_config(settings),
                until=until,
            )
        except LifecycleError as exc:
            view = open_link(session, _signer(request), token, now=utcnow(), ttl=_ttl(request))
            view = LinkView("ready", str(exc), str(exc), view.action, view.alert, view.recipient)
        return _page(request, session, token, view)
