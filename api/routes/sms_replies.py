"""Text-message replies to a check-in, forwarded by the SMS provider's inbound ("upstream") callback.

Authenticated like every machine that posts data in: an operator or ``device`` key (the gateway that
relays the provider's callback holds one). Three body shapes are accepted: ``{"from", "text"}``, Tencent
Cloud's ``{"mobile", "nationcode", "text"}`` and Aliyun's list of ``{"phone_number", "content"}``. A reply
that changes nothing (a number no resident is asked on, nothing waiting, an unknown code, a second
answer) is answered 4xx with the reason.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from alerts.audit import record
from alerts.channels.sms import validate_phone
from alerts.models import Alert, utcnow
from alerts.pipeline import router_config
from alerts.secret_box import secret_box
from alerts.sms_replies import ReplyError, answer_by_reply
from api.deps import ActorDep, Ingestor
from api.errors import ERROR_RESPONSES, ApiError, error_responses
from shouwang.settings import Settings

router = APIRouter(prefix="/v1", tags=["check-ins"], responses=ERROR_RESPONSES)
_MAX_TEXT = 70  # one SMS


class ReplyResultOut(BaseModel):
    action: str
    alert_id: str
    message: str


def sender_and_text(body: Any) -> tuple[str, str]:
    """(E.164 phone, text) from any of the accepted shapes, or 422 naming what is missing."""
    item = body[0] if isinstance(body, list) and len(body) == 1 else body
    if not isinstance(item, dict):
        raise ApiError(422, "invalid_request", 'expected {"from": "+86…", "text": "1"} (or the provider\'s callback)')
    if "from" in item:
        phone, text = item.get("from"), item.get("text")
    elif "mobile" in item:  # Tencent Cloud
        phone, text = f"+{item.get('nationcode') or '86'}{item.get('mobile')}", item.get("text")
    else:  # Aliyun
        raw = str(item.get("phone_number") or "")
        phone, text = (raw if raw.startswith("+") else f"+86{raw}"), item.get("content")
    if not isinstance(phone, str) or not isinstance(text, str) or not text.strip():
        raise ApiError(422, "invalid_request", "a reply needs the sender's number and a non-empty text")
    if len(text) > _MAX_TEXT:
        raise ApiError(422, "invalid_request", f"text: longer than one SMS ({_MAX_TEXT} characters)")
    try:
        return validate_phone(phone, field="from"), text
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc


@router.post(
    "/sms/replies",
    response_model=ReplyResultOut,
    summary="A resident's text-message answer to a check-in: 1 (I'm fine) or 2 [day] (I'm away)",
    responses=error_responses(404, 409),
)
async def sms_reply(request: Request, _: Ingestor, actor: ActorDep) -> ReplyResultOut:
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(422, "invalid_request", "the body is not valid JSON") from exc
    phone, text = sender_and_text(body)
    settings: Settings = request.app.state.settings
    with request.app.state.store.transaction() as session:
        try:
            result = answer_by_reply(
                session,
                phone=phone,
                text=text,
                now=utcnow(),
                config=router_config(settings),
                box=secret_box(settings),
                ttl=timedelta(hours=settings.action_link_ttl_h),
            )
        except ReplyError as exc:
            code = {404: "not_found", 409: "conflict"}.get(exc.status, "invalid_request")
            raise ApiError(exc.status, code, str(exc)) from exc
        # The gateway's key is the actor; the resident answered through it (never their number here).
        alert = session.get(Alert, result.alert_id)
        record(
            session,
            actor,
            f"check_in.{result.action}",
            "alert",
            result.alert_id,
            household_id=alert.household_id if alert else None,
            detail={"via": "sms"},
        )
    return ReplyResultOut(action=result.action, alert_id=result.alert_id, message=result.message)
