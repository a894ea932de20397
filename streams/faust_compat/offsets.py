"""The offsets Faust's consumer committed, which it keeps privately (``Consumer._committed_offset``,
set in ``Consumer.__init__`` and updated by ``Consumer._commit_offsets``) with no public accessor."""

from __future__ import annotations

from collections.abc import Mapping

from faust.types import TP


def committed_offsets(consumer: object) -> Mapping[TP, int | None]:
    """Per partition, the offset Faust last committed (None before the group's first commit).
    Empty for a consumer that keeps no such record."""
    committed: Mapping[TP, int | None] = getattr(consumer, "_committed_offset", {})
    return committed
