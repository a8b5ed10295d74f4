"""Per-region state for one election and the detectors run on each release.

The same `TurnoutTracker` runs inside the Faust agent (live and replay) and in the offline
`turnout-watch detect`, so both give the same flags for the same day. It knows nothing of Kafka:
a normalised release (region codes, numpy arrays) goes in, flags and per-region updates come out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.flags import Flag, Severity
from detectors.jumps import cross_sectional_jump
from detectors.values import falling, out_of_range

NATIONAL = "KZ"


@dataclass(frozen=True)
class Release:
    """A CEC release after the edge normalised it: region codes (the national figure under `KZ`)."""

    election: str
    as_of: datetime
    published_at: datetime
    turnout: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "election": self.election,
            "as_of": self.as_of.isoformat(),
            "published_at": self.published_at.isoformat(),
            "turnout": dict(self.turnout),
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Release:
        return cls(
            election=obj["election"],
            as_of=datetime.fromisoformat(obj["as_of"]),
            published_at=datetime.fromisoformat(obj["published_at"]),
            turnout={str(k): float(v) for k, v in obj["turnout"].items()},
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
        }


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds of the first detectors; defaults are tuned on nothing but the rule's own logic."""

    jump_z_warning: float = 3.0  # robust SDs above the other regions
    jump_z_critical: float = 5.0
    jump_min_excess_points: float = 5.0  # and at least this many points above the peers' median rise
    jump_min_peers: int = 5  # fewer regions reporting an increment: no cross-section to compare with
    jump_scale_floor: float = 0.5  # points/hour: a quiet release must not make tiny rises significant
    falling_critical_points: float = 1.0  # a fall of this much is critical, smaller falls a warning


@dataclass
class ProcessResult:
    flags: list[Flag] = field(default_factory=list)
    updates: list[RegionUpdate] = field(default_factory=list)
    stale: int = 0  # region figures ignored because a newer (or the same) release was already seen

    def extend(self, other: ProcessResult) -> None:
        self.flags.extend(other.flags)
        self.updates.extend(other.updates)
        self.stale += other.stale


