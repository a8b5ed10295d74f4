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
        # Row i holds every valid value but the i-th: plain medians along rows (no NaN handling needed),
        # a block of rows at a time, so thousands of units (an India-sized release) never hold m x m.
        own, spread = np.empty(m), np.empty(m)
        for start in range(0, m, ROWS_AT_ONCE):
            stop = min(start + ROWS_AT_ONCE, m)
            others = present[_leave_one_out(m, start, stop)]
            own[start:stop] = _row_medians(others)
            spread[start:stop] = _row_medians(np.abs(others - own[start:stop, None]))
        median[valid] = own
        mad[valid] = spread
    with np.errstate(invalid="ignore"):
        scale = np.maximum(np.maximum(MAD_TO_SIGMA * mad, scale_floor), relative_floor * np.abs(median))
        z = (values - median) / scale
    return RobustScores(z=z, peer_median=median, peer_scale=scale, peers=peers)


def _row_medians(rows: FloatArray) -> FloatArray:
    """`np.median(rows, axis=1)` of NaN-free rows, to the bit: the mean of each sorted row's middle value
    (or two), summed from 0.0 as `np.mean` does (so a -0.0 median comes out 0.0, as it always has). On
    the ~20 regions of a release `np.median`'s generic machinery costs several times the sort itself."""
    k = rows.shape[1]
    ordered = np.sort(rows, axis=1)
    half = k // 2
    if k % 2:
        return np.asarray(ordered[:, half] + 0.0)
    return np.asarray((0.0 + ordered[:, half - 1] + ordered[:, half]) / 2.0)


def median(values: FloatArray) -> float:
    """`float(np.median(values))` of a non-empty, NaN-free 1-d array, to the bit (see `_row_medians`)."""
    return float(_row_medians(np.asarray(values, dtype=np.float64).reshape(1, -1))[0])


#: Leave-one-out rows built at once: the ~20 regions of a release in one block (its index kept), 4,123
#: units in 17 blocks of ~34 MB of scratch each instead of one of 540 MB.
ROWS_AT_ONCE = 256

_LEAVE_ONE_OUT: dict[int, npt.NDArray[np.intp]] = {}


def _leave_one_out(m: int, start: int = 0, stop: int | None = None) -> npt.NDArray[np.intp]:
    """(rows, m-1) indices: row i (start <= i < stop) lists 0..m-1 without i, in order. The whole
    index of a small m is built once and kept; blocks of a large m are built when asked."""
    stop = m if stop is None else stop
    whole = start == 0 and stop == m
    index = _LEAVE_ONE_OUT.get(m) if whole else None
    if index is None:
        rows = np.arange(start, stop)
        keep = np.arange(m)[None, :] != rows[:, None]
        index = np.broadcast_to(np.arange(m), keep.shape)[keep].reshape(stop - start, m - 1)
        if whole:
            _LEAVE_ONE_OUT[m] = index
    return index
