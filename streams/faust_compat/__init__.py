"""Everything that reaches into Faust's internals lives in this folder, written for one exact
faust-streaming version (``FAUST_VERSION``, pinned in pyproject.toml). On any other version the worker
refuses to start (``check_version``) rather than run with fixes that silently do nothing.

- ``fetch_loop``: the consumer's fetch loop, patched so that readings fetched around a seek are not skipped;
- ``memory_store``: the meter-state table's memory store, which reads its changelog back itself;
- ``table_writes``: a table's store, changelog and producer flush, as ``streams.state_writes`` writes them;
- ``offsets``: the offsets Faust's consumer committed (for the lag gauge);
- ``producer``: Faust's producer with ``acks=all`` and idempotence, as every Shouwang producer;
- ``recovery_seek``: the recovery's seek of standby partitions an assignment added while it ran (no crash).

tests/streams/faust_compat/test_upstream_unchanged.py holds the hash of every upstream function
these rely on: a new Faust version fails there, naming the function to re-check.
"""

from __future__ import annotations

import faust

FAUST_VERSION = "0.15.3"


class FaustVersionError(RuntimeError):
    """The installed faust-streaming is not the version these fixes were written for."""


def check_version(installed: str | None = None) -> None:
    """Raise ``FaustVersionError`` (one line, for the user) unless Faust is ``FAUST_VERSION``."""
    installed = faust.__version__ if installed is None else installed
    if installed != FAUST_VERSION:
        raise FaustVersionError(
            f"faust-streaming {installed} is installed, but the worker's fixes to Faust's internals are "
            f"written for {FAUST_VERSION} exactly (streams/faust_compat/); install faust-streaming=={FAUST_VERSION}"
        )


def apply_fixes() -> None:
    """Check the version, then install the fixes and name the memory store for Faust (idempotent)."""
    from streams.faust_compat import fetch_loop, memory_store, producer, recovery_seek

    check_version()
    fetch_loop.apply()
    memory_store.register()
    producer.apply()
    recovery_seek.apply()
