"""``python tests/integration/stalled_alerts.py TOPIC ARGS…`` runs ``python -m cli ARGS…``
with one fault injected: nothing sent to ``TOPIC`` is ever delivered (the producer's future never
completes), as if each such record were still in the producer's buffer when the process dies.
Everything else (the broker, Faust, the other topics) is real."""

from __future__ import annotations

import asyncio
import runpy
import sys
from typing import Any

from faust.transport.drivers import aiokafka as driver

STALLED = sys.argv[1]
_send = driver.Producer.send


async def _send_unless_stalled(self: driver.Producer, topic: str, *args: Any, **kwargs: Any) -> Any:
    if topic == STALLED:
        return asyncio.get_running_loop().create_future()
    return await _send(self, topic, *args, **kwargs)


driver.Producer.send = _send_unless_stalled  # type: ignore[method-assign]
sys.argv = [sys.argv[0], *sys.argv[2:]]
runpy.run_module("cli", run_name="__main__", alter_sys=True)
