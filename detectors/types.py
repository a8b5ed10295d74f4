"""What a detector rule is and what it reads (in the style of quix-streams' `state/types.py`).

A rule is one detector, whole: its name, its test on the aligned arrays of a batch, and the
severity, message and evidence of every flag it raises. Rules keep no state. What the tracker
remembers (each region's previous figure, the latest release) reaches them inside the batch, and
the alert book, not the rule, decides whether a flag is news or a repeat. So a rule reads top to
bottom in one module of `detectors/rules/`, and can be tested on a batch built by hand.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

import numpy as np
import numpy.typing as npt

from detectors.config import DetectorConfig
from detectors.curves import ExpectedCurves
from turnout_watch.core.gazetteer import NATIONAL
from turnout_watch.core.records import Flag, Release, Severity

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BatchT_contra = TypeVar("BatchT_contra", contravariant=True)
T = TypeVar("T")


class Rule(Protocol[BatchT_contra]):
    """One detector: `flags` applies its test to a batch and words a flag for each hit."""

    @property
    def detector(self) -> str:
        """The detector name its flags carry (one of `turnout_watch.core.records.DETECTORS`)."""
        ...

    def flags(self, batch: BatchT_contra, config: DetectorConfig) -> list[Flag]:
        """A flag for every region (or station) of `batch` that breaks the rule, in the batch's order."""
        ...


@dataclass(frozen=True)
class Scope:
    """Where a batch's flags belong: the election, the release time they speak for, the regions' names."""

    election: str
    as_of: str
    names: Mapping[str, str]

    def name(self, code: str) -> str:
        return self.names.get(code, code)

    def flag(
        self,
        code: str,
        detector: str,
        severity: Severity,
        value: float,
        expected: float | None,
        message: str,
        evidence: dict[str, Any],
    ) -> Flag:
        """A region's flag; `value` and `expected` are rounded to 4 decimals, as the flags file shows them."""
        return Flag(
            self.election,
            self.name(code),
            code,
            self.as_of,
            detector,
            severity,
            round(value, 4),
            None if expected is None else round(expected, 4),
            message,
            evidence,
        )


