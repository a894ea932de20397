"""`promtool check metrics` accepts what the worker and the router expose, names and all."""

from __future__ import annotations

import pytest

from tests.ops.conftest import Stack, fetch, promtool

pytestmark = pytest.mark.kafka


def test_every_endpoint_passes_promtool_lint(stack: Stack) -> None:
    endpoints = ((stack.worker_metrics, None), (stack.router_metrics, None), (stack.api_metrics, stack.api_token))
    for url, token in endpoints:
        body = fetch(url, token)
        assert b"shouwang_" in body
        result = promtool("check", "metrics", stdin=body)
        assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
            f"{url}:\n{result.stdout}{result.stderr}"
        )
