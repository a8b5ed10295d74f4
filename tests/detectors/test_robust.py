"""The robust scores' medians are `np.median`'s, to the bit (they are a faster route to the same numbers)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.robust import _row_medians, median, robust_scores


def reference(values: np.ndarray, scale_floor: float, relative_floor: float) -> tuple[np.ndarray, ...]:
    """`robust_scores` as first written: `np.median` over the leave-one-out rows."""
    valid = ~np.isnan(values)
    present = values[valid]
    m, n = present.shape[0], values.shape[0]
    med, mad = np.full(n, np.nan), np.full(n, np.nan)
    if m >= 2:
        others = np.broadcast_to(present, (m, m))[~np.eye(m, dtype=bool)].reshape(m, m - 1)
        med[valid] = np.median(others, axis=1)
        mad[valid] = np.median(np.abs(others - med[valid][:, None]), axis=1)
    with np.errstate(invalid="ignore"):
        scale = np.maximum(np.maximum(1.4826 * mad, scale_floor), relative_floor * np.abs(med))
        z = (values - med) / scale
    return z, med, scale


@pytest.mark.parametrize("seed", range(5))
def test_robust_scores_are_those_of_np_median_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(2000):
        n = int(rng.integers(0, 25))
        values = [rng.normal(0, 5, n), np.round(rng.normal(3, 2, n), 2), rng.integers(-2, 3, n) * 1.0][trial % 3]
        values[rng.random(n) < 0.15] = np.nan
        values[rng.random(n) < 0.1] = -0.0
        got = robust_scores(values, scale_floor=0.5, relative_floor=0.1)
        for mine, theirs in zip((got.z, got.peer_median, got.peer_scale), reference(values, 0.5, 0.1), strict=True):
            assert mine.tobytes() == theirs.tobytes()


def test_medians_are_np_median_s_down_to_the_sign_of_zero() -> None:
    rng = np.random.default_rng(9)
    for k in range(1, 24):
        rows = np.round(rng.normal(0, 1, (30, k)), 1) * rng.integers(0, 2, (30, k))
        rows[0] = -0.0
        assert _row_medians(rows).tobytes() == np.median(rows, axis=1).tobytes()
        for row in rows:
            assert np.float64(median(row)).tobytes() == np.float64(np.median(row)).tobytes()


@pytest.mark.parametrize("n", [257, 513, 700])
def test_many_units_are_scored_in_blocks_to_the_same_bits(n: int) -> None:
    """Thousands of units (an India-sized release) take the leave-one-out rows a block at a time."""
    rng = np.random.default_rng(n)
    values = np.round(rng.normal(3, 2, n), 1)  # ties, as real rates have
    values[rng.random(n) < 0.1] = np.nan
    values[rng.random(n) < 0.05] = -0.0
    got = robust_scores(values, scale_floor=0.5, relative_floor=0.1)
    for mine, theirs in zip((got.z, got.peer_median, got.peer_scale), reference(values, 0.5, 0.1), strict=True):
        assert mine.tobytes() == theirs.tobytes()
