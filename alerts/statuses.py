"""The states an alert, a delivery and a webhook endpoint can be in, and how a person closes an
alert: one home for these words, used by the store, the router, the dispatcher and the API.

They are ``StrEnum``s, so a member equals its string: the database columns keep plain strings and
the JSON payloads keep their documented values.
"""

from __future__ import annotations

from enum import StrEnum


class AlertStatus(StrEnum):
    CHECKING = "checking"  # the resident is being asked first; carers not told yet
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Outcome(StrEnum):
    """How an alert ended. People choose one of ``PERSON_OUTCOMES``; the detector clears the rest."""

    FALSE_ALARM = "false_alarm"
    RESIDENT_FINE = "resident_fine"
    HELP_GIVEN = "help_given"
    EMERGENCY = "emergency"
    CONDITION_CLEARED = "condition_cleared"  # the detector saw the condition end


PERSON_OUTCOMES = (Outcome.FALSE_ALARM, Outcome.RESIDENT_FINE, Outcome.HELP_GIVEN, Outcome.EMERGENCY)


class CheckIn(StrEnum):
    """How asking the resident first went (``Alert.check_in``)."""

    ASKED = "asked"  # waiting for an answer
    FINE = "fine"  # "我很好": closed as resident_fine, carers told only if the silence reaches 24 h
    AWAY = "away"  # "我不在家": away mode set by the resident
    UNANSWERED = "unanswered"  # no answer in time: carers told
    FAILED = "failed"  # the resident's channel failed for good: carers at the alarm limit, as without one
    FINE_BUT_SILENT = "fine_silent"  # answered fine, but 24 h without water: carers told, critical


FEEDBACK_OUTCOMES = (Outcome.FALSE_ALARM, Outcome.RESIDENT_FINE)  # verdicts the detector learns from


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or being sent under a lease)
    DELIVERED = "delivered"
    DEAD = "dead"  # the last attempt failed, the receiver refused it, or its endpoint was disabled


class EndpointStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"  # the receiver answered 410 Gone


class AttemptOutcome(StrEnum):
    """What one HTTP attempt means for its delivery."""

    DELIVERED = "delivered"
    RETRY = "retry"  # try again later (timeouts, 5xx, 429, network errors)
    REJECT = "reject"  # the receiver refused it for good (other 4xx): dead at once
    DISABLE = "disable"  # 410 Gone: the endpoint is disabled
