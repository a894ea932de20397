"""The worker process around the Faust app (no broker needed: nothing here starts it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from shouwang.settings import Settings
from streams.app import create_worker


@pytest.fixture
def saved_root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.mark.parametrize("level", ["WARNING", "INFO"])
def test_worker_logs_at_the_configured_level(tmp_path: Path, level: str, saved_root_logger: logging.Logger) -> None:
    # Faust's spinner used to put the root logger at DEBUG, so every debug call on the per-message
    # path built a record that the handler then dropped.
    worker = create_worker(Settings(var_dir=tmp_path, log_level=level))
    worker._setup_logging()
    assert saved_root_logger.level == logging.getLevelName(level)
    assert not logging.getLogger("faust.topics").isEnabledFor(logging.DEBUG)
