"""The compact state layout: round trip, clamping of values past float16, refusal of bad blobs."""

from __future__ import annotations

import pytest

from detectors.state import HALF_MAX, StateLayout

LAYOUT = StateLayout(3, "dI", halves=3)


def test_a_round_trip_keeps_scalars_exactly_and_halves_at_float16() -> None:
    scalars, halves = LAYOUT.unpack(LAYOUT.pack((1.5e9 + 0.25, 7), [0.1, 2.0, 1000.0]))
    assert scalars == (1.5e9 + 0.25, 7)
    assert halves == pytest.approx([0.1, 2.0, 1000.0], rel=1e-3)


def test_values_past_float16_are_clamped_not_refused() -> None:
    _, halves = LAYOUT.unpack(LAYOUT.pack((0.0, 0), [1e6, 70000.0, 3.0]))
    assert halves == [HALF_MAX, HALF_MAX, 3.0]


@pytest.mark.parametrize("blob", [b"", b"\x03" + bytes(10), b"\x04" + bytes(LAYOUT.size - 1)])
def test_a_blob_of_the_wrong_size_or_version_is_refused(blob: bytes) -> None:
    with pytest.raises(ValueError):
        LAYOUT.unpack(blob)
