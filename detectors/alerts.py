"""One flag per anomaly: a surge that persists is not re-alerted every release; it escalates or resolves."""

from __future__ import annotations

from collections.abc import Iterable

from detectors.flags import SEVERITIES, Flag, Severity

_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


class AlertBook:
    """Which (region, detector) anomalies are active, and at what severity.

    A flag is published when its anomaly is new or its severity rose ("escalated"); a repeat at the
    same or a lower severity is held back. An anomaly resolves when a later figure of that region does
    not raise it: the next time it appears it is news again.
    """

    def __init__(self) -> None:
        self.active: dict[tuple[str, str], Severity] = {}

    def admit(self, flags: Iterable[Flag], assessed: Iterable[str], detectors: Iterable[str]) -> tuple[list[Flag], int]:
        """Filter `flags` raised for `assessed` regions by `detectors`; return (to publish, held back)."""
        raised = {(f.region_code, f.detector): f for f in flags}
        publish: list[Flag] = []
        held = 0
        for key, flag in raised.items():
            before = self.active.get(key)
            if before is not None and _RANK[flag.severity] <= _RANK[before]:
                held += 1
                continue
            if before is not None:
                flag = _escalated(flag, before)
            self.active[key] = flag.severity
            publish.append(flag)
        detectors = tuple(detectors)
        for code in assessed:
            for detector in detectors:
                if (code, detector) not in raised:
                    self.active.pop((code, detector), None)
        return publish, held


def _escalated(flag: Flag, before: Severity) -> Flag:
    from dataclasses import replace

    evidence = {**flag.evidence, "escalated_from": before}
    return replace(flag, message=f"{flag.message} (escalated from {before})", evidence=evidence)
