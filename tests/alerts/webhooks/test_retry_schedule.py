from __future__ import annotations

import random

import pytest

from alerts.webhooks import STANDARD_SCHEDULE, next_delay, parse_schedule


def test_standard_schedule_is_the_standard_webhooks_suggestion() -> None:
    assert parse_schedule("5s,5m,30m,2h,5h,10h,14h,20h,24h") == STANDARD_SCHEDULE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5s,5m,30m,2h", (5.0, 300.0, 1800.0, 7200.0)),
        ("5, 300 ,1800", (5.0, 300.0, 1800.0)),
        ("1.5h, 1d, 0", (5400.0, 86400.0, 0.0)),
        ("10S,2M", (10.0, 120.0)),
        ("30 s", (30.0,)),
    ],
)
def test_parse_schedule(text: str, expected: tuple[float, ...]) -> None:
    assert parse_schedule(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("5s,,5m", "entry 2 is empty"),
        ("5s,", "entry 2 is empty"),
        ("5s,-5m", "negative"),
        ("5x", "not a duration"),
        ("soon", "not a duration"),
        ("inf", "not a duration"),
        ("nan", "not a duration"),
        ("5m30s", "not a duration"),
    ],
)
def test_parse_schedule_refuses_junk(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(text)


def test_next_delay_without_jitter_walks_the_schedule_then_gives_up() -> None:
    schedule = (5.0, 300.0, 1800.0)
    assert [next_delay(n, schedule, jitter=0) for n in range(1, 5)] == [5.0, 300.0, 1800.0, None]
    assert next_delay(1, (), jitter=0) is None


def test_next_delay_jitter_is_bounded_and_seeded_rng_is_deterministic() -> None:
    first = [next_delay(n, STANDARD_SCHEDULE, rng=random.Random(42)) for n in range(1, 10)]
    again = [next_delay(n, STANDARD_SCHEDULE, rng=random.Random(42)) for n in range(1, 10)]
    assert first == again
    rng = random.Random(7)
    delays = [next_delay(2, STANDARD_SCHEDULE, jitter=0.1, rng=rng) for _ in range(2000)]
    assert all(d is not None and 270.0 <= d <= 330.0 for d in delays)
    assert len(set(delays)) > 1000  # actually jittered
    assert min(delays) < 275.0 and max(delays) > 325.0  # and the whole band is used


@pytest.mark.parametrize(("attempts", "jitter"), [(0, 0.1), (-1, 0.1), (1, -0.1), (1, 1.0)])
def test_next_delay_refuses_bad_arguments(attempts: int, jitter: float) -> None:
    with pytest.raises(ValueError):
        next_delay(attempts, STANDARD_SCHEDULE, jitter=jitter)
