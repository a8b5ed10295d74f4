"""Jumps: a region's rise compared with the other regions' rises at the same release."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: 1.4826 * MAD estimates the standard deviation of normally distributed increments.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class JumpScores:
    """Per-region robust scores; NaN where a region has no increment or too few peers."""

    z: FloatArray  # (rate - median of others) / robust scale of others
    peer_median: FloatArray  # median rate (points/hour) of the *other* regions
    peer_scale: FloatArray  # robust sigma of the other regions' rates, floored
    peers: npt.NDArray[np.int64]  # how many other regions had an increment (for a NaN region: all)


def robust_scores(values: FloatArray, *, scale_floor: float = 0.5, relative_floor: float = 0.0) -> JumpScores:
    """Leave-one-out robust z of each value against all the others (NaN values neither scored nor peers).

    The scale is 1.4826 * MAD of the others, floored at `scale_floor` and at `relative_floor` times the
    others' median, so a quiet cross-section cannot make a tiny difference look significant.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    valid = ~np.isnan(values)
    present = values[valid]
    m = present.shape[0]
    median = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    peers = np.where(valid, max(m - 1, 0), m).astype(np.int64)
    if m >= 2:
        # Row i holds every valid value but the i-th: plain medians along rows (no NaN handling needed).
        others = np.broadcast_to(present, (m, m))[~np.eye(m, dtype=bool)].reshape(m, m - 1)
        median[valid] = np.median(others, axis=1)
        mad[valid] = np.median(np.abs(others - median[valid][:, None]), axis=1)
    with np.errstate(invalid="ignore"):
        scale = np.maximum(np.maximum(MAD_TO_SIGMA * mad, scale_floor), relative_floor * np.abs(median))
        z = (values - median) / scale
    return JumpScores(z=z, peer_median=median, peer_scale=scale, peers=peers)


def cross_sectional_jump(rates: FloatArray, *, scale_floor: float = 0.5, relative_floor: float = 0.1) -> JumpScores:
    """Score each region's rise against the other regions' rises at the same release.

    Turnout grows at very different speeds through the day (+5 to +25 points between 12:00 and 14:00 in
    2023), so no fixed threshold works; but at one release all regions share the hour, the weather and
    the national mood. A region that rose far above all the others (2022: Turkistan +37 points
    10:00 -> 12:00 while the country rose 15) is what ballot stuffing or an invented figure looks like.
    Input is points per hour, so regions whose previous figure is older are compared fairly.
    Leave-one-out median and MAD keep the suspect itself (and a second outlier) from hiding the jump.
    Where in the day it is sets the scale's floor: in the morning rush (median +8 points/h) a spread
    under 10 % of the median is noise, in the quiet evening `scale_floor` (points/h) keeps +0.3 from
    scoring a z of 30.
    """
    return robust_scores(rates, scale_floor=scale_floor, relative_floor=relative_floor)


def expected_curve_residuals(
    previous: FloatArray, current: FloatArray, region_ratio: FloatArray, national_ratio: float
) -> tuple[FloatArray, FloatArray]:
    """Expected figure and residual (points) of each region against its own past curve.

    `region_ratio` is how much each region's turnout multiplied between the two hours on past days;
    `national_ratio` scales all of them by how this day differs from past days as a whole (the
    nation's actual ratio over its expected one), so a slow or fast day does not flag every region.
    """
    with np.errstate(invalid="ignore"):
        expected = np.minimum(previous * region_ratio * national_ratio, 100.0)
    return expected, current - expected


def expected_curve_jump(residual_rates: FloatArray, *, scale_floor: float = 0.5) -> JumpScores:
    """Score each region's excess over its own expected curve against the other regions' excesses.

    A region's increment far above what its own past curves predict (after the day-level adjustment)
    is a surge even when the increment itself looks ordinary next to other regions: a region that
    usually votes late rising like an early one. Robust scoring against the other regions' residuals
    at the same release keeps a day when all curves were off from flagging everyone.
    Input is residual points per hour.
    """
    return robust_scores(residual_rates, scale_floor=scale_floor)
