"""Compact binary state: fixed little-endian layouts with ``struct``, no pickle.

Every detector's state is a version byte, a fixed block of scalars and, for some, an array of
half-precision floats (counts and averages need three significant digits, not eight bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

HALF_MAX = 65504.0


class StateLayout:
    """One detector's state layout: ``scalars`` (a struct format) then ``halves`` float16 values."""

    def __init__(self, version: int, scalars: str, halves: int = 0) -> None:
        self.version = version
        self._scalars = struct.Struct("<B" + scalars)
        self._halves = struct.Struct(f"<{halves}e") if halves else None
        self.size = self._scalars.size + (self._halves.size if self._halves else 0)

    def pack(self, scalars: Sequence[float | int], halves: Sequence[float] = ()) -> bytes:
        head = self._scalars.pack(self.version, *scalars)
        if self._halves is None:
            return head
        try:  # the common case; clamping every value first costs more than the rest of a dump
            return head + self._halves.pack(*halves)
        except OverflowError:
            return head + self._halves.pack(*(min(value, HALF_MAX) for value in halves))

    def unpack(self, data: bytes) -> tuple[tuple[float | int, ...], list[float]]:
        if len(data) != self.size:
            raise ValueError(f"state is {len(data)} bytes; this layout needs {self.size}")
        values = self._scalars.unpack_from(data)
        if values[0] != self.version:
            raise ValueError(f"state version {values[0]}; this detector reads version {self.version}")
        halves = list(self._halves.unpack_from(data, self._scalars.size)) if self._halves else []
        return values[1:], halves
