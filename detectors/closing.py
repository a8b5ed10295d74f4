"""Growth after polls close: only late reports can add to turnout once the doors shut."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

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