class TurnoutTracker:
    """Last figure and time per region for one election; turns each release into flags and updates.

    Re-delivered releases (at-least-once delivery) are ignored per region by `as_of`, so processing
    the same release twice yields its flags once.
    """

    def __init__(
        self, election: str, names: Mapping[str, str] | None = None, config: DetectorConfig | None = None
    ) -> None:
        self.election = election
        self.names = dict(names or {})
        self.config = config or DetectorConfig()
        self.last_value: dict[str, float] = {}
        self.last_time: dict[str, float] = {}

    def process_many(self, releases: Iterable[Release]) -> ProcessResult:
        result = ProcessResult()
        for release in releases:
            result.extend(self.process(release))
        return result

    def process(self, release: Release) -> ProcessResult:
        if release.election != self.election:
            raise ValueError(f"release of {release.election!r} given to the tracker of {self.election!r}")
        codes = list(release.turnout)
        now = release.as_of.timestamp()
        value = np.array([release.turnout[c] for c in codes], dtype=np.float64)
        prev = np.array([self.last_value.get(c, np.nan) for c in codes], dtype=np.float64)
        prev_t = np.array([self.last_time.get(c, np.nan) for c in codes], dtype=np.float64)
        fresh = ~(prev_t >= now)  # NaN (never seen) counts as fresh
        hours = (now - prev_t) / 3600.0
        delta = value - prev
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(hours > 0, delta / hours, np.nan)
        national = np.array([c == NATIONAL for c in codes], dtype=bool)

        result = ProcessResult(stale=int(np.sum(~fresh)))
        as_of = release.as_of.isoformat()
        result.flags.extend(self._value_flags(codes, value, prev, prev_t, delta, fresh, as_of))
        result.flags.extend(self._jump_flags(codes, rate, delta, hours, fresh & ~national, as_of))
        for i in np.flatnonzero(fresh).tolist():
            code = codes[i]
            self.last_value[code] = float(value[i])
            self.last_time[code] = now
            result.updates.append(
                RegionUpdate(
                    self.election,
                    code,
                    as_of,
                    float(value[i]),
                    float(prev[i]),
                    float(delta[i]),
                    float(hours[i]),
                    now,
                )
            )
        return result

    def _name(self, code: str) -> str:
        return self.names.get(code, code)

    def _flag(
        self,
        code: str,
        as_of: str,
        detector: str,
        severity: Severity,
        value: float,
        expected: float | None,
        message: str,
        evidence: dict[str, Any],
    ) -> Flag:
        return Flag(
            self.election,
            self._name(code),
            code,
            as_of,
            detector,
            severity,
            round(value, 4),
            None if expected is None else round(expected, 4),
            message,
            evidence,
        )

    def _value_flags(
        self,
        codes: Sequence[str],
        value: npt.NDArray[np.float64],
        prev: npt.NDArray[np.float64],
        prev_t: npt.NDArray[np.float64],
        delta: npt.NDArray[np.float64],
        fresh: npt.NDArray[np.bool_],
        as_of: str,
    ) -> list[Flag]:
        flags = []
        for i in np.flatnonzero(out_of_range(value) & fresh).tolist():
            bound = 100.0 if value[i] > 100 else 0.0
            flags.append(
                self._flag(
                    codes[i],
                    as_of,
                    "out_of_range",
                    "critical",
                    float(value[i]),
                    bound,
                    f"{self._name(codes[i])} reported {value[i]:.2f}% turnout; a share of the list must lie "
                    f"within 0..100%",
                    {"bound": bound},
                )
            )
        for i in np.flatnonzero(falling(prev, value) & fresh).tolist():
            drop = -float(delta[i])
            severity: Severity = "critical" if drop >= self.config.falling_critical_points else "warning"
            since = datetime.fromtimestamp(float(prev_t[i]), tz=datetime.fromisoformat(as_of).tzinfo)
            flags.append(
                self._flag(
                    codes[i],
                    as_of,
                    "falling_turnout",
                    severity,
                    float(value[i]),
                    float(prev[i]),
                    f"{self._name(codes[i])} fell {drop:.2f} points ({prev[i]:.2f}% -> {value[i]:.2f}%) since "
                    f"{since:%H:%M}; cumulative turnout cannot fall",
                    {
                        "previous": float(prev[i]),
                        "drop_points": round(drop, 4),
                        "previous_as_of": since.isoformat(),
                    },
                )
            )
        return flags

    def _jump_flags(
        self,
        codes: Sequence[str],
        rate: npt.NDArray[np.float64],
        delta: npt.NDArray[np.float64],
        hours: npt.NDArray[np.float64],
        eligible: npt.NDArray[np.bool_],
        as_of: str,
    ) -> list[Flag]:
        cfg = self.config
        rates = np.where(eligible, rate, np.nan)
        scores = cross_sectional_jump(rates, scale_floor=cfg.jump_scale_floor)
        expected = scores.peer_median * hours
        with np.errstate(invalid="ignore"):
            hit = (
                eligible
                & (scores.peers >= cfg.jump_min_peers)
                & (scores.z >= cfg.jump_z_warning)
                & (delta - expected >= cfg.jump_min_excess_points)
            )
        flags = []
        for i in np.flatnonzero(hit).tolist():
            z = float(scores.z[i])
            severity: Severity = "critical" if z >= cfg.jump_z_critical else "warning"
            flags.append(
                self._flag(
                    codes[i],
                    as_of,
                    "cross_sectional_jump",
                    severity,
                    float(delta[i]),
                    float(expected[i]),
                    f"{self._name(codes[i])} rose {delta[i]:.1f} points in {hours[i]:g} h; other regions rose "
                    f"{expected[i]:.1f} (median), {z:.1f} robust SDs above them",
                    {
                        "z": round(z, 2),
                        "hours": round(float(hours[i]), 4),
                        "peers": int(scores.peers[i]),
                        "peer_median_points_per_hour": round(float(scores.peer_median[i]), 4),
                        "peer_sigma_points_per_hour": round(float(scores.peer_scale[i]), 4),
                    },
                )
            )
        return flags
