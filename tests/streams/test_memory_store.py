"""The meter-state table's memory store reads its changelog back itself, on the real broker: the
latest value of each key of the partitions it is given (tombstones delete), nothing of the others
or of standbys, its persisted offset is the last record it applied (then the worker's own last
write), and a revoked partition's states go with it. The whole worker recovering through it:
tests/integration/test_worker_state.py and test_kill_mid_stream.py (memory store)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition as KafkaTP
from faust.events import Event
from faust.types import TP
from faust.types.tuples import Message
from kafka import KafkaProducer

from detectors import DetectorBank, Observation
from shouwang.settings import Settings
from streams.app import create_app
from streams.faust_compat import memory_store
from streams.faust_compat.memory_store import ChangelogReadingStore, _bootstrap, read_partitions
from streams.faust_compat.table_writes import TableChangelog, in_partition
from streams.topic_provisioning import changelog, provision_topics

pytestmark = pytest.mark.kafka


def _write(settings: Settings, topic: str, records: list[tuple[int, bytes, bytes | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    for partition, key, value in records:
        producer.send(topic, key=key, value=value, partition=partition)
    producer.flush(timeout=30)
    producer.close()


@pytest.fixture
def meter_state(kafka_settings: Settings) -> Iterator[tuple[ChangelogReadingStore, str]]:
    """The worker app's meter-state store (the app not started) and its changelog topic, written:
    partition 0 holds two values of m-a; partition 1 m-b and m-c, then a tombstone for m-c;
    partition 2 m-d."""
    provision_topics(kafka_settings)
    topic = changelog(kafka_settings, "meter-state")
    _write(
        kafka_settings,
        topic,
        [
            (0, b"m-a", b"a1"),
            (0, b"m-a", b"a2"),
            (1, b"m-b", b"b1"),
            (1, b"m-c", b"c1"),
            (1, b"m-c", None),
            (2, b"m-d", b"d1"),
        ],
    )
    store = create_app(kafka_settings).tables["meter-state"].data
    assert isinstance(store, ChangelogReadingStore)
    yield store, topic


def _rebalance(store: ChangelogReadingStore, assigned: set[TP], revoked: set[TP] = frozenset()) -> None:
    asyncio.run(store.on_rebalance(set(assigned), set(revoked), set(assigned), store.app.consumer_generation_id))


def test_a_new_partition_is_read_back_to_each_keys_latest_value(meter_state: tuple[ChangelogReadingStore, str]) -> None:
    store, topic = meter_state
    _rebalance(store, {TP(topic, 0), TP(topic, 1)})
    assert dict(store.data) == {b"m-a": b"a2", b"m-b": b"b1"}  # m-c deleted; m-d's partition not given
    assert store.persisted_offset(TP(topic, 0)) == 1 and store.persisted_offset(TP(topic, 1)) == 2
    assert store.persisted_offset(TP(topic, 2)) is None  # Faust's recovery reads it from the start


def _write_as_worker(store: ChangelogReadingStore, partition: int, key: bytes, value: bytes) -> None:
    """A state written as ``StateWriter`` writes it: into the store, under an event of its partition."""

    def write() -> None:
        with in_partition(partition):  # the stand-in the writer uses for a held state's record
            store[key] = value

    contextvars.copy_context().run(write)


def test_a_revoked_partition_takes_its_states_and_offset_with_it(
    meter_state: tuple[ChangelogReadingStore, str], kafka_settings: Settings
) -> None:
    store, topic = meter_state
    _rebalance(store, {TP(topic, 0), TP(topic, 1)})
    _write_as_worker(store, 0, b"m-a", b"a3")  # this worker's own writes: a newer state, a new meter
    _write_as_worker(store, 1, b"m-new", b"n1")
    _write(kafka_settings, topic, [(0, b"m-a", b"a3"), (1, b"m-new", b"n1")])
    store.set_persisted_offset(TP(topic, 0), 2)  # as its changelog write is delivered
    _rebalance(store, {TP(topic, 0)}, revoked={TP(topic, 1)})
    assert dict(store.data) == {b"m-a": b"a3"}  # partition 1 gone, the meter written here with it
    assert store.persisted_offset(TP(topic, 0)) == 2 and store.persisted_offset(TP(topic, 1)) is None
    _rebalance(store, {TP(topic, 0), TP(topic, 1)})  # assigned again: read again in full
    assert dict(store.data) == {b"m-a": b"a3", b"m-b": b"b1", b"m-new": b"n1"}
    assert store.persisted_offset(TP(topic, 1)) == 3


def test_a_worker_that_rejoins_after_a_pause_reads_what_another_wrote_meanwhile(
    meter_state: tuple[ChangelogReadingStore, str], kafka_settings: Settings
) -> None:
    """Found by the fault run (bench/chaos.py): a worker stopped past its session lost its partitions to the
    other worker, which moved their meters on; woken, it wrote its own states after the other's and, given the
    partitions back, kept its stale states, its offset past the other's writes. Those meters lost the readings
    the other worker had applied, and a false meter_offline told the gap."""
    store, topic = meter_state
    _rebalance(store, {TP(topic, 0)})  # read back to offset 1: m-a is a2
    _write(kafka_settings, topic, [(0, b"m-a", b"a3")])  # offset 2: the other worker, while this one slept
    _write_as_worker(store, 0, b"m-x", b"x1")  # this one wakes and writes: offset 3
    _write(kafka_settings, topic, [(0, b"m-x", b"x1")])
    store.set_persisted_offset(TP(topic, 0), 3)
    # Complete only up to the other worker's write: Faust's recovery at the rejoin reads from there.
    assert store.persisted_offset(TP(topic, 0)) == 1


def _changelog_event(
    store: ChangelogReadingStore, topic: str, partition: int, offset: int, key: bytes, value: bytes
) -> Event:
    """A changelog record as Faust's recovery hands it to the store."""
    message = Message(topic, partition, offset, 0.0, 0, None, key, value, None, tp=TP(topic, partition))
    return Event(store.app, key, value, None, message)


