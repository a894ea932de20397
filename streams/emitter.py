"""Sending what processing a record produced: its alerts to the alerts topic, its meters' day summaries to
the daily topic, its dead letter to the dead-letter topic. Shared by the agents."""

from __future__ import annotations

import logging

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from shouwang.events import encode
from streams import metrics
from streams.incidents import IncidentOutcome
from streams.processing import Outcome
from streams.state_writes import Send, SentAlert, failed_delivery

log = logging.getLogger(__name__)


class Emitter:
    """``send_alert``, ``send_dead_letter`` and ``send_daily`` are the topics' sends (Faust's ``Topic.send``);
    without ``send_daily`` day summaries are not sent (a worker wired before the daily topic existed)."""

    def __init__(self, send_alert: Send, send_dead_letter: Send, send_daily: Send | None = None) -> None:
        self._send_alert = send_alert
        self._send_dead_letter = send_dead_letter
        self._send_daily = send_daily

    async def emit(self, outcome: Outcome | IncidentOutcome) -> list[SentAlert]:
        """Send the outcome's alerts and dead letter; the alerts' deliveries, for the state to wait on."""
        sent = []
        for alert in outcome.alerts:
            key, value = (alert.meter_id or alert.grid_cell or "").encode(), encode(alert)
            try:
                delivery = await self._send_alert(key=key, value=value)
            except (KafkaError, ProducerSendError) as exc:  # refused at once: sent again like a failed delivery
                delivery = failed_delivery(exc)
            sent.append(SentAlert(key, value, delivery))
            metrics.ALERTS_EMITTED.labels(alert.kind.value, alert.severity.value, alert.event).inc()
        if isinstance(outcome, Outcome) and outcome.daily and self._send_daily is not None:
            # Held like alerts: the meter's state, which has moved past the day, waits for its summaries, so a
            # worker that dies in between sends them again from the reading instead of losing the message.
            for summary in outcome.daily:
                key, value = summary.meter_id.encode(), encode(summary)
                try:
                    delivery = await self._send_daily(key=key, value=value)
                except (KafkaError, ProducerSendError) as exc:
                    delivery = failed_delivery(exc)
                sent.append(SentAlert(key, value, delivery, resend=self._send_daily))
        if outcome.dead_letter is not None:
            letter = outcome.dead_letter
            try:
                await self._send_dead_letter(key=letter.key, value=letter.value, headers=letter.headers())
            except ProducerSendError as exc:  # e.g. too large even for the dead-letter topic: keep place, reason
                log.warning(
                    "dead letter for %s[%d]@%d not written whole (%s); written without its value",
                    letter.source_topic,
                    letter.source_partition,
                    letter.source_offset,
                    type(exc).__name__,
                )
                letter = letter.without_value(f"{type(exc).__name__}: {exc}")
                await self._send_dead_letter(key=letter.key, value=None, headers=letter.headers())
            metrics.DEAD_LETTERS.labels(letter.source_topic, letter.error_class).inc()
        return sent
