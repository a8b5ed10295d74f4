"""The jump rules' evidence for many releases at once: one numpy call per batch of releases, not per release.

A release holds ~21 regions; on arrays that small every numpy call costs its overhead, not its work, and
the jump rules made ~150 of them per release (bench/agent_throughput.py --profile: the detectors were
the worker's largest cost). `prepare` lays the batches of many releases (of different elections, or one)
end to end and computes what the rules share — the phases, the rise and pace-change scores, the curve
model and its scores — in one pass, then hands each batch its own slice, in the batch's `shared` cache,
where the rules (through `detectors.types.shared`) find it as if they had computed it themselves.

Every number is the one the per-release functions in `detectors.rules.jumps` give, to the bit: the same
element-wise operations in the same order, and the medians are the same elements picked from the same
sorted values (tests/detectors/test_stacked.py holds the two side by side).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from detectors.config import DetectorConfig
from detectors.curves import row_shares
from detectors.robust import MAD_TO_SIGMA, RobustScores
from detectors.rules import jumps
from detectors.types import Batch

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_JUMP = jumps.jump_scores.__wrapped__  # type: ignore[attr-defined]  # the keys `shared` files results under
_PACE = jumps.pace_change_scores.__wrapped__  # type: ignore[attr-defined]
_MODEL = jumps.curve_model.__wrapped__  # type: ignore[attr-defined]
_CURVE_JUMP = jumps.curve_jump_scores.__wrapped__  # type: ignore[attr-defined]


def prepare(batches: Sequence[Batch], config: DetectorConfig) -> None:
    """Fill each batch's `shared` cache with its phases, jump and pace-change scores, curve model and
    curve-jump scores, computed for all the batches together. Batches already prepared are left alone."""
    todo = [b for b in batches if b.codes and (_JUMP, config) not in b.shared]
    if not todo:
        return
    sizes = [len(b.codes) for b in todo]
    starts = np.cumsum([0, *sizes])
    now = np.repeat(np.array([b.now for b in todo], dtype=np.float64), sizes)
    since = np.concatenate([b.since for b in todo])
    opens = np.concatenate([b.opens for b in todo])
    closes = np.concatenate([b.closes for b in todo])
    fresh = np.concatenate([b.fresh for b in todo])
    national = np.concatenate([b.national for b in todo])
    delta = np.concatenate([b.delta for b in todo])
    pace = np.concatenate([b.pace for b in todo])

    # phases (jumps._phases), all batches' arrays at once; the grouping is per region, in Python
    with np.errstate(invalid="ignore"):
        rising = (fresh & ~national & (now > since)).tolist()
    voting = _voting_hours(now, closes, opens, since).tolist()
    span = ((now - since) / 3600.0).tolist()
    elapsed = _voting_hours(now, closes, opens, opens).tolist()
    groups: list[list[list[int]]] = []  # per batch, its judged groups (indices into the batch)
    counts: list[int] = []  # per batch, how many regions rose
    for j, b in enumerate(todo):
        lo, hi = int(starts[j]), int(starts[j + 1])
        found = [i for i, up in enumerate(rising[lo:hi]) if up]
        phases = jumps.group_phases(found, voting[lo:hi], span[lo:hi], elapsed[lo:hi]) if found else []
        b.shared[jumps.phases] = phases
        groups.append(jumps.judged_groups(b, config))
        counts.append(sum(len(members) for _, members in phases))

    # rise rates (jumps.rise_rates) and the scores in the judged groups (jumps._scored_by_group)
    hours = (now - since) / 3600.0
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.where(hours > 0, delta / hours, np.nan)
    rows = [(starts[j] + np.array(members, dtype=np.intp)) for j in range(len(todo)) for members in groups[j]]
    peers = np.repeat(np.array(counts, dtype=np.int64), sizes)
    jump = _scores(rates, rows, peers, config.jump_scale_floor, config.jump_relative_floor)
    paced = _scores(rates - pace, rows, peers, config.jump_scale_floor, 0.0)
    for j, b in enumerate(todo):
        part = slice(int(starts[j]), int(starts[j + 1]))
        b.shared[_JUMP, config] = _slice(jump, part)
        b.shared[_PACE, config] = _slice(paced, part)

    _curve_models(todo, config, starts, now, since, fresh, national, hours)


def _curve_models(
    todo: list[Batch],
    config: DetectorConfig,
    starts: IntArray,
    now: FloatArray,
    since: FloatArray,
    fresh: npt.NDArray[np.bool_],
    national: npt.NDArray[np.bool_],
    hours: FloatArray,
) -> None:
    """`jumps.curve_model` and `jumps.curve_jump_scores` of every batch; batches on the same past curves together."""
    prev = np.concatenate([b.prev for b in todo])
    value = np.concatenate([b.value for b in todo])
    offset = np.concatenate([b.offset for b in todo])
    with np.errstate(invalid="ignore"):
        eligible = fresh & ~national & ~np.isnan(prev) & (prev > 0)
    enough = np.add.reduceat(eligible.astype(np.intp), starts[:-1]) >= config.jump_min_peers
    by_grid: dict[bytes, list[int]] = {}  # each election has its own curves (learned without it), most the same hours
    for j, b in enumerate(todo):
        if b.curves is None or not enough[j]:
            b.shared[_MODEL, config] = None
            b.shared[_CURVE_JUMP, config] = None
        else:
            by_grid.setdefault(b.curves.hours.tobytes(), []).append(j)
    for members in by_grid.values():
        grid = todo[members[0]].curves.hours  # type: ignore[union-attr]  # only batches with curves are here
        index = np.concatenate([np.arange(starts[j], starts[j + 1]) for j in members])
        sizes = [int(starts[j + 1] - starts[j]) for j in members]
        # Batch.local_hours of `since` and of now, element by element
        local_now = now[index] + offset[index]
        midnight = np.floor(local_now / 86400.0) * 86400.0
        h0 = (since[index] + offset[index] - midnight) / 3600.0
        h1 = (now[index] + offset[index] - midnight) / 3600.0
        matrix = np.concatenate([todo[j].curves.rows(todo[j].codes) for j in members])  # type: ignore[union-attr]
        s0, s1 = row_shares(grid, matrix, h0), row_shares(grid, matrix, h1)
        ok, p, v = eligible[index], prev[index], value[index]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(ok & (s0 > 0), s1 / s0, np.nan)
            observed = np.where(ok, (v / p) / ratio, np.nan)
        observed = np.where(np.isfinite(observed), observed, np.nan)
        days, have = _medians(observed, sizes)
        day = np.repeat(days, sizes)
        with np.errstate(invalid="ignore"):
            expected = np.minimum(p * ratio * day, 100.0)  # jumps.expected_curve_residuals
        residual = v - expected
        usable = ok & np.isfinite(ratio)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = np.where(usable & (hours[index] > 0), residual / hours[index], np.nan)
        lo = np.cumsum([0, *sizes])
        rows = [np.arange(lo[k], lo[k + 1]) for k in range(len(members)) if have[k]]
        scores = _scores(rates, rows, np.zeros(len(rates), dtype=np.int64), config.jump_scale_floor, 0.0)
        for k, j in enumerate(members):
            b = todo[j]
            if not have[k]:
                b.shared[_MODEL, config] = None
                b.shared[_CURVE_JUMP, config] = None
                continue
            part = slice(int(lo[k]), int(lo[k + 1]))
            assert b.curves is not None
            b.shared[_MODEL, config] = jumps.CurveModel(
                usable[part], ratio[part], float(days[k]), expected[part], residual[part], b.curves.elections
            )
            b.shared[_CURVE_JUMP, config] = _slice(scores, part)


def _voting_hours(now: FloatArray, closes: FloatArray, opens: FloatArray, start: FloatArray) -> FloatArray:
    """`Batch.voting_hours`, element by element."""
    with np.errstate(invalid="ignore"):
        span = np.minimum(now, closes) - np.maximum(start, opens)
    return np.asarray(np.where(np.isnan(span), np.nan, np.maximum(span, 0.0) / 3600.0))


def _medians(values: FloatArray, sizes: list[int]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """`robust.median` of the non-NaN values of each consecutive run of `sizes`; whether it had any."""
    padded = _padded(values, [np.arange(lo, lo + n) for lo, n in zip(np.cumsum([0, *sizes[:-1]]), sizes, strict=True)])
    ordered = np.sort(padded, axis=1)
    m = np.count_nonzero(~np.isnan(padded), axis=1)
    return _pick(ordered, m), m > 0


def _padded(values: FloatArray, rows: list[IntArray]) -> FloatArray:
    """The rows' values side by side, NaN after each row's end."""
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), np.nan)
    for k, r in enumerate(rows):
        out[k, : len(r)] = values[r]
    return out


def _pick(ordered: FloatArray, m: npt.NDArray[np.int64]) -> FloatArray:
    """The median of the first m[r] values of each sorted row r, as `robust._row_medians` takes it."""
    half = m // 2
    hi = np.clip(half, 0, ordered.shape[-1] - 1)
    lo = np.clip(half - 1, 0, ordered.shape[-1] - 1)
    upper = np.take_along_axis(ordered, hi[..., None], axis=-1)[..., 0]
    lower = np.take_along_axis(ordered, lo[..., None], axis=-1)[..., 0]
    return np.where(m % 2 == 1, upper + 0.0, (0.0 + lower + upper) / 2.0)


def _scores(
    values: FloatArray, rows: list[IntArray], peers: npt.NDArray[np.int64], scale_floor: float, relative_floor: float
) -> RobustScores:
    """`robust.robust_scores` of `values[row]` for every row, written back in place; elsewhere NaN and `peers`."""
    z, median, scale = np.full(len(values), np.nan), np.full(len(values), np.nan), np.full(len(values), np.nan)
    peers = peers.copy()
    if not rows:
        return RobustScores(z=z, peer_median=median, peer_scale=scale, peers=peers)
    x = _padded(values, rows)  # NaN: not a value (as robust_scores' NaN) or past the row's end
    r, width = x.shape
    valid = ~np.isnan(x)
    m = np.count_nonzero(valid, axis=1)
    # leave-one-out medians: the others of the value ranked q are the sorted row without its q-th element
    order = np.argsort(x, axis=1, kind="stable")
    ordered = np.take_along_axis(x, order, axis=1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(width), (r, width)), axis=1)
    k = (m - 1)[:, None]  # how many others
    half = k // 2
    last = width - 1

    def without(j: npt.NDArray[np.int64]) -> FloatArray:  # the j-th of the others (j may be the same for all)
        return np.take_along_axis(ordered, np.clip(j + (j >= rank), 0, last), axis=1)

    upper, lower = without(np.broadcast_to(half, (r, width))), without(np.broadcast_to(half - 1, (r, width)))
    own = np.where(k % 2 == 1, upper + 0.0, (0.0 + lower + upper) / 2.0)
    scored = valid & (m >= 2)[:, None]
    own = np.where(scored, own, np.nan)
    # MAD of the others around each value's own median: the others' deviations, sorted, NaN last
    deviations = np.abs(x[:, None, :] - own[:, :, None])
    deviations[:, np.arange(width), np.arange(width)] = np.nan
    deviations.sort(axis=2)
    mad = np.where(scored, _pick(deviations, np.broadcast_to(k, (r, width))), np.nan)
    with np.errstate(invalid="ignore"):
        row_scale = np.maximum(np.maximum(MAD_TO_SIGMA * mad, scale_floor), relative_floor * np.abs(own))
        row_z = (x - own) / row_scale
    row_peers = np.where(valid, np.maximum(m - 1, 0)[:, None], m[:, None])
    where = np.concatenate(rows)
    lengths = np.array([len(row) for row in rows])
    keep = np.arange(width)[None, :] < lengths[:, None]
    z[where], median[where], scale[where] = row_z[keep], own[keep], row_scale[keep]
    peers[where] = row_peers[keep]
    return RobustScores(z=z, peer_median=median, peer_scale=scale, peers=peers)


def _slice(scores: RobustScores, part: slice) -> RobustScores:
    z, median, scale, peers = scores.z[part], scores.peer_median[part], scores.peer_scale[part], scores.peers[part]
    return RobustScores(z=z, peer_median=median, peer_scale=scale, peers=peers)
