"""The national figure must agree with its regions."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.config import DetectorConfig
from detectors.types import Batch
from turnout_watch.core.gazetteer import NATIONAL
from turnout_watch.core.records import Flag

FloatArray = npt.NDArray[np.float64]


def weighted_national(values: FloatArray, registered: FloatArray, total_registered: float) -> tuple[float, float]:
    """Registered-weighted mean of the regions' turnout, and the share of registered voters it covers.

    National turnout is total ballots over total registered voters, i.e. exactly the regions' turnouts
    weighted by their registered voters. A national figure that disagrees (beyond what approximate
    weights explain: 0.01 points in 2023, 0.14 in 2022 with 2023's weights) means the national or a
    regional figure was computed from different numbers than published. Regions without a figure or
    without a weight (NaN) are left out; the coverage is the share of `total_registered` (all regions'
    registered voters) that the mean rests on.
    """
    values = np.asarray(values, dtype=np.float64)
    registered = np.asarray(registered, dtype=np.float64)
    usable = ~np.isnan(values) & ~np.isnan(registered) & (registered > 0)
    if not usable.any() or total_registered <= 0:
        return float("nan"), 0.0
    weights = registered[usable]
    return float(np.dot(values[usable], weights) / weights.sum()), float(weights.sum() / total_registered)


class NationalInconsistency:
    """A fresh national figure off its regions' registered-weighted mean (see `weighted_national`).

    Judged only when the release carries registered voters and the regions reported cover at least
    `national_min_coverage` of them: half the electorate is no basis for a national comparison.
    """

    detector = "national_inconsistency"

    def flags(self, b: Batch, config: DetectorConfig) -> list[Flag]:
        cfg, registered = config, b.release.registered
        if not registered:  # the national figure is weighed only with the regions' registered voters
            return []
        where = np.flatnonzero(b.national & b.fresh).tolist()
        if not where:
            return []
        regions = ~b.national
        weights = np.array([registered.get(c, np.nan) for c in b.codes], dtype=np.float64)
        total = float(sum(v for c, v in registered.items() if c != NATIONAL))
        mean, coverage = weighted_national(b.value[regions], weights[regions], total)
        i = where[0]
        gap = float(b.value[i] - mean)
        if coverage < cfg.national_min_coverage or abs(gap) < cfg.national_warning_points:
            return []
        return [
            b.flag(
                NATIONAL,
                self.detector,
                "critical" if abs(gap) >= cfg.national_critical_points else "warning",
                float(b.value[i]),
                mean,
                f"the national figure {b.value[i]:.2f}% differs by {gap:+.2f} points from its regions' "
                f"registered-weighted mean {mean:.2f}%",
                {"gap_points": round(gap, 4), "coverage": round(coverage, 4)},
            )
        ]
