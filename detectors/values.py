"""Impossible values: the rules no real count can break, whatever the region or the hour."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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
