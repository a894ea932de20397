"""Stand-ins for the Kafka side of the worker's agents: a topic's send, a stream's events, and the
meter-state table's changelog. Everything else the agents use in their tests is the real code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from prometheus_client import REGISTRY


@dataclass(frozen=True)
class Sent:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


class FakeTopic:
    """A topic's send (Faust's ``Topic.send``): records each record and returns its delivery, done
    at once unless ``hold`` is set. ``refuse`` makes the next sends raise at once instead."""

    def __init__(self, name: str = "topic") -> None:
        self.name = name
        self.sent: list[Sent] = []
        self.deliveries: list[asyncio.Future[Any]] = []
        self.hold = False
        self.refuse: list[BaseException] = []  # raised by the next sends, one each

    async def send(
        self, *, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[Any]:
        if self.refuse:
            raise self.refuse.pop(0)
        self.sent.append(Sent(key, value, headers))
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self.hold:
            delivery.set_result(SimpleNamespace(offset=len(self.sent) - 1))
        self.deliveries.append(delivery)
        return delivery


class MemoryChangelog:
    """The meter-state table as ``StateWriter`` writes it, kept in a dict: what was written, in order."""

    def __init__(self) -> None:
        self.store: dict[bytes, bytes] = {}
        self.written: list[tuple[bytes, bytes, int]] = []
        self.get: Callable[[bytes], bytes | None] = self.store.get
        self.stale: dict[int, list[tuple[bytes, bytes]]] = {}  # partition -> states to write again, as a store gives

    def take_stale(self, partition: int, /) -> list[tuple[bytes, bytes]]:
        return self.stale.pop(partition, [])

    async def write(self, key: bytes, value: bytes, partition: int, /) -> None:
        self.store[key] = value
        self.written.append((key, value, partition))

    @contextmanager
    def in_partition(self, partition: int, /) -> Iterator[None]:
        yield

    def wrap_flush(self, around: Callable[[Callable[[], Awaitable[None]]], Callable[[], Awaitable[None]]], /) -> None:
        pass


class Worker:
    """The Faust app as the state writer sees it."""

    def __init__(self) -> None:
        self.should_stop = False
        self.crashed: list[BaseException] = []

    async def crash(self, reason: BaseException, /) -> None:
        self.crashed.append(reason)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Event:
    message: Message


async def events(*messages: Message) -> AsyncIterator[Event]:
    """A stream's events (``stream.events()``), one per message."""
    for message in messages:
        yield Event(message)


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """A metric's current value in the process's registry (0 before its first increment)."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def settle() -> None:
    """Let the tasks the code under test started run as far as they can."""
    for _ in range(20):
        await asyncio.sleep(0)
