"""Expected turnout curves: the share of its final turnout a region has reached by each hour.

Learned from past election days. A region's curve has a shape of its own (cities vote late, rural
regions early), so "rose 20 points by noon" can be normal for one region and a surge for another.
Days differ as a whole too (2023 reached 85 % of its final by 14:00, 2022 only 74 %), which the
detector removes by comparing each region with the nation on the same day.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.robust import MAD_TO_SIGMA
from turnout_watch.core.gazetteer import NATIONAL

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PastDay:
    """One past election's official curves: local hour of day -> {region code: turnout %}.

    `hours` are the releases' hours on the clock they were stated in; a region on another clock has
    its own local hours of the same releases in `local_hours` (until 2024 the west was an hour behind).
    """

    election: str
    hours: tuple[float, ...]
    turnout: Mapping[str, tuple[float, ...]]  # code -> values aligned with hours (NaN where missing)
    local_hours: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def hours_of(self, code: str) -> tuple[float, ...]:
        """The releases' hours on region `code`'s own clock."""
        return self.local_hours.get(code, self.hours)


@dataclass(frozen=True)
class ExpectedCurves:
    """Mean share-of-final per region on a common hour grid, and which past elections it came from."""

    hours: FloatArray
    share: Mapping[str, FloatArray]
    elections: tuple[str, ...]
    borrow: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def curve(self, code: str) -> FloatArray | None:
        """The region's own curve, else its history's (predecessor/successors), else the nation's."""
        if code in self.share:
            return self.share[code]
        donors = [self.share[c] for c in self.borrow.get(code, ()) if c in self.share]
        if donors:
            return np.asarray(np.mean(donors, axis=0), dtype=np.float64)
        return self.share.get(NATIONAL)

    def share_at(self, code: str, hours: FloatArray) -> FloatArray:
        """Share of final reached at each of `hours` (local hour of day), linear between known hours."""
        curve = self.curve(code)
        if curve is None:
            return np.full(np.shape(hours), np.nan)
        return np.asarray(np.interp(hours, self.hours, curve, left=np.nan, right=curve[-1]), dtype=np.float64)

    def shares(self, codes: list[str], hours: FloatArray) -> FloatArray:
        """`share_at` for many regions at once: region i at hours[i] (NaN where it has no curve)."""
        return row_shares(self.hours, self._matrix(tuple(codes)), np.asarray(hours, dtype=np.float64))

    def rows(self, codes: list[str]) -> FloatArray:
        """Each region's curve on the grid, one row per code (NaN where it has no curve); not to be changed."""
        return self._matrix(tuple(codes))

    def _matrix(self, codes: tuple[str, ...]) -> FloatArray:
        cache: dict[tuple[str, ...], FloatArray] = self.__dict__.setdefault("_matrices", {})
        if codes not in cache:
            nan = np.full(len(self.hours), np.nan)
            rows = [self.curve(code) for code in codes]
            cache[codes] = np.array([nan if row is None else row for row in rows], dtype=np.float64)
        return cache[codes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "hours": self.hours.tolist(),
            "elections": list(self.elections),
            "share": {code: [round(float(x), 6) for x in values] for code, values in sorted(self.share.items())},
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> ExpectedCurves:
        return cls(
            hours=np.asarray(obj["hours"], dtype=np.float64),
            share={code: np.asarray(values, dtype=np.float64) for code, values in obj["share"].items()},
            elections=tuple(obj["elections"]),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")


def robust_steps(share: FloatArray, k: float) -> FloatArray:
    """Pull each region's step (share gained between two hours) within k robust SDs of all regions' steps.

    Past days hold the anomalies observers reported (2022: Almaty Region +15.8 points 16:00 -> 18:00); a
    curve learned from them as they are would call the same surge a habit next time.
    """
    steps = np.diff(np.concatenate([np.zeros((share.shape[0], 1)), share], axis=1), axis=1)
    median = np.median(steps, axis=0)
    sigma = MAD_TO_SIGMA * np.median(np.abs(steps - median), axis=0)
    curve = np.cumsum(np.clip(steps, median - k * sigma, median + k * sigma), axis=1)
    return np.asarray(curve / curve[:, -1:], dtype=np.float64)


def learn_curves(
    days: Iterable[PastDay], borrow: Mapping[str, tuple[str, ...]] | None = None, robust_k: float = 3.0
) -> ExpectedCurves:
    """Average each region's share-of-final curve over the past days, on the union of their hours.

    The final figure is the day's last release. Regions reported at every hour of a day have their
    steps pulled within `robust_k` robust SDs of the other regions' (see `robust_steps`); the national
    curve and regions with gaps are used as they are. A region present in fewer days averages over the
    days it has.
    Each region's curve is placed on its own local hours (`PastDay.hours_of`); the steps are cleaned
    release by release (the same moment for every region), and the grid is the union of all hours. A
    grid hour before a region's first release is unknown for it (NaN), not zero.
    """
    days = list(days)
    grid = np.array(sorted({h for day in days for code in day.turnout for h in day.hours_of(code)}), dtype=np.float64)
    sums: dict[str, FloatArray] = {}
    counts: dict[str, FloatArray] = {}
    for day in days:
        shares: dict[str, FloatArray] = {}
        for code, values in day.turnout.items():
            hours = np.asarray(day.hours_of(code), dtype=np.float64)
            series = np.asarray(values, dtype=np.float64)
            known = ~np.isnan(series)
            if known.sum() >= 2 and series[known][-1] > 0:
                shares[code] = np.interp(hours, hours[known], series[known] / series[known][-1])
        complete = [c for c in shares if c != NATIONAL and not np.isnan(day.turnout[c]).any()]
        if len(complete) >= 5:
            cleaned = robust_steps(np.array([shares[c] for c in complete]), robust_k)
            shares.update(zip(complete, cleaned, strict=True))
        for code, curve in shares.items():
            on_grid = np.interp(grid, np.asarray(day.hours_of(code), dtype=np.float64), curve, left=np.nan, right=1.0)
            sums[code] = np.nan_to_num(on_grid) + sums.get(code, 0.0)
            counts[code] = (~np.isnan(on_grid)).astype(np.float64) + counts.get(code, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = {code: np.where(counts[code] > 0, sums[code] / counts[code], np.nan) for code in sums}
    return ExpectedCurves(grid, share, tuple(day.election for day in days), dict(borrow or {}))


def row_shares(grid: FloatArray, matrix: FloatArray, hours: FloatArray) -> FloatArray:
    """Row i of `matrix` (a curve on the hours `grid`) read at hours[i], linear between known hours;
    NaN before the first, the last value after it (as `np.interp` in `share_at`)."""
    idx = np.clip(np.searchsorted(grid, hours, side="right") - 1, 0, len(grid) - 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.clip((hours - grid[idx]) / (grid[idx + 1] - grid[idx]), 0.0, 1.0)
    rows = np.arange(len(hours))
    out = matrix[rows, idx] * (1 - weight) + matrix[rows, idx + 1] * weight
    return np.where(hours < grid[0], np.nan, out)
