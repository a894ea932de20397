"""Logging for every process: plain text, or one JSON object per line for log shippers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from shouwang.settings import Settings

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", …extra}``; extras such as ``meter_id`` and
    ``alert_id`` (passed with ``extra=``) become fields for correlation."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RepeatFilter(logging.Filter):
    """Lets the same message (logger, level, text before its first digit) through once per
    ``window_s``, then says how many were held back. A broker that is down makes Kafka clients log
    the same error about a hundred times a second; an operator needs to see it, not drown in it."""

    def __init__(self, window_s: float = 30.0) -> None:
        super().__init__()
        self.window_s = window_s
        self._last: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        text = str(record.msg)
        key = (record.name, record.levelno, text[: next((i for i, c in enumerate(text) if c.isdigit()), 80)])
        shown_at, held = self._last.get(key, (-self.window_s, 0))
        if record.created - shown_at < self.window_s:
            self._last[key] = (shown_at, held + 1)
            return False
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {record.created - shown_at:.0f} s)"
        self._last[key] = (record.created, 0)
        if len(self._last) > 10_000:  # many distinct messages: forget the oldest half
            for stale in sorted(self._last, key=lambda k: self._last[k][0])[:5_000]:
                del self._last[stale]
        return True


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict (also handed to Faust's worker)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if settings.log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"repeats": {"()": RepeatFilter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
                "filters": ["repeats"],
            }
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {"kafka": {"level": "WARNING"}, "aiokafka": {"level": "WARNING"}},
    }


def configure_logging(settings: Settings) -> None:
    import logging.config

    logging.config.dictConfig(logging_config(settings))
