"""Growth after polls close: only late reports can add to turnout once a region's own doors shut.

Every region closes on its own clock (`Batch.closes`): until March 2024 Kazakhstan's west was an hour
behind the capital, so its polls closed at 21:00 capital time and the 22:00 release held its last hour
of voting. A rise measured entirely after the region's close is judged against late reporting; a rise
over an interval that still held some of its voting is judged against its own recent pace first.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt

from detectors.config import DetectorConfig
from detectors.robust import median
from detectors.types import Batch
from turnout_watch.core.records import Flag, Severity

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def growth_after_close(
    rise: FloatArray, allowance: float, relative: float = 3.0, typical: float | None = None
) -> BoolArray:
    """Regions whose rise after polls closed exceeds what late reporting explains.

    After closing time no new voter can receive a ballot; the figure may only catch up with protocols
    reported late. Both shipped days show how little that is (the regions already closed at 20:00
    gained a median of 0.0 points by 22:00, the largest +0.79), while a region gaining several points
    did more than report late. A rise beyond `allowance` points that is also `relative` times the
    median post-close rise of all regions (late reporting that day, everywhere; or `typical`, when
    given) is flagged. NaN rises are not flagged.
    """
    rise = np.asarray(rise, dtype=np.float64)
    if typical is None:
        present = rise[~np.isnan(rise)]
        typical = float(np.median(present)) if present.size else 0.0
    with np.errstate(invalid="ignore"):
        return (rise > allowance) & (rise > relative * max(typical, 0.0))


def last_hours_expected(pace: FloatArray, voting_hours: FloatArray, factor: float) -> FloatArray:
    """Points a region may still gain in the `voting_hours` of its own window an interval holds.

    `pace` is its own points per hour over the last interval its figure moved in; the last hour of
    voting is busier than the hours before it (2023: Aktobe +0.55 in its last hour after +0.57 in the
    two before, Atyrau +1.01 after +1.03, Kyzylorda +0.75 after +0.76), so `factor` times that pace.
    A stale figure (the June 2022 20:00 release repeated the west's 18:00 figures) widens the window:
    the hours are counted from when the figure was first reported.
    """
    with np.errstate(invalid="ignore"):
        return np.asarray(factor * np.maximum(pace, 0.0) * voting_hours)


class GrowthAfterClose:
    """A rise after a region's own close beyond late reporting (see `growth_after_close`).

    Rises from a figure as of the region's close or later are judged as late reports. A rise over an
    interval that straddles its close (the region's last open hour) is judged by its excess over what
    its own recent pace explains (`last_hours_expected`), with the same allowance; without a known
    pace it is not judged. An excess over `after_close_info_points` that is not flagged is noted as
    info; from `after_close_critical_points` it is critical.
    """

    detector = "growth_after_close"

    def flags(self, b: Batch, config: DetectorConfig) -> list[Flag]:
        cfg = config
        with np.errstate(invalid="ignore"):
            closed = b.fresh & ~b.national & (b.now > b.closes)
        if not closed.any():
            return []
        with np.errstate(invalid="ignore"):
            after = closed & (b.prev_t >= b.closes)
            straddle = closed & (b.since < b.closes)
        voting = b.voting_hours(b.since)
        allowed = np.where(straddle, last_hours_expected(b.pace, voting, cfg.last_hour_pace_factor), 0.0)
        judged = after | (straddle & ~np.isnan(allowed))
        excess = np.where(judged, b.delta - allowed, np.nan)
        late = excess[after & ~np.isnan(excess)]  # the day's late reporting: regions closed throughout
        typical = median(late) if late.size else 0.0
        hit = growth_after_close(excess, cfg.after_close_allowance_points, typical=typical)
        with np.errstate(invalid="ignore"):
            info = judged & ~hit & (excess > cfg.after_close_info_points)
        flags = []
        for i in np.flatnonzero(hit | info).tolist():
            rise = float(b.delta[i])
            severity: Severity = (
                "info" if info[i] else "critical" if excess[i] >= cfg.after_close_critical_points else "warning"
            )
            close = b.release.closes_of(b.codes[i])
            assert close is not None  # closed[i] needs a closing time
            when = self._closed_at(b, close)
            evidence: dict[str, object] = {"previous": float(b.prev[i]), "polls_close": close.isoformat()}
            if straddle[i]:
                message = (
                    f"{b.name(b.codes[i])} rose {rise:.2f} points ({b.prev[i]:.2f}% -> {b.value[i]:.2f}%) over "
                    f"its last {voting[i]:g} h of voting (polls closed at {when}); its own pace of "
                    f"{b.pace[i]:.2f} points/h explains {allowed[i]:.2f}, late reports up to "
                    f"{cfg.after_close_allowance_points:g} more"
                )
                evidence |= {
                    "voting_hours": round(float(voting[i]), 4),
                    "pace_points_per_hour": round(float(b.pace[i]), 4),
                    "pace_explains": round(float(allowed[i]), 4),
                }
                expected = float(allowed[i]) + cfg.after_close_allowance_points
            else:
                message = (
                    f"{b.name(b.codes[i])} rose {rise:.2f} points after polls closed at {when} "
                    f"({b.prev[i]:.2f}% -> {b.value[i]:.2f}%); late reports explain up to "
                    f"{cfg.after_close_allowance_points:g}"
                )
                expected = cfg.after_close_allowance_points
            flags.append(b.flag(b.codes[i], self.detector, severity, rise, expected, message, evidence))
        return flags

    @staticmethod
    def _closed_at(b: Batch, close: datetime) -> str:
        """ "20:00", or "20:00 local (21:00 capital time)" for a region on another clock than the releases'."""
        local, stated = close.strftime("%H:%M"), b.local(close.timestamp()).strftime("%H:%M")
        return local if local == stated else f"{local} local ({stated} on the releases' clock)"
