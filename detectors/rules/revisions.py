"""Release-level anomalies: a release from the past, and a published figure changed afterwards.

Both concern the release as a whole, not one region's anomaly that can persist; their flags are
published as they come, without the alert book.
"""

from __future__ import annotations

import numpy as np

from detectors.config import DetectorConfig
from detectors.types import Batch
from turnout_watch.core.gazetteer import NATIONAL
from turnout_watch.core.records import Flag


class TimeReversal:
    """A release as of an earlier time than one already processed: back in time, flagged on the nation.

    A release identical to one already processed is a redelivery (at-least-once, a rebalance), not
    news: only an old release we have not seen counts as going back in time.
    """

    detector = "time_reversal"

    def flags(self, b: Batch, config: DetectorConfig) -> list[Flag]:
        if not (b.now < b.latest_as_of and not b.duplicate):
            return []
        latest = b.local(b.latest_as_of)
        return [
            b.flag(
                NATIONAL,
                self.detector,
                "warning",
                b.now,
                b.latest_as_of,
                f"a release as of {b.local(b.now):%H:%M} arrived after one as of {latest:%H:%M}; "
                "the CEC republished an old release or back-dated a new one",
                {"latest_as_of": latest.isoformat(), "regions_not_seen_before": int(b.fresh.sum())},
            )
        ]


class ReleaseRevised:
    """A region's figure for an hour already published, changed: a revision after publication.

    Critical when it moved as far as a critical fall (`falling_critical_points`), up or down.
    """

    detector = "release_revised"

    def flags(self, b: Batch, config: DetectorConfig) -> list[Flag]:
        flags = []
        for i in np.flatnonzero(b.revised).tolist():
            change = float(b.value[i] - b.prev[i])
            flags.append(
                b.flag(
                    b.codes[i],
                    self.detector,
                    "critical" if abs(change) >= config.falling_critical_points else "warning",
                    float(b.value[i]),
                    float(b.prev[i]),
                    f"{b.name(b.codes[i])}'s figure as of {b.local(b.now):%H:%M} was revised from "
                    f"{b.prev[i]:.2f}% to {b.value[i]:.2f}% after publication",
                    {"previous": float(b.prev[i]), "change_points": round(change, 4), "revision": b.release.revision},
                )
            )
        return flags
