"""Faust's producer with the delivery guarantees of every Shouwang producer (``shouwang.durability``):
``acks=all`` and idempotence.

faust-streaming makes its aiokafka producer idempotent only inside a transaction (``Producer._settings_extra``
answers ``{"acks": "all", "enable_idempotence": True}`` with exactly-once processing, nothing otherwise), and
the worker processes at least once. Without idempotence, a changelog or alert record whose acknowledgement is
lost when a partition leader dies is written twice, and a retry may land after the next record; with it the
broker drops the repeat and keeps the order. ``_settings_extra`` is merged last into the options of every
producer Faust makes (its own and the threaded one's ``_new_producer``), so one replacement covers both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import Producer

from shouwang.durability import DELIVERY

_applied = False


def _settings_extra(self: Producer) -> Mapping[str, Any]:
    return dict(DELIVERY)


def apply() -> None:
    """Install the fix (once). ``streams.faust_compat.apply_fixes`` checks Faust's version first."""
    global _applied
    if _applied:
        return
    Producer._settings_extra = _settings_extra  # type: ignore[method-assign]
    _applied = True
