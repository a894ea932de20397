"""Dead letters: the original's place and reason in headers, and a letter whose bytes cannot be kept."""

from __future__ import annotations

from shouwang.deadletter import VALUE_DROPPED, DeadLetter, read_headers


def test_a_letter_without_its_value_still_leads_to_the_original_and_says_why() -> None:
    letter = DeadLetter(
        reason="not JSON",
        error_class="invalid",
        key=b"m1",
        value=b"x" * 10,
        source_topic="t.readings",
        source_partition=3,
        source_offset=42,
    )
    assert VALUE_DROPPED not in read_headers(letter.headers())
    stripped = letter.without_value("MessageSizeTooLargeError: too big")
    headers = read_headers(stripped.headers())
    assert stripped.value is None and stripped.key == b"m1"
    assert headers[VALUE_DROPPED] == "MessageSizeTooLargeError: too big"
    assert (headers["shouwang.reason"], headers["shouwang.source.partition"], headers["shouwang.source.offset"]) == (
        "not JSON",
        "3",
        "42",
    )
