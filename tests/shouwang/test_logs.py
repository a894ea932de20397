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
        "alert al_1 raised: notified", "al_1", "SZ-1", "INFO")
    assert line["ts"].endswith("+00:00")


def test_settings_choose_the_format_and_the_admin_token_is_not_in_the_config() -> None:
    settings = Settings(log_format="json", admin_token="sk-never-log-me")
    config = logging_config(settings)
    assert config["formatters"]["default"]["()"] is JsonFormatter
    assert "sk-never-log-me" not in json.dumps(config, default=str)
