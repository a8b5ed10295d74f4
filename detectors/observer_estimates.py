"""A region's turnout as the observers saw it: a ratio estimate from the stations they sit at.

Observers sit at a sample of stations (about 2,000 of 10,000 in Kazakhstan) and count voters
themselves (`tally`) and note what the precinct commission announces or writes in its protocol
(`commission`). The tallies give each region an estimate with a confidence interval from the
station-to-station spread; `detectors.rules.observers` compares the official figures with it, and
each commission figure with its observer's tally.

Counts enter as sufficient statistics per region (n, sums of x = registered, y = voted and their
squares and product), so regions can be aggregated from partitioned station streams by adding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from turnout_watch.core.records import AGGREGATE_SUMS

FloatArray = npt.NDArray[np.float64]

#: Order of the sufficient statistics in a stats vector.
STATS = AGGREGATE_SUMS


def station_stats(registered: FloatArray, voted: FloatArray) -> FloatArray:
    """(k, 6) statistics of k stations: one row each, to be added up per region."""
    x = np.asarray(registered, dtype=np.float64)
    y = np.asarray(voted, dtype=np.float64)
    return np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])


def sum_by_group(groups: npt.NDArray[np.int64], stats: FloatArray, n_groups: int) -> FloatArray:
    """Add station statistics per group (region): (n_groups, 6)."""
    out = np.zeros((n_groups, len(STATS)))
    np.add.at(out, groups, stats)
    return out


@dataclass(frozen=True)
class RatioEstimate:
    """Turnout estimated from observed stations, percent, with its standard error (points)."""

    estimate: FloatArray
    se: FloatArray
    stations: FloatArray

    def interval(self, z: float = 1.96) -> tuple[FloatArray, FloatArray]:
        return self.estimate - z * self.se, self.estimate + z * self.se


def ratio_estimate(
    stats: FloatArray, population_stations: FloatArray | None = None, min_spread_points: float = 3.0
) -> RatioEstimate:
    """Ratio estimator R = sum(voted) / sum(registered) per row of `stats`, in percent.

    Its variance (Cochran, Sampling Techniques, 6.9) is (1 - f) * s_e^2 / (n * xbar^2) with
    s_e^2 = sum((y - R x)^2) / (n - 1): it grows with the station-to-station spread of turnout, so a
    region where observed stations disagree gets a wide interval. `f` = n / N, the sampled share of the
    region's stations, when N is known. Rows with fewer than 2 stations get NaN.
    """
    stats = np.atleast_2d(np.asarray(stats, dtype=np.float64))
    n, sx, sy, sxx, sxy, syy = stats.T
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sy / sx
        sse = np.maximum(syy - 2 * r * sxy + r * r * sxx, 0.0)
        fpc = 1.0 if population_stations is None else np.clip(1.0 - n / population_stations, 0.0, 1.0)
        relative_spread = np.maximum(np.sqrt(sse / (n - 1)) / (sx / n), min_spread_points / 100.0)
        variance = fpc * relative_spread**2 / n
        se = np.where(n >= 2, np.sqrt(variance), np.nan)
        estimate = np.where(n >= 2, 100.0 * r, np.nan)
    return RatioEstimate(estimate, 100.0 * se, n)


def student_threshold(z: float, dof: FloatArray) -> FloatArray:
    """The Student-t value with the same one-sided tail as the normal `z`, for `dof` degrees of freedom.

    The interval's standard error is estimated from the same handful of stations, so with 10 stations
    a gap of 3 standard errors is far likelier than the normal tail says; the threshold must widen.
    Cornish-Fisher expansion (Abramowitz & Stegun 26.7.5), accurate to ~1 % for dof >= 5.
    """
    nu = np.asarray(dof, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return z + (z**3 + z) / (4 * nu) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * nu**2)
