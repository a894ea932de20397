"""The status words have one home (alerts/statuses.py); what repeats them elsewhere must agree."""

from __future__ import annotations

import json
from typing import get_args

from alerts import metrics
from alerts.policy import ALL_KINDS, SEVERITIES
from alerts.statuses import PERSON_OUTCOMES, AlertStatus, AttemptOutcome, Outcome
from api import schemas
from shouwang.events import AlertKind, Severity


def test_the_api_offers_exactly_the_outcomes_a_person_may_choose() -> None:
    assert set(get_args(schemas.Outcome)) == {outcome.value for outcome in PERSON_OUTCOMES}
    assert Outcome.CONDITION_CLEARED not in PERSON_OUTCOMES


def test_the_api_kinds_and_severities_are_the_events_ones() -> None:
    assert set(get_args(schemas.Kind)) == {kind.value for kind in AlertKind} == ALL_KINDS
    assert list(get_args(schemas.Severity)) == [severity.value for severity in Severity] == list(SEVERITIES)


def test_members_are_their_strings_in_comparisons_sets_and_json() -> None:
    assert AlertStatus.RESOLVED == "resolved" and json.dumps(AlertStatus.RESOLVED) == '"resolved"'
    assert "no_usage" in ALL_KINDS and "info" in SEVERITIES  # plain strings from the database match


def test_every_attempt_outcome_has_a_metric_series() -> None:
    assert set(metrics.DELIVERY_OUTCOMES) == set(AttemptOutcome)