def test_a_standby_batch_applied_after_the_read_back_does_not_bring_older_states_back(
    meter_state: tuple[ChangelogReadingStore, str],
) -> None:
    """Found by the fault run: Faust's recovery of partitions that were standbys here, cut short by the next
    rebalance, applied a batch it had fetched after this store read the same partition, now active, back: meters
    went back to older states, and the readings in between were lost to them."""
    store, topic = meter_state
    _rebalance(store, {TP(topic, 0)})  # read back to offset 1: m-a is a2
    same = {"to_key": lambda key: key, "to_value": lambda value: value}
    store.apply_changelog_batch([_changelog_event(store, topic, 0, 0, b"m-a", b"a1")], **same)
    assert store.data[b"m-a"] == b"a2"
    store.apply_changelog_batch([_changelog_event(store, topic, 0, 2, b"m-a", b"a3")], **same)  # newer: applied
    assert store.data[b"m-a"] == b"a3"
    store.apply_changelog_batch([_changelog_event(store, topic, 3, 0, b"m-s", b"s1")], **same)  # not read here
    assert store.data[b"m-s"] == b"s1"


def test_a_partition_kept_as_a_standby_only_is_read_again_when_active_again(
    meter_state: tuple[ChangelogReadingStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, topic = meter_state
    both = {TP(topic, 0), TP(topic, 1)}
    _rebalance(store, both)
    monkeypatch.setattr(store.app.assignor, "assigned_standbys", lambda: {TP(topic, 1)})
    _rebalance(store, both)  # partition 1 now a standby here: not revoked, but no longer this store's to keep
    asyncio.run(store.on_recovery_completed({TP(topic, 0)}, {TP(topic, 1)}))  # Faust drops non-active states
    assert store.persisted_offset(TP(topic, 1)) is None
    monkeypatch.setattr(store.app.assignor, "assigned_standbys", set)
    _rebalance(store, both)
    assert dict(store.data) == {b"m-a": b"a2", b"m-b": b"b1"} and store.persisted_offset(TP(topic, 1)) == 2


def test_an_older_recovery_ending_keeps_what_was_read(meter_state: tuple[ChangelogReadingStore, str]) -> None:
    store, topic = meter_state
    _rebalance(store, {TP(topic, 0), TP(topic, 1)})
    asyncio.run(store.on_recovery_completed({TP(topic, 0)}, set()))  # the end of a recovery of an older assignment
    assert dict(store.data) == {b"m-a": b"a2", b"m-b": b"b1"}


def test_an_empty_partition_is_complete_at_its_end(meter_state: tuple[ChangelogReadingStore, str]) -> None:
    store, topic = meter_state
    _rebalance(store, {TP(topic, 3)})
    assert store.persisted_offset(TP(topic, 3)) == -1  # Faust's "nothing read yet", with nothing to read


def test_a_read_out_of_time_leaves_the_partition_to_faust(
    meter_state: tuple[ChangelogReadingStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, topic = meter_state
    monkeypatch.setattr(memory_store, "READ_SHARE_OF_SESSION", 0.0)
    _rebalance(store, {TP(topic, 0)})
    assert dict(store.data) == {} and store.persisted_offset(TP(topic, 0)) is None


def test_the_read_takes_at_most_half_the_session_timeout(
    meter_state: tuple[ChangelogReadingStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = meter_state
    budgets: list[float] = []

    async def read(bootstrap: str, starts: object, apply: object, *, timeout: float, go_on: object) -> dict:
        budgets.append(timeout)
        return {}

    monkeypatch.setattr(memory_store, "read_partitions", read)
    _rebalance(store, {TP(store.table.changelog_topic.get_topic_name(), 0)})
    assert budgets == [store.app.conf.broker_session_timeout / 2] == [5.0]


def test_standby_partitions_and_other_topics_are_left_to_faust(
    meter_state: tuple[ChangelogReadingStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, topic = meter_state
    monkeypatch.setattr(store.app.assignor, "assigned_standbys", lambda: {TP(topic, 1)})
    _rebalance(store, {TP(topic, 0), TP(topic, 1), TP("readings", 0)})
    assert dict(store.data) == {b"m-a": b"a2"} and store.persisted_offset(TP(topic, 1)) is None


def test_reading_starts_at_the_given_offset_and_passes_empty_partitions(kafka_settings: Settings) -> None:
    provision_topics(kafka_settings)
    topic = changelog(kafka_settings, "meter-state")
    _write(kafka_settings, topic, [(3, f"k{i}".encode(), b"v") for i in range(5)])
    batches: list[list[int]] = []
    starts: dict[KafkaTP, int | None] = {KafkaTP(topic, 3): 2, KafkaTP(topic, 0): None}
    ends = asyncio.run(
        read_partitions(
            kafka_settings.bootstrap_servers,
            starts,
            lambda tp, records: batches.append([r.offset for r in records]),
            timeout=60,
        )
    )
    assert [offset for batch in batches for offset in batch] == [2, 3, 4]
    assert ends == {KafkaTP(topic, 3): 5, KafkaTP(topic, 0): 0}


def test_reading_stops_when_told_to(kafka_settings: Settings) -> None:
    provision_topics(kafka_settings)
    topic = changelog(kafka_settings, "meter-state")
    _write(kafka_settings, topic, [(0, b"k", b"v")])
    ends = asyncio.run(
        read_partitions(
            kafka_settings.bootstrap_servers,
            {KafkaTP(topic, 0): None},
            lambda tp, records: None,
            timeout=60,
            go_on=lambda: False,
        )
    )
    assert ends == {}


def test_faust_broker_urls_become_a_bootstrap_list() -> None:
    assert _bootstrap(["kafka://10.0.0.1:9092", "kafka://b:9093"]) == "10.0.0.1:9092,b:9093"


def test_only_the_memory_store_reads_back_itself(kafka_settings: Settings) -> None:
    rocks = kafka_settings.model_copy(update={"worker_store": "rocksdb://"})
    assert not isinstance(create_app(rocks).tables["meter-state"].data, ChangelogReadingStore)
    assert type(create_app(kafka_settings).tables["incident-cells"].data).__name__ == "Store"  # JSON values


def _bank_state(*hours: int) -> bytes:
    """A meter's bank state after hourly readings at these hours of 6 March (its reading time: the last)."""
    bank = DetectorBank()
    for hour in hours:
        bank.update(Observation("m-z", datetime(2026, 3, 6, tzinfo=UTC) + timedelta(hours=hour), 10.0 + hour))
    return bank.dump()


def test_a_stale_state_written_after_a_newer_one_does_not_win_the_recovery(
    meter_state: tuple[ChangelogReadingStore, str], kafka_settings: Settings
) -> None:
    """Found by the fault run (seed 2, docs/RELIABILITY.md): a worker woken after a stop past its session wrote a
    state computed on what it held before the stop, after the newer state the worker that took its partition over
    had written; the recovery at the next generation ended with the stale one, and an upload was lost (each meter
    raised a false meter_offline). The changelog's order of that run, on the real broker: read back and Faust's
    recovery alike keep the state with the later reading."""
    store, topic = meter_state
    assert store.version_of is not None, "the worker gives its meter-state store the states' reading time"
    s19, s01, s07 = _bank_state(0, 1), _bank_state(0, 1, 7), _bank_state(0, 1, 7, 13)
    _write(kafka_settings, topic, [(3, b"m-z", s19)])  # offset 0: this worker, before its stop
    _rebalance(store, {TP(topic, 3)})
    _write(kafka_settings, topic, [(3, b"m-z", s01), (3, b"m-z", s07)])  # 1, 2: the other worker meanwhile
    _write_as_worker(store, 3, b"m-z", s01)  # 3: this one, woken, on the state it held
    _write(kafka_settings, topic, [(3, b"m-z", s01)])
    store.set_persisted_offset(TP(topic, 3), 3)
    assert store.persisted_offset(TP(topic, 3)) == 0  # complete up to the gap: the recovery reads 1, 2, 3

    same = {"to_key": lambda key: key, "to_value": lambda value: value}
    store.apply_changelog_batch(
        [_changelog_event(store, topic, 3, o, b"m-z", v) for o, v in ((1, s01), (2, s07), (3, s01))], **same
    )
    assert store.data[b"m-z"] == s07, "Faust's recovery keeps the later state, not the last record"
    assert store.stale_skipped == 1
    # Compaction may keep only the stale record: the state held is written again by the partition's next write.
    assert TableChangelog(store.app, store.table).take_stale == store.take_stale
    assert store.take_stale(2) == []
    assert store.take_stale(3) == [(b"m-z", s07)]
    assert store.take_stale(3) == [], "once"

    _rebalance(store, set(), revoked={TP(topic, 3)})  # given away, then back: read back in full
    _rebalance(store, {TP(topic, 3)})
    assert store.data[b"m-z"] == s07, "the read back keeps it too"
    s13 = _bank_state(0, 1, 7, 13, 19)
    _write_as_worker(store, 3, b"m-z", s13)  # the worker's own newer write: nothing stale to write again
    assert store.take_stale(3) == []
    _write(kafka_settings, topic, [(3, b"m-z", s13), (3, b"m-z", None)])  # a tombstone still deletes
    _rebalance(store, set(), revoked={TP(topic, 3)})
    _rebalance(store, {TP(topic, 3)})
    assert b"m-z" not in store.data
    assert store.take_stale(3) == [], "a key deleted after a stale record has nothing to write again"
