"""Ingest: meter readings (one or a JSON array) and residents' incident reports, onto Kafka.

Readings are telemetry, not a person's record being read or changed: they are not in the audit trail (one
event per reading would outgrow the readings). A submitted incident report is, once Kafka has it.

Readings are validated one by one: good items are produced and acknowledged by Kafka before the
202; bad ones are reported with their index (a bad item never costs a good one beside it).
A reading is identified by (meter_id, ts): posting it again is harmless, since the worker
treats a repeated reading as a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from alerts.audit import Actor, record
from alerts.models import Household, Meter, utcnow
from api import metrics
from api.auth import Principal
from api.deps import ActorDep, Ingestor, Reporter
from api.errors import ERROR_RESPONSES, ApiError, error_responses
from api.schemas import IncidentAccepted, IncidentCreate, IngestResult, Reading
from shouwang.events import IncidentReport, MeterReading, describe_validation_error, encode
from shouwang.topics import Topics

router = APIRouter(prefix="/v1", tags=["ingest"], responses=ERROR_RESPONSES)
MAX_ITEMS = 5000
# How long a request waits for Kafka's acknowledgement before answering 503 (aiokafka itself would
# wait out its request timeout, 40 s, and a client hangs meanwhile when the broker is gone).
KAFKA_ACK_TIMEOUT_S = 10.0
_READING = TypeAdapter(Reading)
_READING_SCHEMA = Reading.model_json_schema()
_BODY_SCHEMA = {
    "oneOf": [_READING_SCHEMA, {"type": "array", "items": _READING_SCHEMA, "minItems": 1, "maxItems": MAX_ITEMS}]
}


def _producer(request: Request) -> Any:
    producer = request.app.state.producer
    if producer is None:
        raise ApiError(503, "unavailable", "Kafka is not connected yet; retry shortly", headers={"Retry-After": "5"})
    return producer


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_constant=lambda name: math.nan)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(422, "invalid_request", "the body is not valid JSON") from exc


@router.post(
    "/readings",
    status_code=202,
    response_model=IngestResult,
    summary="Ingest readings: one object or an array (up to 5,000); 202 once Kafka has them",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}}},
    responses=error_responses(429, 503),
)
async def ingest_readings(request: Request, principal: Ingestor) -> IngestResult:
    data = _json(await request.body())
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ApiError(422, "invalid_request", "an empty array has no readings")
    most = min(MAX_ITEMS, request.app.state.settings.ingest_burst)  # more could never pass the rate limit
    if len(items) > most:
        raise ApiError(413, "too_large", f"{len(items)} readings in one request; the limit is {most}")
    wait = request.app.state.rate_limits.take(principal.key_id, len(items))
    if wait:
        retry = "60" if math.isinf(wait) else str(max(1, math.ceil(wait)))
        raise ApiError(
            429,
            "rate_limited",
            f"this key may ingest {request.app.state.settings.ingest_rate_per_s:g} readings per second; slow down",
            headers={"Retry-After": retry},
        )
    good: list[MeterReading] = []
    positions: list[int] = []  # each good reading's index in the request
    rejected: list[dict[str, Any]] = []
    skew_s = request.app.state.settings.clock_skew_s
    latest = utcnow() + timedelta(seconds=skew_s)
    for index, item in enumerate(items):
        try:
            reading = _READING.validate_python(item)
        except ValidationError as exc:
            rejected.append({"index": index, "error": describe_validation_error(exc)})
            continue
        if reading.ts > latest:  # a reading from the future would make every real one after it "late"
            rejected.append({"index": index, "error": _from_the_future(reading.ts, latest, skew_s)})
            continue
        good.append(MeterReading(meter_id=reading.meter_id, ts=reading.ts, register_l=reading.register_l))
        positions.append(index)
    if good:
        good = await asyncio.to_thread(_screen, request, principal, good, positions, rejected)
    metrics.READINGS_REJECTED.inc(len(rejected))
    if not good:
        raise ApiError(
            422,
            "invalid_request",
            f"none of the {len(items)} readings is valid; first: #{rejected[0]['index']}: {rejected[0]['error']}",
        )
    producer = _producer(request)
    topic = Topics.from_settings(request.app.state.settings).readings
    try:
        await asyncio.wait_for(
            asyncio.gather(*(producer.send_and_wait(topic, key=r.meter_id.encode(), value=encode(r)) for r in good)),
            KAFKA_ACK_TIMEOUT_S,
        )
    except Exception as exc:  # the broker did not take them: the client must retry, nothing was promised
        raise ApiError(
            503,
            "unavailable",
            f"Kafka did not acknowledge the readings ({type(exc).__name__}); retry",
            headers={"Retry-After": "5"},
        ) from exc
    metrics.READINGS_INGESTED.inc(len(good))
    return IngestResult(accepted=len(good), rejected=rejected)


def _screen(
    request: Request,
    principal: Principal,
    good: list[MeterReading],
    positions: list[int],
    rejected: list[dict[str, Any]],
) -> list[MeterReading]:
    """Readings of a household whose consent was withdrawn, or that was erased, are refused, whoever posts them.
    A device key reports for its own meters, enrolled ones only: a leaked gateway key cannot fake water use for
    another home, nor feed meters nobody enrolled. The refused are added to ``rejected``."""
    with request.app.state.store.transaction() as session:
        rows = session.execute(
            select(Meter.meter_id, Household.consent_withdrawn_at, Household.erased_at)
            .join(Household, Meter.household_id == Household.id)
            .where(Meter.meter_id.in_({r.meter_id for r in good}))
        ).all()
    enrolled = {meter_id for meter_id, _, _ in rows}
    withdrawn = {meter_id for meter_id, withdrawn_at, _ in rows if withdrawn_at is not None}
    erased = {meter_id for meter_id, _, erased_at in rows if erased_at is not None}
    kept = []
    for reading, index in zip(good, positions, strict=True):
        if reading.meter_id in erased:
            reason = f"meter_id: {reading.meter_id}: its household's data was erased; readings are refused"
        elif reading.meter_id in withdrawn:
            reason = f"meter_id: {reading.meter_id}: consent for its household was withdrawn; readings are refused"
        elif principal.role == "device" and not principal.may_report(reading.meter_id):
            reason = f"meter_id: {reading.meter_id} is not one of this key's meters"
        elif principal.role == "device" and reading.meter_id not in enrolled:
            reason = f"meter_id: {reading.meter_id} is not enrolled"
        else:
            kept.append(reading)
            continue
        rejected.append({"index": index, "error": reason})
    rejected.sort(key=lambda item: int(item["index"]))
    return kept


def _from_the_future(ts: datetime, latest: datetime, skew_s: float) -> str:
    ahead_min = (ts - latest).total_seconds() / 60 + skew_s / 60
    return (
        f"ts: {ts.isoformat()} is {ahead_min:,.0f} min after this server's clock; a reading may be at most "
        f"{skew_s / 60:g} min ahead (SHOUWANG_CLOCK_SKEW_S)"
    )


@router.post(
    "/incidents",
    status_code=202,
    response_model=IncidentAccepted,
    responses=error_responses(503),
    summary="Submit a resident's snap-and-report (随手拍) incident report",
)
async def submit_incident(
    body: IncidentCreate, request: Request, principal: Reporter, actor: ActorDep
) -> IncidentAccepted:
    incident = IncidentReport(
        incident_id=f"inc_{secrets.token_hex(8)}",
        text=body.text,
        grid_cell=body.grid_cell,
        ts=body.ts or utcnow(),
        reporter=body.reporter,
        photo_url=body.photo_url,
    )
    producer = _producer(request)
    topic = Topics.from_settings(request.app.state.settings).incidents
    try:
        await asyncio.wait_for(
            producer.send_and_wait(topic, key=incident.grid_cell.encode(), value=encode(incident)), KAFKA_ACK_TIMEOUT_S
        )
    except Exception as exc:
        raise ApiError(
            503,
            "unavailable",
            f"Kafka did not acknowledge the report ({type(exc).__name__}); retry",
            headers={"Retry-After": "5"},
        ) from exc
    await asyncio.to_thread(_record_incident, request, actor, incident)
    return IncidentAccepted(id=incident.incident_id)


def _record_incident(request: Request, actor: Actor, incident: IncidentReport) -> None:
    """The report went to Kafka, not to the store: its audit event gets a transaction of its own, once
    Kafka has acknowledged it (a report Kafka refused was never submitted)."""
    with request.app.state.store.transaction() as session:
        record(
            session,
            actor,
            "incident.submit",
            "incident",
            incident.incident_id,
            detail={"grid_cell": incident.grid_cell},
        )
