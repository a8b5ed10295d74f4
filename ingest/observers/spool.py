"""A local, fsync'd, append-only spool of records the broker could not take (yet).

When the broker is down the intake still answers 2xx, but only once the record is on disk: appended
to `spool.jsonl` and fsync'd (file and, on creation, directory). The drainer publishes records in the
order they were appended and advances `spool.offset` (written atomically) past what the broker
acknowledged; once everything is drained both files are reset. A line cut short by a crash was never
acknowledged to anyone (its fsync had not returned), so it is dropped on open.

*Uncertain* records are those whose send may already have landed on the topic: a line can say so
itself (`"floor"`: the offsets per partition the broker had acknowledged before that send, so the check
reads only what came after), and before the drainer sends anything it writes `spool.sending` (the seq
it sends up to, and the floor). After a crash every record below that mark that is not drained yet is
uncertain too, so a chunk acknowledged just before a crash is checked against the topic, not sent again.

A full disk is survived: a failed append is cut back to the last whole line and the file reopened
(nothing half-written stays in a buffer), the in-memory offset moves only after the offset file was
written, and the next append after space returns works as if nothing happened. `on_error` (metrics)
hears of every failed write.

Each line is `{"key": ..., "value": ...}` (plus `"floor"` when uncertain); the value is a record's
payload as the topic carries it (`ObserverCount.to_dict()`, which the publisher's codec sends as it is).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.observers.errors import SpoolError

log = logging.getLogger(__name__)

Floor = dict[int, int]  # partition -> last offset acknowledged before a send (-1: none)


@dataclass
class SpoolEntry:
    seq: int  # position in the spool file, 0-based, since the last reset
    key: str
    value: dict[str, Any]
    floor: Floor | None = None  # set when uncertain: the send may have landed after these offsets


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _floor(obj: Any) -> Floor:
    return {int(p): int(o) for p, o in dict(obj).items()}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Spool:
    """The on-disk queue. Appends are serialised by a lock; reads are of what is already on disk."""

    def __init__(self, directory: Path, on_error: Callable[[], None] | None = None) -> None:
        self.directory = directory
        self.data_path = directory / "spool.jsonl"
        self.offset_path = directory / "spool.offset"
        self.sending_path = directory / "spool.sending"
        self.on_error = on_error
        self.healthy = True  # False from a failed write until the next one succeeds
        self._lock = asyncio.Lock()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._entries = self._load()
            self._offset = int(self.offset_path.read_text()) if self.offset_path.exists() else 0
            self._offset = min(self._offset, len(self._entries))
            self._sending = self._load_sending()
            self._fd: int | None = self._open()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SpoolError(f"cannot open the spool in {directory}: {exc}") from exc

    def _open(self) -> int:
        fd = os.open(self.data_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.ftruncate(fd, self._size)  # nothing after the last whole line
        return fd

    def _load(self) -> list[SpoolEntry]:
        self._size = 0
        if not self.data_path.exists():
            return []
        data = self.data_path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        self._size = len(complete)
        entries = []
        for seq, line in enumerate(complete.splitlines()):
            obj = json.loads(line)
            floor = _floor(obj["floor"]) if "floor" in obj else None
            entries.append(SpoolEntry(seq, obj["key"], obj["value"], floor))
        return entries

    def _load_sending(self) -> tuple[int, Floor]:
        """The mark of the last send; entries below it not drained yet become uncertain."""
        if not self.sending_path.exists():
            return (0, {})
        mark = json.loads(self.sending_path.read_text())
        upto, floor = min(int(mark["upto"]), len(self._entries)), _floor(mark["floor"])
        for entry in self._entries[self._offset : upto]:
            if entry.floor is None:
                entry.floor = dict(floor)
        return (upto, floor)

    def __len__(self) -> int:
        """Records waiting to be drained."""
        return len(self._entries) - self._offset

    def pending(self, limit: int | None = None) -> list[SpoolEntry]:
        return self._entries[self._offset : None if limit is None else self._offset + limit]

    def _failed(self, what: str, exc: OSError) -> SpoolError:
        if self.healthy:
            log.error("spool write failed (%s %s: %s); accepted reports cannot be spooled until it works", what,
                      self.directory, exc)  # fmt: skip
        self.healthy = False
        if self.on_error is not None:
            self.on_error()
        return SpoolError(f"cannot {what} {self.directory}: {exc}")

    def _recovered(self) -> None:
        if not self.healthy:
            log.warning("spool in %s writable again", self.directory)
            self.healthy = True

    async def append(
        self, records: list[tuple[str, dict[str, Any]]], floors: list[Floor | None] | None = None
    ) -> list[SpoolEntry]:
        """Write and fsync; returns only once the records are durable on disk (floors mark uncertain ones)."""
        floors = floors if floors is not None else [None] * len(records)
        async with self._lock:
            start = len(self._entries)
            lines = []
            for (key, value), floor in zip(records, floors, strict=True):
                obj: dict[str, Any] = {"key": key, "value": value}
                if floor is not None:
                    obj["floor"] = floor
                lines.append(json.dumps(obj, ensure_ascii=False).encode() + b"\n")
            data = b"".join(lines)
            try:
                if self._fd is None:  # a write failed before: start again from the last whole line
                    self._fd = self._open()
                _write_all(self._fd, data)
                await asyncio.to_thread(os.fsync, self._fd)
                if start == 0:
                    await asyncio.to_thread(_fsync_dir, self.directory)
            except OSError as exc:
                self._drop_tail()
                raise self._failed("write the spool in", exc) from exc
            self._size += len(data)
            self._recovered()
            entries = [
                SpoolEntry(start + i, k, v, f) for i, ((k, v), f) in enumerate(zip(records, floors, strict=True))
            ]
            self._entries.extend(entries)
            return entries

    def _drop_tail(self) -> None:
        """After a failed append: cut the file back to its last whole line, or reopen it on the next append."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _replace(self, path: Path, text: str) -> None:
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    async def will_send(self, upto: int, floor: Mapping[int, int]) -> None:
        """Before records below seq `upto` are handed to the producer: after a crash they are uncertain.

        The mark keeps the floor of the earliest send not yet drained (the lowest offsets to check from)."""
        async with self._lock:
            if upto <= self._sending[0] and self._sending[0] > self._offset:
                return
            keep = self._sending[1] if self._sending[0] > self._offset else dict(floor)
            mark = (max(upto, self._sending[0]), keep)
            try:
                self._replace(self.sending_path, json.dumps({"upto": mark[0], "floor": mark[1]}))
            except OSError as exc:
                raise self._failed("write the sending mark in", exc) from exc
            self._sending = mark

    async def mark_drained(self, upto: int) -> None:
        """Everything before seq `upto` is on the broker; reset the files once all of it is.

        The offset moves in memory only once it is on disk. A reset writes offset 0 first, then empties
        the data: a crash between leaves the records on disk but below the sending mark, so they are
        checked against the topic, not sent again."""
        async with self._lock:
            offset = max(self._offset, upto)
            try:
                if offset < len(self._entries):
                    self._replace(self.offset_path, str(offset))
                    self._offset = offset
                else:
                    self._replace(self.offset_path, "0")
                    self._offset = offset  # all drained, though the data file still holds them
                    if self._fd is None:
                        self._fd = self._open()
                    os.ftruncate(self._fd, 0)
                    os.fsync(self._fd)
                    self._entries, self._size, self._offset = [], 0, 0
                    with contextlib.suppress(OSError):
                        self.sending_path.unlink()  # seqs start again at 0: the old mark means nothing
                    self._sending = (0, {})
            except OSError as exc:
                raise self._failed("update the spool offset in", exc) from exc
            self._recovered()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