@dataclass(frozen=True)
class Batch(Scope):
    """One release as aligned arrays across its regions, with what the tracker knew before it.

    Region i is `codes[i]`; `prev` and `prev_t` are its previous figure and time (NaN: never seen).
    Every region runs on its own clock: `opens`/`closes` are its own polling instants (unix seconds,
    NaN: unknown), `offset` its UTC offset on the day (seconds: its local hours), `since` when its
    previous figure was first reported (earlier than `prev_t` when a release repeated a stale figure)
    and `pace` its points per hour over the last interval its figure moved in (NaN: unknown).
    """

    release: Release
    codes: list[str]
    value: FloatArray
    prev: FloatArray
    prev_t: FloatArray
    fresh: BoolArray  # newer than the region's last figure
    revised: BoolArray  # same as_of as the last figure, different value
    national: BoolArray
    now: float
    delta: FloatArray  # points since the region's previous figure
    hours: FloatArray  # hours since it
    latest_as_of: float  # the latest release time processed before this release (-inf: none)
    duplicate: bool  # this very release (time and figures) was processed before: a redelivery
    curves: ExpectedCurves | None  # the past days' curves, for the expected-curve rules
    opens: FloatArray
    closes: FloatArray
    offset: FloatArray
    since: FloatArray
    pace: FloatArray
    shared: dict[object, object] = field(default_factory=dict, init=False, repr=False, compare=False)  # see `shared`

    @classmethod
    def of(
        cls,
        release: Release,
        last_value: Mapping[str, float] | None = None,
        last_time: Mapping[str, float] | None = None,
        *,
        latest_as_of: float = float("-inf"),
        duplicate: bool = False,
        names: Mapping[str, str] | None = None,
        curves: ExpectedCurves | None = None,
        since: Mapping[str, float] | None = None,
        pace: Mapping[str, float] | None = None,
    ) -> Batch:
        """The batch of `release`, given each region's last figure and its time (unix seconds).

        `since` (when each last figure was first reported; default its time) and `pace` (points per
        hour of its last move) are what the tracker remembers of stale figures and recent pace.
        """
        last_value, last_time = last_value or {}, last_time or {}
        since, pace = since or {}, pace or {}
        codes = list(release.turnout)
        now = release.as_of.timestamp()
        value = np.array(list(release.turnout.values()), dtype=np.float64)  # in the order of `codes`
        prev = np.array([last_value.get(c, np.nan) for c in codes], dtype=np.float64)
        prev_t = np.array([last_time.get(c, np.nan) for c in codes], dtype=np.float64)
        fresh = ~(prev_t >= now)  # NaN (never seen) counts as fresh
        revised = (prev_t == now) & (value != prev)
        national = np.array([c == NATIONAL for c in codes], dtype=bool)
        delta, hours = value - prev, (now - prev_t) / 3600.0
        fallback = release.as_of.astimezone(release.zone).utcoffset()
        if release.polls_open_by_region or release.polls_close_by_region:
            opens = np.array([_seconds(release.opens_of(c)) for c in codes], dtype=np.float64)
            closes = np.array([_seconds(release.closes_of(c)) for c in codes], dtype=np.float64)
            offset = np.array(
                [_offset(release.closes_of(c) or release.opens_of(c), fallback) for c in codes], dtype=np.float64
            )
        else:  # every region on the day's hours
            day_open, day_close = release.polls_open, release.polls_close
            opens = np.full(len(codes), _seconds(day_open), dtype=np.float64)
            closes = np.full(len(codes), _seconds(day_close), dtype=np.float64)
            offset = np.full(len(codes), _offset(day_close or day_open, fallback), dtype=np.float64)
        before = np.array([since.get(c, last_time.get(c, np.nan)) for c in codes], dtype=np.float64)
        return cls(
            election=release.election,
            as_of=release.as_of.isoformat(),
            names=names or {},
            release=release,
            codes=codes,
            value=value,
            prev=prev,
            prev_t=prev_t,
            fresh=fresh,
            revised=revised,
            national=national,
            now=now,
            delta=delta,
            hours=hours,
            latest_as_of=latest_as_of,
            duplicate=duplicate,
            curves=curves,
            opens=opens,
            closes=closes,
            offset=offset,
            since=np.fmin(before, prev_t),
            pace=np.array([pace.get(c, np.nan) for c in codes], dtype=np.float64),
        )

    def local(self, when: float) -> datetime:
        """Unix time `when` in the release's zone (for messages: "since 14:00")."""
        return datetime.fromtimestamp(when, tz=self.release.zone)

    def local_hours(self, seconds: FloatArray) -> FloatArray:
        """Region i's local hour of day at `seconds[i]`, counted from its local midnight of this release's day."""
        local_now = self.now + self.offset
        midnight = np.floor(local_now / 86400.0) * 86400.0
        return np.asarray((np.asarray(seconds, dtype=np.float64) + self.offset - midnight) / 3600.0)

    def voting_hours(self, start: FloatArray) -> FloatArray:
        """Hours of region i's own polling window inside (`start[i]`, now] (NaN where its hours are unknown)."""
        with np.errstate(invalid="ignore"):
            span = np.minimum(self.now, self.closes) - np.maximum(start, self.opens)
        return np.asarray(np.where(np.isnan(span), np.nan, np.maximum(span, 0.0) / 3600.0))


def _seconds(when: datetime | None) -> float:
    return when.timestamp() if when is not None else float("nan")


def _offset(when: datetime | None, fallback: timedelta | None) -> float:
    delta = when.utcoffset() if when is not None else None
    delta = delta if delta is not None else fallback
    return delta.total_seconds() if delta is not None else 0.0


def shared(compute: Callable[[Batch, DetectorConfig], T]) -> Callable[[Batch, DetectorConfig], T]:
    """Evidence more than one reader needs (the jump scores, the curve model): computed once per batch.

    The tracker exports the jump scores and two rules read the curve model; each calls the function
    as if it were alone, and the result is kept in the batch it was computed from.
    """

    @functools.wraps(compute)
    def once(b: Batch, config: DetectorConfig) -> T:
        key = (compute, config)
        if key not in b.shared:
            b.shared[key] = compute(b, config)
        return cast(T, b.shared[key])

    return once
