"""`promtool check metrics` accepts what the worker and the router expose, names and all; the worker's port
serves nothing else (Faust's own /table pages would hand out any meter's stored routine without a key)."""

from __future__ import annotations

import urllib.error
import urllib.request

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
    # Reached here, the worker is up: its other Faust pages must not exist.
    base = stack.worker_metrics.rsplit("/metrics", 1)[0]
    for path in ("/table/", "/table/meter-state/", "/router/"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + path, timeout=5)
        assert refused.value.code == 404, path
