"""Growth after polls close: only late reports can add to turnout once the doors shut."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.config import DetectorConfig
from detectors.types import Batch
from turnout_watch.core.records import Flag, Severity

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def growth_after_close(rise: FloatArray, allowance: float, relative: float = 3.0) -> BoolArray:
    """Regions whose rise after polls closed exceeds what late reporting explains.

    After closing time no new voter can receive a ballot; the figure may only catch up with protocols
    reported late. Both shipped days show how little that is (the nation +0.10 and +0.12 points
    20:00 -> 22:00), while observers reported 2023's Kyzylorda (+0.75) and Aktobe (+0.55) as
    anomalies. A rise beyond `allowance` points that is also `relative` times the median post-close
    rise of all regions (late reporting that day, everywhere) is flagged. NaN rises are not flagged.
    """
    rise = np.asarray(rise, dtype=np.float64)
    present = rise[~np.isnan(rise)]
    typical = float(np.median(present)) if present.size else 0.0
    with np.errstate(invalid="ignore"):
        return (rise > allowance) & (rise > relative * max(typical, 0.0))


class GrowthAfterClose:
    """A rise measured entirely after polls closed, beyond late reporting (see `growth_after_close`).

    Only rises from a figure as of `polls_close` or later count: 18:00 -> 22:00 mixes voting and late
    reports. A rise over `after_close_info_points` that is not flagged is noted as info; from
    `after_close_critical_points` it is critical.
    """

    detector = "growth_after_close"

    def flags(self, b: Batch, config: DetectorConfig) -> list[Flag]:
        cfg, close = config, b.release.polls_close
        if close is None or b.now <= close.timestamp():
            return []
        eligible = b.fresh & ~b.national & (b.prev_t >= close.timestamp())
        rise = np.where(eligible, b.delta, np.nan)
        hit = growth_after_close(rise, cfg.after_close_allowance_points)
        with np.errstate(invalid="ignore"):
            info = eligible & ~hit & (rise > cfg.after_close_info_points)
        flags = []
        for i in np.flatnonzero(hit | info).tolist():
            severity: Severity = (
                "info" if info[i] else "critical" if rise[i] >= cfg.after_close_critical_points else "warning"
            )
            flags.append(
                b.flag(
                    b.codes[i],
                    self.detector,
                    severity,
                    float(rise[i]),
                    cfg.after_close_allowance_points,
                    f"{b.name(b.codes[i])} rose {rise[i]:.2f} points after polls closed at "
                    f"{b.local(close.timestamp()):%H:%M} ({b.prev[i]:.2f}% -> {b.value[i]:.2f}%); late "
                    f"reports explain up to {cfg.after_close_allowance_points:g}",
                    {"previous": float(b.prev[i]), "polls_close": close.isoformat()},
                )
            )
        return flags
