"""The pure core of the feedback agent: a feedback record and its meter's state in, the new state or
a dead letter out.

Four messages share the feedback topic (keyed by meter id): a person's verdict on an alarm
(``false_alarm`` / ``resident_fine``), which the meter's detector learns from; enrolment's
routine hints (getting-up time, regular outings), which a newly enrolled meter's detector starts
from; a household's consent withdrawn or given again; and a household's erasure. No Faust and no
Kafka here, as in ``streams.processing``.

**Erasure replaces the state with a marker, not a tombstone.** The learned routine must leave the
table and its changelog, and the meter's later readings must be refused. A tombstone (a null value)
would do the first, but it is itself removed by compaction after ``delete.retention.ms`` (a day by
default), after which a reading still on its way, or a replay, would start a new routine for the
erased home. The marker ``ERASED`` holds no personal data and supersedes every earlier state under
the same key, so compaction removes those exactly as it would behind a tombstone (the changelog's
hourly segments, ``streams.topic_provisioning``), and it stays to refuse the readings. A separate
key for the marker would cost every reading of a meter without state a second lookup, and the
readings agent already compares the state with ``NO_CONSENT``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from detectors import DetectorBank
from shouwang.events import (
    ConsentChange,
    EventError,
    MeterErased,
    MeterHints,
    OutcomeFeedback,
    alert_id_for,
    decode_feedback,
    minute_of_day,
)
from streams.offline import partition_of
from streams.processing import ERASED, NO_CONSENT, Outcome, RecordProcessor, SourceRecord

log = logging.getLogger(__name__)


class FeedbackRefused(EventError):
    """A well-formed feedback record that cannot be applied; the message is the dead letter's reason."""


class FeedbackProcessor(RecordProcessor):
    """Decode → check against the meter → teach the meter's detector bank, one record at a time.

    ``partitions`` is the readings topic's partition count: a record is refused when it does not sit
    in the partition that holds its meter's state (the feedback topic has another partition count
    than the readings topic), instead of being judged against the state of a meter this worker may
    not hold. None: not checked.
    """

    def __init__(
        self, bank_factory: Callable[[], DetectorBank] | None = None, *, partitions: int | None = None
    ) -> None:
        self._bank_factory = bank_factory or DetectorBank
        self._partitions = partitions

    def _process(self, record: SourceRecord, state: bytes | None) -> Outcome:
        if record.value is None:
            raise EventError("empty message (null value)")
        message = decode_feedback(record.value)
        meter_id = message.meter_id
        # Unlike a mis-keyed reading, feedback is not sent again under the right key: its producer
        # (the router) keys it by meter, so another key means a producer to fix, not a record to save.
        if record.key != meter_id.encode():
            shown = "no key" if record.key is None else f"key {record.key.decode(errors='replace')!r}"
            raise FeedbackRefused(
                f"{shown} is not the meter id {meter_id!r}: feedback must be keyed by its meter, "
                "whose detector state lives in that key's partition"
            )
        if self._partitions is not None:
            home = partition_of(meter_id, self._partitions)
            if record.partition != home:
                raise FeedbackRefused(
                    f"meter {meter_id!r} is in partition {home} of the readings but this record in partition "
                    f"{record.partition}: the feedback topic must have the readings topic's partition count "
                    f"({self._partitions}); run `shouwang topics`"
                )
        outcome = Outcome(meter_id=meter_id)
        if isinstance(message, MeterErased):
            outcome.state = ERASED  # for good: nothing after it brings a state back (module docstring)
            return outcome
        if state == ERASED:
            return outcome  # an erased household's meter learns nothing and gets no consent again
        if isinstance(message, ConsentChange):
            # Withdrawn: the learned routine is deleted (the marker replaces it) and readings are dropped.
            # Given again: a fresh start, nothing of before is kept.
            outcome.state = NO_CONSENT if message.withdrawn else self._bank_factory().dump()
            return outcome
        if state == NO_CONSENT:
            return outcome  # nothing is learned about a household without consent
        bank = self._bank_factory()
        if state:
            try:
                bank.load(state)
            except ValueError as exc:  # a state from an incompatible version: as the readings do, start again
                log.warning("meter %s: detector state not usable (%s); starting afresh", meter_id, exc)
                bank, outcome.state_reset = self._bank_factory(), True
        if isinstance(message, OutcomeFeedback):
            if not state:
                raise FeedbackRefused(f"unknown meter {meter_id!r}: no detector state here (no readings seen)")
            _learn_outcome(bank, message)
        else:
            # A meter enrolled a moment ago has no readings and so no state: hints are what it starts from.
            _learn_hints(bank, message)
        outcome.state = bank.dump()
        return outcome


def _learn_outcome(bank: DetectorBank, feedback: OutcomeFeedback) -> None:
    expected = alert_id_for(feedback.meter_id, feedback.kind, feedback.since)
    if feedback.alert_id != expected:
        # The id is derived from (meter, kind, since): one that does not match names no episode of
        # this meter, so what the message says about it cannot be trusted either.
        raise FeedbackRefused(
            f"unknown alert {feedback.alert_id!r}: meter {feedback.meter_id!r}'s {feedback.kind.value} episode "
            f"since {feedback.since.isoformat()} is {expected!r}"
        )
    if not bank.learn_feedback(feedback.kind.value, feedback.since.timestamp(), feedback.silence_h):
        raise FeedbackRefused(f"no detector learns from {feedback.outcome} on {feedback.kind.value} alerts")


def _learn_hints(bank: DetectorBank, message: MeterHints) -> None:
    hints = message.hints
    wake = None if hints.wake_up is None else float(minute_of_day(hints.wake_up))
    outings = [
        (outing.weekday_mask(), float(minute_of_day(outing.start)), float(minute_of_day(outing.end)))
        for outing in hints.outings
    ]
    bank.learn_hints(wake_minute=wake, outings=outings)
