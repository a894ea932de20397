"""`promtool check metrics` accepts what the worker and the router expose, names and all."""

from __future__ import annotations

import pytest

from tests.kafka_helpers import wait_http
from tests.ops.conftest import Stack, promtool

pytestmark = pytest.mark.kafka


def test_every_endpoint_passes_promtool_lint(stack: Stack) -> None:
    for url in (stack.worker_metrics, stack.router_metrics):
        body = wait_http(url)
        assert b"shouwang_" in body
        result = promtool("check", "metrics", stdin=body)
        assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
            f"{url}:\n{result.stdout}{result.stderr}")
