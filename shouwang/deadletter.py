"""Dead letters: a rejected message keeps its original key and bytes; why it was rejected and
where it came from travel in headers (the convention Kafka Connect's error topics use)."""

from __future__ import annotations

from dataclasses import dataclass

REASON = "shouwang.reason"
ERROR_CLASS = "shouwang.error.class"
SOURCE_TOPIC = "shouwang.source.topic"
SOURCE_PARTITION = "shouwang.source.partition"
SOURCE_OFFSET = "shouwang.source.offset"

_MAX_REASON_BYTES = 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be processed, with the reason in one line."""

    reason: str
    error_class: str  # "invalid" (the message is wrong) or "internal" (we failed on it)
    key: bytes | None
    value: bytes | None
    source_topic: str
    source_partition: int
    source_offset: int

    def headers(self) -> list[tuple[str, bytes]]:
        reason = self.reason.encode("utf-8")[:_MAX_REASON_BYTES]
        return [
            (REASON, reason),
            (ERROR_CLASS, self.error_class.encode()),
            (SOURCE_TOPIC, self.source_topic.encode()),
            (SOURCE_PARTITION, str(self.source_partition).encode()),
            (SOURCE_OFFSET, str(self.source_offset).encode()),
        ]


def read_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers of a dead-letter record as text (for the CLI and tests)."""
    return {key: value.decode("utf-8", "replace") for key, value in (headers or [])}
