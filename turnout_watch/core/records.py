"""The typed records every stage shares: a normalised release, a region's update and a flag.

The flag is the contract of the flags file and the `flags` topic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np


@dataclass(frozen=True)
class Release:
    """A CEC release after the edge normalised it: region codes (the national figure under `KZ`).

    The optional context travels with every release so a worker needs no other topic to judge it:
    `timezone` (local hours for expected curves), `polls_open`/`polls_close`, `registered` voters per region code
    (weights of the national figure) and `revision` (0 = as first published).
    """

    election: str
    as_of: datetime
    published_at: datetime
    turnout: Mapping[str, float]
    timezone: str | None = None
    polls_close: datetime | None = None
    polls_open: datetime | None = None
    registered: Mapping[str, int] = field(default_factory=dict)
    revision: int = 0

    @property
    def zone(self) -> tzinfo | None:
        """The zone its local hours are read in: `timezone` when given, else the offset of `as_of`."""
        return ZoneInfo(self.timezone) if self.timezone else self.as_of.tzinfo

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "election": self.election,
            "as_of": self.as_of.isoformat(),
            "published_at": self.published_at.isoformat(),
            "turnout": dict(self.turnout),
        }
        if self.timezone:
            out["timezone"] = self.timezone
        if self.polls_open:
            out["polls_open"] = self.polls_open.isoformat()
        if self.polls_close:
            out["polls_close"] = self.polls_close.isoformat()
        if self.registered:
            out["registered"] = dict(self.registered)
        if self.revision:
            out["revision"] = self.revision
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Release:
        close, opens = obj.get("polls_close"), obj.get("polls_open")
        return cls(
            election=obj["election"],
            as_of=datetime.fromisoformat(obj["as_of"]),
            published_at=datetime.fromisoformat(obj["published_at"]),
            turnout={str(k): float(v) for k, v in obj["turnout"].items()},
            timezone=obj.get("timezone"),
            polls_close=datetime.fromisoformat(close) if close else None,
            polls_open=datetime.fromisoformat(opens) if opens else None,
            registered={str(k): int(v) for k, v in (obj.get("registered") or {}).items()},
            revision=int(obj.get("revision") or 0),
        )


@dataclass(frozen=True)
class RegionUpdate:
    """A region's new figure and how it moved since its previous one (NaN where there was none)."""

    election: str
    region_code: str
    as_of: str
    value: float
    previous: float
    delta: float
    hours: float
    as_of_seconds: float
    jump_z: float = float("nan")  # robust z of the rise against the other regions' (NaN: none)

    @property
    def rate(self) -> float:
        """Points per hour since the previous figure."""
        return self.delta / self.hours if self.hours > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if np.isnan(x) else round(x, 4)

        return {
            "election": self.election,
            "region_code": self.region_code,
            "as_of": self.as_of,
            "turnout_pct": self.value,
            "previous_pct": num(self.previous),
            "delta_points": num(self.delta),
            "hours": num(self.hours),
            "points_per_hour": num(self.rate),
            "jump_z": num(self.jump_z),
        }


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
