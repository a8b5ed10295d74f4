"""One flag per anomaly: a surge that persists is not re-alerted every release; it escalates or resolves."""

from __future__ import annotations

from collections.abc import Iterable

from turnout_watch.core.records import SEVERITIES, Flag, Severity

_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


class AlertBook:
    """Which (region, detector) anomalies are active, and at what severity.

    A flag is published when its anomaly is new or its severity rose ("escalated"); a repeat at the
    same or a lower severity is held back. An anomaly resolves when a later figure of that region does
    not raise it: the next time it appears it is news again.
    """

    def __init__(self) -> None:
        self.active: dict[tuple[str, str, str | None], Severity] = {}
        # active keys by where they are (station, else region code): a station's counts are judged one by
        # one (detectors.station_ledger), so resolving must not scan every active anomaly each time
        self._at: dict[str, set[tuple[str, str, str | None]]] = {}

    def admit(self, flags: Iterable[Flag], assessed: Iterable[str], detectors: Iterable[str]) -> tuple[list[Flag], int]:
        """Filter `flags` raised for `assessed` regions (or stations) by `detectors`; return (to publish, held back).

        `assessed` names the regions (region codes) or stations (station ids) the detectors looked at
        this time: their active anomalies that were not raised again are resolved.
        """
        raised: set[tuple[str, str, str | None]] = set()
        publish: list[Flag] = []
        held = 0
        for flag in flags:  # in order: of two flags of one anomaly in a batch, the earlier is the news
            key = (flag.region_code, flag.detector, flag.station)
            raised.add(key)
            before = self.active.get(key)
            if before is not None and _RANK[flag.severity] <= _RANK[before]:
                held += 1
                continue
            if before is not None:
                flag = _escalated(flag, before)
            self.active[key] = flag.severity
            self._at.setdefault(flag.station if flag.station is not None else flag.region_code, set()).add(key)
            publish.append(flag)
        detectors = set(detectors)
        for where in set(assessed):
            keys = self._at.get(where)
            if not keys:
                continue
            for key in [k for k in keys if k not in raised and k[1] in detectors]:
                del self.active[key]
                keys.discard(key)
        return publish, held


def _escalated(flag: Flag, before: Severity) -> Flag:
    from dataclasses import replace

    evidence = {**flag.evidence, "escalated_from": before}
    return replace(flag, message=f"{flag.message} (escalated from {before})", evidence=evidence)
