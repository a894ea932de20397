"""The health answers every Shouwang process gives, in the API's shape (``api.schemas.Health``):
``/healthz`` says the process runs, ``/readyz`` whether it can do its work, each check named with
``"ok"`` or the reason it is not. The worker and the router build theirs from these, so an operator
(or a probe) reads the three processes alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OK = "ok"


def alive() -> dict[str, Any]:
    """``/healthz``'s body: answered at all, the process runs."""
    return {"status": "ok", "checks": {}}


def readiness(checks: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """``/readyz``'s status code and body: 200 when every check is ``"ok"``, else 503; every check is
    listed either way, so a 503 names what is not ready beside what is."""
    ready = all(state == OK for state in checks.values())
    return (200 if ready else 503), {"status": "ready" if ready else "not ready", "checks": dict(checks)}
