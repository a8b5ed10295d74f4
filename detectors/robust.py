"""Robust scores: how far each value lies from all the others, by their median and MAD.

Shared by the jump rules (a region's rise against the other regions' rises) and by curve learning
(a past day's surge pulled back before it becomes a habit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: 1.4826 * MAD estimates the standard deviation of normally distributed increments.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class RobustScores:
    """Per-region robust scores; NaN where a region has no increment or too few peers."""

    z: FloatArray  # (rate - median of others) / robust scale of others
    peer_median: FloatArray  # median rate (points/hour) of the *other* regions
    peer_scale: FloatArray  # robust sigma of the other regions' rates, floored
    peers: npt.NDArray[np.int64]  # how many other regions had an increment (for a NaN region: all)


def robust_scores(values: FloatArray, *, scale_floor: float = 0.5, relative_floor: float = 0.0) -> RobustScores:
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
    return RobustScores(z=z, peer_median=median, peer_scale=scale, peers=peers)
