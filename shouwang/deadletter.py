"""Dead letters: a rejected message keeps its original key and bytes; why it was rejected and
where it came from travel in headers (the convention Kafka Connect's error topics use)."""

from __future__ import annotations

from dataclasses import dataclass, replace

REASON = "shouwang.reason"
ERROR_CLASS = "shouwang.error.class"
SOURCE_TOPIC = "shouwang.source.topic"
SOURCE_PARTITION = "shouwang.source.partition"
SOURCE_OFFSET = "shouwang.source.offset"
VALUE_DROPPED = "shouwang.value.dropped"

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

    value_dropped: str | None = None  # why the original bytes could not be kept, if they could not

    def headers(self) -> list[tuple[str, bytes]]:
        reason = self.reason.encode("utf-8")[:_MAX_REASON_BYTES]
        headers = [
            (REASON, reason),
            (ERROR_CLASS, self.error_class.encode()),
            (SOURCE_TOPIC, self.source_topic.encode()),
            (SOURCE_PARTITION, str(self.source_partition).encode()),
            (SOURCE_OFFSET, str(self.source_offset).encode()),
        ]
        if self.value_dropped is not None:
            headers.append((VALUE_DROPPED, self.value_dropped.encode("utf-8")[:_MAX_REASON_BYTES]))
        return headers

    def without_value(self, why: str) -> DeadLetter:
        """The same letter without the original bytes (which could not be written), saying why:
        its source topic, partition and offset still lead to the original."""
        return replace(self, value=None, value_dropped=why)


def read_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers of a dead-letter record as text (for the CLI and tests)."""
    return {key: value.decode("utf-8", "replace") for key, value in (headers or [])}
