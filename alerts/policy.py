"""Who is told about what, and who next when nobody acknowledges.

Pure data and functions (no database): the router's stages consult this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from shouwang.events import AlertKind, Severity

SEVERITIES = tuple(severity.value for severity in Severity)  # in rising order
ROLES = ("family", "grid_worker", "supervisor", "operator")  # the roles of escalation chains
# The elder themself: asked first about their own household's silence (a check-in), never told about
# anything else and never part of an escalation chain.
RESIDENT = "resident"
RECIPIENT_ROLES = (RESIDENT, *ROLES)

WATER_KINDS = frozenset({"no_usage", "continuous_flow", "spike"})
OPERATIONS_KINDS = frozenset({"meter_offline", "data_quality"})
COMMUNITY_KINDS = frozenset({"incident", "hotspot"})
ALL_KINDS = frozenset(kind.value for kind in AlertKind)

# What each role may ever receive, whatever it subscribed to. Families hear about their
# elder's water use, never about a flat battery or a meter glitch (those are staff matters).
ROLE_KINDS: Mapping[str, frozenset[str]] = {
    "resident": frozenset({"no_usage"}),
    "family": WATER_KINDS,
    "grid_worker": ALL_KINDS,
    "supervisor": ALL_KINDS,
    "operator": ALL_KINDS,
}

# Kinds that away mode mutes: an empty home explains silence and a changed routine, but a
# leak or a burst in an empty home still matters.
AWAY_MUTED_KINDS = frozenset({"no_usage", "routine_change", "meter_offline"})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``4h``, ``1d`` or plain seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 4h or 1d")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


def parse_ack_timeouts(text: str) -> dict[str, timedelta]:
    """``critical=2h,high=4h`` → {severity: duration}; ValueError naming the bad part."""
    timeouts: dict[str, timedelta] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        severity, _, duration = part.partition("=")
        if severity.strip() not in SEVERITIES:
            raise ValueError(f"staff_ack_timeout: unknown severity {severity.strip()!r}")
        timeouts[severity.strip()] = parse_duration(duration)
    return timeouts


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(minimum)


@dataclass(frozen=True)
class Tier:
    """One step of an escalation chain: who is told, and how long before the next step."""

    roles: frozenset[str]
    wait: timedelta | None  # None: last step


@dataclass(frozen=True)
class EscalationPolicy:
    chains: Mapping[str, Sequence[Tier]]

    def chain(self, severity: str) -> Sequence[Tier]:
        return self.chains.get(severity) or self.chains["info"]

    def roles_for(self, severity: str, kind: str, tier: int) -> frozenset[str]:
        """Roles told at ``tier`` of an alert; operators join tier 0 for operations kinds."""
        chain = self.chain(severity)
        if tier >= len(chain):
            return frozenset()
        roles = chain[tier].roles
        if tier == 0 and kind in OPERATIONS_KINDS:
            roles = roles | {"operator"}
        return frozenset(role for role in roles if kind in ROLE_KINDS[role])

    def wait_after(self, severity: str, tier: int) -> timedelta | None:
        chain = self.chain(severity)
        return chain[tier].wait if tier < len(chain) else None


def _tier(roles: str, wait: str | None = None) -> Tier:
    names = frozenset(part.strip() for part in roles.split("+") if part.strip())
    unknown = names - set(ROLES)
    if not names or unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown) or roles!r}; roles are {', '.join(ROLES)}")
    return Tier(names, parse_duration(wait) if wait is not None else None)


DEFAULT_CHAINS: dict[str, list[list[str]]] = {
    "critical": [["family+grid_worker", "15m"], ["supervisor", "30m"], ["operator"]],
    "high": [["family+grid_worker", "30m"], ["supervisor", "1h"], ["operator"]],
    "medium": [["family+grid_worker", "2h"], ["supervisor"]],
    "low": [["family+grid_worker"]],
    "info": [["grid_worker"]],
}


def parse_policy(text: str | None) -> EscalationPolicy:
    """The escalation policy from JSON (see ``SHOUWANG_ESCALATION``); unset severities keep the
    defaults. Raises ValueError with the offending part."""
    raw: dict[str, list[list[str]]] = dict(DEFAULT_CHAINS)
    if text:
        try:
            given = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"escalation is not JSON: {exc.msg}") from exc
        if not isinstance(given, dict):
            raise ValueError("escalation must be a JSON object of severity → steps")
        for severity, steps in given.items():
            if severity not in SEVERITIES:
                raise ValueError(f"escalation: unknown severity {severity!r}")
            raw[severity] = steps
    chains: dict[str, list[Tier]] = {}
    for severity, steps in raw.items():
        if not isinstance(steps, list) or not steps:
            raise ValueError(f"escalation for {severity}: a non-empty list of steps is required")
        tiers = []
        for index, step in enumerate(steps):
            if not isinstance(step, list) or not 1 <= len(step) <= 2:
                raise ValueError(f"escalation for {severity}, step {index + 1}: use [roles] or [roles, wait]")
            last = index == len(steps) - 1
            if not last and len(step) != 2:
                raise ValueError(f"escalation for {severity}, step {index + 1}: a wait is needed before the next step")
            tiers.append(_tier(str(step[0]), str(step[1]) if len(step) == 2 and not last else None))
        chains[severity] = tiers
    return EscalationPolicy(chains)
