from __future__ import annotations

import pytest
from pydantic import ValidationError

from shouwang.settings import Settings


def test_embedded_broker_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOUWANG_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("SHOUWANG_BROKER_PORT", "29092")
    settings = Settings()
    assert settings.uses_embedded_broker
    assert settings.bootstrap_servers == "127.0.0.1:29092"


def test_external_cluster_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOUWANG_KAFKA_BOOTSTRAP", " kafka-1:9092, kafka-2:9092 ")
    settings = Settings()
    assert not settings.uses_embedded_broker
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.faust_broker_url == "kafka://kafka-1:9092;kafka://kafka-2:9092"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SHOUWANG_KAFKA_BOOTSTRAP", "kafka-1"),
        ("SHOUWANG_BROKER_PORT", "80"),
        ("SHOUWANG_READINGS_PARTITIONS", "0"),
        ("SHOUWANG_LOG_FORMAT", "xml"),
        ("SHOUWANG_TOPIC_PREFIX", "bad prefix"),
        ("SHOUWANG_WORKER_STORE", "redis://x"),
    ],
)
def test_bad_setting_is_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_admin_token_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOUWANG_ADMIN_TOKEN", "sk-very-secret-0123456789abcdef-0123")
    settings = Settings()
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.model_dump())
