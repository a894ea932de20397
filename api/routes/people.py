"""Recipients and their webhook endpoints, subscriptions, and API keys (operators only). Each change, and
each read of a recipient or of the subscriptions (who follows which home), is in the audit trail."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from alerts import admin
from alerts.audit import record
from alerts.channels.base import Notification
from alerts.channels.registry import Channels
from alerts.channels.types import ChannelType
from alerts.channels.validation import ChannelConfigError
from alerts.models import ApiKey, Endpoint, Recipient, Subscription, utcnow
from alerts.outbox import note_endpoint_health
from alerts.payloads import ping_payload
from alerts.webhook_secrets import WebhookSecretError, open_webhook_secrets, rotated
from alerts.webhooks import make_client, send_once
from alerts.webhooks.ssrf import UnsafeURLError, check_url
from api.auth import issue_key, revoke
from api.deps import ActorDep, Operator, SessionDep
from api.errors import ERROR_RESPONSES, ApiError, ErrorDetail, error_responses, not_found
from api.schemas import (
    ChannelOut,
    KeyCreate,
    KeyOut,
    PingResult,
    RecipientCreate,
    RecipientCreated,
    RecipientOut,
    SecretRotated,
    SubscriptionCreate,
    SubscriptionOut,
)
from shouwang.settings import Settings

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _endpoint(session: SessionDep, recipient_id: str) -> Endpoint | None:
    return session.scalar(
        select(Endpoint).where(Endpoint.recipient_id == recipient_id).order_by(Endpoint.created_at.desc()).limit(1)
    )


def _channels(request: Request) -> Channels:
    channels: Channels = request.app.state.channels
    return channels


def _recipient_out(session: SessionDep, recipient: Recipient) -> RecipientOut:
    endpoint = _endpoint(session, recipient.id)
    webhook = endpoint is not None and endpoint.type == ChannelType.WEBHOOK
    return RecipientOut(
        id=recipient.id,
        name=recipient.name,
        role=recipient.role,
        webhook_url=endpoint.url if endpoint and webhook else None,
        webhook_status=endpoint.status if endpoint and webhook else None,
        channel=None
        if endpoint is None
        else ChannelOut(
            type=endpoint.type,
            display=endpoint.url,
            status=endpoint.status,
            failing_since=endpoint.failing_since,
            last_error=endpoint.last_error,
        ),
    )


@router.post(
    "/recipients",
    status_code=201,
    response_model=RecipientCreated,
    tags=["recipients"],
    summary="Add a recipient; the webhook signing secret is returned only now",
)
def create_recipient(
    body: RecipientCreate, session: SessionDep, request: Request, _: Operator, actor: ActorDep
) -> RecipientCreated:
    settings = _settings(request)
    webhook_url, channel = body.webhook_url, None
    if body.channel is not None and body.channel.type == "webhook":
        config = body.channel.config()
        if set(config) != {"url"} or not isinstance(config["url"], str):
            raise _invalid_channel("url", "a webhook channel has exactly one field besides type: url (a string)")
        webhook_url = config["url"]
    elif body.channel is not None:
        try:
            channel = _channels(request).register(body.channel.type, body.channel.config())
        except ChannelConfigError as exc:
            raise _invalid_channel(exc.field, str(exc)) from None
    recipient, secret = admin.create_recipient(
        session,
        name=body.name,
        role=body.role,
        webhook_url=webhook_url,
        allow=settings.webhook_allowlist,
        require_https=settings.webhook_require_https,
        channel=channel,
        box=_channels(request).box,
    )
    record(session, actor, "recipient.create", "recipient", recipient.id, detail={"role": recipient.role})
    out = _recipient_out(session, recipient)
    return RecipientCreated(**out.model_dump(), webhook_secret=secret)


@router.get("/recipients/{recipient_id}", response_model=RecipientOut, tags=["recipients"])
def get_recipient(recipient_id: str, session: SessionDep, _: Operator, actor: ActorDep) -> RecipientOut:
    recipient = session.get(Recipient, recipient_id)
    if recipient is None:
        raise not_found(f"recipient {recipient_id}")
    record(session, actor, "recipient.read", "recipient", recipient.id)
    return _recipient_out(session, recipient)


@router.post(
    "/recipients/{recipient_id}/rotate-secret",
    response_model=SecretRotated,
    tags=["recipients"],
    summary="Replace the webhook signing secret (the old one also signs for SHOUWANG_WEBHOOK_SECRET_OVERLAP_H)",
)
def rotate_secret(
    recipient_id: str, session: SessionDep, request: Request, _: Operator, actor: ActorDep
) -> SecretRotated:
    endpoint = _endpoint(session, recipient_id)
    if endpoint is None or endpoint.type != ChannelType.WEBHOOK:
        raise not_found(f"webhook endpoint of recipient {recipient_id}")
    overlap = timedelta(hours=_settings(request).webhook_secret_overlap_h)
    secret, endpoint.sealed_config = rotated(
        _channels(request).box, endpoint.sealed_config, now=utcnow(), overlap=overlap
    )
    endpoint.secret = ""
    record(session, actor, "recipient.rotate_secret", "recipient", recipient_id)
    return SecretRotated(recipient_id=recipient_id, webhook_secret=secret)


@router.post(
    "/recipients/{recipient_id}/ping",
    response_model=PingResult,
    tags=["recipients"],
    summary="Send a signed test message (type endpoint.ping) to the recipient's webhook now",
)
async def ping(recipient_id: str, request: Request, _: Operator, actor: ActorDep) -> PingResult:
    settings = _settings(request)
    with request.app.state.store.transaction() as session:
        endpoint = _endpoint(session, recipient_id)
        recipient = session.get(Recipient, recipient_id)
        if endpoint is None or recipient is None:
            raise not_found(f"endpoint of recipient {recipient_id}")
        url, endpoint_id = endpoint.url, endpoint.id
        endpoint_type, sealed, role = endpoint.type, endpoint.sealed_config, recipient.role
        record(session, actor, "recipient.ping", "recipient", recipient_id)  # before anything is sent
    if endpoint_type != ChannelType.WEBHOOK:
        return await _ping_channel(request, endpoint_id, endpoint_type, sealed, role)
    try:
        check_url(url, allow=settings.webhook_allowlist, require_https=settings.webhook_require_https)
    except UnsafeURLError as exc:
        return PingResult(outcome="reject", status_code=None, error=str(exc))
    now = utcnow()
    try:
        secret, *previous = open_webhook_secrets(_channels(request).box, sealed).signing(now)
    except WebhookSecretError as exc:
        return PingResult(outcome="reject", status_code=None, error=str(exc))
    async with make_client(
        allow=settings.webhook_allowlist,
        require_https=settings.webhook_require_https,
        timeout_s=settings.webhook_timeout_s,
    ) as client:
        result = await send_once(
            client,
            url=url,
            secret=secret,
            message_id=f"msg_ping_{int(now.timestamp())}",
            body=ping_payload(endpoint_id=endpoint_id, now=now).encode(),
            now=now,
            timeout_s=settings.webhook_timeout_s,
            also_signed_by=previous,
        )
    return PingResult(outcome=result.outcome, status_code=result.status_code, error=result.error)


@router.post("/subscriptions", status_code=201, response_model=SubscriptionOut, tags=["subscriptions"])
def create_subscription(body: SubscriptionCreate, session: SessionDep, _: Operator, actor: ActorDep) -> SubscriptionOut:
    recipient = session.get(Recipient, body.recipient_id)
    if recipient is None:
        raise not_found(f"recipient {body.recipient_id}")
    subscription = admin.subscribe(
        session,
        recipient,
        household_id=body.household_id,
        grid_cell=body.grid_cell,
        community=body.community,
        kinds=body.kinds,
        min_severity=body.min_severity,
        all_is_well_every=body.all_is_well_every,
        all_is_well_at=body.all_is_well_at,
        all_is_well_call=body.all_is_well_call,
    )
    record(
        session,
        actor,
        "subscription.create",
        "subscription",
        subscription.id,
        household_id=subscription.household_id,
        detail={"recipient_id": recipient.id},
    )
    return _subscription_out(subscription)


@router.get("/subscriptions", response_model=list[SubscriptionOut], tags=["subscriptions"])
def list_subscriptions(
    session: SessionDep, _: Operator, actor: ActorDep, recipient_id: str | None = None
) -> list[SubscriptionOut]:
    query = select(Subscription).order_by(Subscription.id).limit(1000)
    if recipient_id is not None:
        query = query.where(Subscription.recipient_id == recipient_id)
    subscriptions = list(session.scalars(query))
    record(
        session,
        actor,
        "subscription.list",
        "subscription",
        households=[s.household_id for s in subscriptions if s.household_id],
        detail={"filter": {"recipient_id": recipient_id} if recipient_id else {}, "count": len(subscriptions)},
    )
    return [_subscription_out(s) for s in subscriptions]


@router.delete("/subscriptions/{subscription_id}", status_code=204, response_class=Response, tags=["subscriptions"])
def delete_subscription(subscription_id: str, session: SessionDep, _: Operator, actor: ActorDep) -> Response:
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        raise not_found(f"subscription {subscription_id}")
    record(
        session,
        actor,
        "subscription.delete",
        "subscription",
        subscription.id,
        household_id=subscription.household_id,
        detail={"recipient_id": subscription.recipient_id},
    )
    session.delete(subscription)
    return Response(status_code=204)


def _subscription_out(subscription: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=subscription.id,
        recipient_id=subscription.recipient_id,
        household_id=subscription.household_id,
        grid_cell=subscription.grid_cell,
        community=subscription.community,
        kinds=subscription.kinds,
        min_severity=subscription.min_severity,
        all_is_well_every=subscription.all_is_well_every,
        all_is_well_at=subscription.all_is_well_at,
        all_is_well_call=subscription.all_is_well_call,
    )


@router.post(
    "/keys",
    status_code=201,
    response_model=KeyOut,
    tags=["keys"],
    summary="Issue an API key; the token is returned only now",
)
def create_key(body: KeyCreate, session: SessionDep, principal: Operator, actor: ActorDep) -> KeyOut:
    recipient = session.get(Recipient, body.recipient_id) if body.recipient_id else None
    if body.recipient_id and recipient is None:  # the foreign key would refuse it (that was a 500)
        raise ApiError(422, "invalid_request", f"recipient_id: no recipient {body.recipient_id}")
    if body.role == "family" and (recipient is None or recipient.role != "family"):
        raise ApiError(422, "invalid_request", "a family key needs recipient_id of a family recipient")
    if body.role == "grid_worker" and not body.grid_cells:
        raise ApiError(422, "invalid_request", "a grid_worker key needs grid_cells")
    if body.role == "supervisor" and not (body.community or body.grid_cells):
        raise ApiError(422, "invalid_request", "a supervisor key needs a community or grid_cells")
    # A device key names what it may report for: a leaked gateway key must not fake water use for any home.
    if body.role == "device" and not (body.meters or body.meter_prefix):
        raise ApiError(422, "invalid_request", "a device key needs meters (ids) or meter_prefix")
    if body.role != "device" and (body.meters or body.meter_prefix):
        raise ApiError(422, "invalid_request", "meters and meter_prefix are for device keys only")
    key, token = issue_key(
        session,
        name=body.name,
        role=body.role,
        created_by=principal.key_id,
        recipient_id=body.recipient_id,
        grid_cells=body.grid_cells,
        community=body.community,
        meters=body.meters,
        meter_prefix=body.meter_prefix,
    )
    record(session, actor, "key.issue", "key", key.id, detail={"role": key.role})
    return KeyOut(id=key.id, name=key.name, role=key.role, token=token)


@router.delete(
    "/keys/{key_id}", status_code=204, response_class=Response, tags=["keys"], responses=error_responses(409)
)
def revoke_key(key_id: str, session: SessionDep, principal: Operator, actor: ActorDep) -> Response:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise not_found(f"key {key_id}")
    if key.id == principal.key_id:
        raise ApiError(409, "conflict", "a key cannot revoke itself")
    revoke(key)
    record(session, actor, "key.revoke", "key", key.id, detail={"role": key.role})
    return Response(status_code=204)


def _invalid_channel(field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "invalid_request",
        f"channel.{field}: {message}",
        details=[ErrorDetail(field=f"channel.{field}", message=message)],
    )


async def _ping_channel(
    request: Request, endpoint_id: str, endpoint_type: str, sealed: str | None, role: str
) -> PingResult:
    """A test message on the recipient's channel now, with the vendor's answer; it also settles whether the
    channel is failing, so an operator who fixed a secret sees the alert rule clear."""
    settings = _settings(request)
    now = utcnow()
    try:
        channel = _channels(request).build(endpoint_type, sealed)
    except ValueError as exc:
        return PingResult(outcome="reject", status_code=None, error=str(exc)[:300])
    notification = Notification(
        f"msg_ping_{int(now.timestamp())}", json.loads(ping_payload(endpoint_id=endpoint_id, now=now)), role
    )
    async with make_client(
        allow=settings.webhook_allowlist,
        require_https=settings.webhook_require_https,
        timeout_s=settings.webhook_timeout_s,
    ) as client:
        result = await channel.send(client, notification, now=now, timeout_s=settings.webhook_timeout_s)
    with request.app.state.store.transaction() as session:
        note_endpoint_health(session, endpoint_id, result, now)
    return PingResult(outcome=result.outcome, status_code=result.status_code, error=result.error)
