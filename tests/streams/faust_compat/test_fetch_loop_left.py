"""The fetch-loop fix fetches again what it left of a batch: the scenarios of ``test_fetch_loop.py`` (its harness:
Faust's real fetch loop, the partition as the Kafka client serves it) where a seek leaves the partition where it
is, past the batch, while the loop is between records (``Unmoved``)."""

from __future__ import annotations

from typing import get_args

import pytest
from faust.transport.consumer import Consumer

from streams.faust_compat import fetch_loop
from tests.streams.faust_compat.test_fetch_loop import COMMITTED, LONG_END, YIELD_EVERY, Unmoved, run_scenario


@pytest.mark.parametrize("moment", get_args(Unmoved))
def test_fixed_loop_fetches_again_what_it_left_of_a_partition_the_seek_did_not_move(moment: Unmoved) -> None:
    """A seek while the loop is between records (100 of 150 handed over) that leaves the partition where
    it is, past the batch: the fixed loop leaves the rest of the batch (118-167), then seeks the partition
    back to 118 and hands the rest over, each reading once."""
    outcome = run_scenario("fixed", moment)
    assert outcome.fetches == [list(range(COMMITTED, LONG_END)), list(range(COMMITTED + YIELD_EVERY, LONG_END))]
    assert outcome.handed_over == list(range(COMMITTED, LONG_END))


async def _left_where_it_is(consumer: Consumer, batch: object) -> None:
    """The fixed loop as it was before it fetched again what it left of a batch."""


@pytest.mark.parametrize("moment", get_args(Unmoved))
def test_fix_without_fetching_again_what_it_left_loses_the_rest_of_the_batch(
    moment: Unmoved, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loss the fault run found (bench/chaos.py, docs/RELIABILITY.md): the loop left the rest of a batch
    at a seek of another partition, the next fetch started after the batch, and 118-167 were never handed
    over (in the worker, the loop's gap logic then counted them acked and the group committed past them).
    Faust's loop as shipped hands them over: it does not leave a batch at a seek."""
    monkeypatch.setattr(fetch_loop, "_fetch_left_again", _left_where_it_is)
    outcome = run_scenario("fixed", moment)
    assert Consumer._drain_messages is fetch_loop._drain_messages
    assert outcome.fetches == [list(range(COMMITTED, LONG_END))]
    assert outcome.handed_over == list(range(COMMITTED, COMMITTED + YIELD_EVERY))
    upstream = run_scenario("upstream", moment)
    assert upstream.handed_over == list(range(COMMITTED, LONG_END))
