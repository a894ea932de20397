"""What Shouwang asks of Kafka so that an acknowledged record is not lost: one home for the rules
that the producers, the topic provisioning and the local cluster share (docs/RELIABILITY.md).

- Every producer waits for all in-sync replicas (``acks=all``) and is idempotent: a send that is
  retried after a leader change or a lost answer is written once, in order, per partition.
- A topic has up to three replicas, one per broker, and ``min.insync.replicas`` is a majority of
  them from three on: an acknowledged record is on at least two brokers, so losing any one broker
  loses nothing, and one broker down never stops writes; two down, writes wait (or fail) rather than
  being acknowledged by a single copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # aiokafka is imported where a producer is made: the CLI's broker commands need none
    from aiokafka import AIOKafkaProducer

# Options of every producer (aiokafka and kafka-python spell them alike).
DELIVERY: dict[str, Any] = {"acks": "all", "enable_idempotence": True}

MAX_REPLICATION = 3  # three copies: one broker may be lost, a second may be down for maintenance


def durable_producer(bootstrap_servers: str, *, client_id: str, **options: Any) -> AIOKafkaProducer:
    """An aiokafka producer with ``DELIVERY``'s guarantees (not to be overridden by ``options``)."""
    from aiokafka import AIOKafkaProducer

    clash = sorted(set(options) & set(DELIVERY))
    if clash:
        raise ValueError(f"{', '.join(clash)} are fixed for every producer (shouwang/durability.py)")
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, client_id=client_id, **options, **DELIVERY)


def replication_for(brokers: int) -> int:
    """The replication factor of a new topic on a cluster of ``brokers`` live brokers."""
    return max(1, min(MAX_REPLICATION, brokers))


def min_insync_replicas(replication: int) -> int:
    """``min.insync.replicas`` for ``replication`` copies: a majority from three on, 1 below (with two
    copies a majority is both, and one broker down would stop every write)."""
    return replication // 2 + 1 if replication >= 3 else 1
