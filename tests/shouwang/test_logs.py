"""JSON log lines carry the ids that correlate one alert across processes, and never a secret."""

from __future__ import annotations

import io
import json
import logging

from shouwang.logs import JsonFormatter, logging_config
from shouwang.settings import Settings


def test_json_lines_carry_correlation_ids() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.correlation")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("alert %s raised: %s", "al_1", "notified", extra={"alert_id": "al_1", "meter_id": "SZ-1"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert (line["msg"], line["alert_id"], line["meter_id"], line["level"]) == (
        "alert al_1 raised: notified",
        "al_1",
        "SZ-1",
        "INFO",
    )
    assert line["ts"].endswith("+00:00")


def test_settings_choose_the_format_and_the_admin_token_is_not_in_the_config() -> None:
    settings = Settings(log_format="json", admin_token="sk-never-log-me-0123456789abcdef-0123456789")
    config = logging_config(settings)
    assert config["formatters"]["default"]["()"] is JsonFormatter
    assert "sk-never-log-me" not in json.dumps(config, default=str)


def test_a_repeated_error_is_shown_once_per_window_then_counted() -> None:
    from shouwang.logs import RepeatFilter

    repeats = RepeatFilter(window_s=30.0)

    def record(at: float, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
        made = logging.LogRecord("aiokafka", level, __file__, 1, msg, args, None)
        made.created = at
        return made

    shown = [
        r
        for r in (record(1000.0 + i * 0.01, "Unable connect to node with id %s", 1) for i in range(100))
        if repeats.filter(r)
    ]
    assert len(shown) == 1
    later = record(1031.0, "Unable connect to node with id %s", 1)
    assert repeats.filter(later) and "(99 more like this in the last 31 s)" in later.getMessage()
    assert repeats.filter(record(1031.5, "Group Coordinator Request failed"))  # another message passes
    assert all(repeats.filter(record(1031.6 + i, "fetched %s", i, level=logging.INFO)) for i in range(5))
