"""The flag every detector emits: the contract of the flags file and the `flags` topic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
#: Detectors whose anomalies belong to a region and can persist across releases (see AlertBook).
REGION_DETECTORS = (
    "out_of_range",
    "falling_turnout",
    "cross_sectional_jump",
    "expected_curve_jump",
    "growth_after_close",
    "national_inconsistency",
)
RELEASE_DETECTORS = ("release_revised", "time_reversal")
OBSERVER_DETECTORS = ("official_above_observed", "protocol_above_tally")
#: Every detector name a flag can carry.
DETECTORS = REGION_DETECTORS + RELEASE_DETECTORS + OBSERVER_DETECTORS


@dataclass(frozen=True)
class Flag:
    """One implausible figure: which region, which release, which rule, and the numbers behind it."""

    election: str
    region: str
    region_code: str
    as_of: str
    detector: str
    severity: Severity
    value: float
    expected: float | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    station: str | None = None  # station-level flags name their polling station

    def to_dict(self) -> dict[str, Any]:
        """The flags-file line (shared/spec/day-format.md), keys in the spec's order."""
        out: dict[str, Any] = {
            "election": self.election,
            "region": self.region,
            "region_code": self.region_code,
            "as_of": self.as_of,
            "detector": self.detector,
            "severity": self.severity,
            "value": self.value,
            "expected": self.expected,
            "message": self.message,
        }
        if self.station is not None:
            out["station"] = self.station
        if self.evidence:
            out["evidence"] = self.evidence
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Flag:
        return cls(
            election=obj["election"],
            region=obj["region"],
            region_code=obj["region_code"],
            as_of=obj["as_of"],
            detector=obj["detector"],
            severity=obj["severity"],
            value=obj["value"],
            expected=obj.get("expected"),
            message=obj["message"],
            evidence=dict(obj.get("evidence") or {}),
            station=obj.get("station"),
        )
