"""Impossible values: the rules no real count can break, whatever the region or the hour."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.config import DetectorConfig
from detectors.types import Batch
from turnout_watch.core.records import Flag, Severity

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def out_of_range(values: FloatArray) -> BoolArray:
    """Turnout is a share of the voters on the list: below 0 % or above 100 % is a data or fraud signal.

    Over 100 % happens when ballots are issued to people not on the list (or the list is padded after
    the fact); the CEC's own figure must never show it. NaN (region not reported) is not flagged.
    """
    with np.errstate(invalid="ignore"):
        return (values < 0.0) | (values > 100.0)


def falling(previous: FloatArray, current: FloatArray, tolerance: float = 0.0) -> BoolArray:
    """Cumulative turnout cannot fall: a voter who received a ballot cannot give it back.

    Observers saw it happen (2022: Astana 48.67 -> 48.60, Jetisu 81.43 -> 81.42 after polls closed),
    so any decrease beyond `tolerance` points flags. Where either value is NaN nothing is flagged.
    """
    with np.errstate(invalid="ignore"):
        return (previous - current) > tolerance


class OutOfRange:
    """A fresh figure outside 0..100 %: always critical, expected at the bound it crossed."""

    detector = "out_of_range"

    def flags(self, b: Batch, config: DetectorConfig) -> list[Flag]:
        flags = []
        for i in np.flatnonzero(out_of_range(b.value) & b.fresh).tolist():
            bound = 100.0 if b.value[i] > 100 else 0.0
            flags.append(
                b.flag(
                    b.codes[i],
                    self.detector,
                    "critical",
                    float(b.value[i]),
                    bound,
                    f"{b.name(b.codes[i])} reported {b.value[i]:.2f}% turnout; a share of the list must lie "
                    f"within 0..100%",
                    {"bound": bound},
                )
            )
        return flags


class FallingTurnout:
    """A fresh figure below the region's previous one; critical from `falling_critical_points` down."""

    detector = "falling_turnout"

    def flags(self, b: Batch, config: DetectorConfig) -> list[Flag]:
        flags = []
        for i in np.flatnonzero(falling(b.prev, b.value) & b.fresh).tolist():
            drop = -float(b.delta[i])
            severity: Severity = "critical" if drop >= config.falling_critical_points else "warning"
            since = b.local(float(b.prev_t[i]))
            flags.append(
                b.flag(
                    b.codes[i],
                    self.detector,
                    severity,
                    float(b.value[i]),
                    float(b.prev[i]),
                    f"{b.name(b.codes[i])} fell {drop:.2f} points ({b.prev[i]:.2f}% -> {b.value[i]:.2f}%) "
                    f"since {since:%H:%M}; cumulative turnout cannot fall",
                    {"previous": float(b.prev[i]), "drop_points": round(drop, 4), "previous_as_of": since.isoformat()},
                )
            )
        return flags
