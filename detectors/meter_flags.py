"""The meter's own alarms: many smart meters flag a leak, a burst or tampering themselves.

Stateless: one reading that carries a flag yields one finding, with no history needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.base import Finding, Observation

# flag → (kind, severity, zh, en). Tampering and reverse flow are data-quality matters for
# operators, not alarms for a family.
_FLAG_FINDINGS: dict[str, tuple[str, str, str, str]] = {
    "leak": (
        "continuous_flow",
        "medium",
        "水表自身报告疑似漏水（持续流水）",
        "the meter itself reports a suspected leak (continuous flow)",
    ),
    "burst": ("spike", "high", "水表自身报告爆管或大流量", "the meter itself reports a burst or very high flow"),
    "reverse_flow": ("data_quality", "low", "水表报告倒流", "the meter reports reverse flow"),
    "tamper": (
        "data_quality",
        "low",
        "水表报告被干扰（磁干扰或拆动）",
        "the meter reports tampering (magnetic or mechanical)",
    ),
    "low_battery": ("data_quality", "info", "水表电池电量低", "the meter's battery is low"),
}


@dataclass
class MeterFlagsDetector:
    """Turns status flags reported by the meter into findings, one per flag."""

    name: str = "meter_flags"

    def update(self, observation: Observation) -> list[Finding]:
        findings = []
        for flag in sorted(observation.flags.intersection(_FLAG_FINDINGS)):
            kind, severity, zh, en = _FLAG_FINDINGS[flag]
            findings.append(
                Finding(
                    transition="raised",
                    kind=kind,
                    severity=severity,
                    since=observation.ts,
                    at=observation.ts,
                    explanation_zh=f"{zh}（读数 {observation.register_l:.1f} 升）。",
                    explanation_en=f"{en.capitalize()} (register {observation.register_l:.1f} L).",
                    facts={"flag": flag, "register_l": observation.register_l},
                )
            )
        return findings
