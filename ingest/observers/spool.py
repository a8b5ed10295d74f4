"""A local, fsync'd, append-only spool of records the broker could not take (yet).

When the broker is down the intake still answers 2xx, but only once the record is on disk: appended
to `spool.jsonl` and fsync'd (file and, on creation, directory). The drainer publishes records in the
order they were appended and advances `spool.offset` (written atomically) past what the broker
acknowledged; once everything is drained both files are reset. A line cut short by a crash was never
acknowledged to anyone (its fsync had not returned), so it is dropped on open.

The window that remains: a crash after the broker acknowledged a drained chunk but before the offset
was written re-publishes that chunk on restart. Consumers therefore still dedupe on `report_id`.

Each line is `{"key": ..., "value": ...}`; the value is a record's payload as the topic carries it
(`ObserverCount.to_dict()`, which the publisher's codec sends as it is).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.observers.errors import SpoolError


@dataclass
class SpoolEntry:
    seq: int  # position in the spool file, 0-based, since the last reset
    key: str
    value: dict[str, Any]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The on-disk queue. Appends are serialised by a lock; reads are of what is already on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data_path = directory / "spool.jsonl"
        self.offset_path = directory / "spool.offset"
        self._lock = asyncio.Lock()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._entries = self._load()
            self._offset = int(self.offset_path.read_text()) if self.offset_path.exists() else 0
            self._file = open(self.data_path, "ab")  # noqa: SIM115 - kept open for appends
        except (OSError, ValueError) as exc:
            raise SpoolError(f"cannot open the spool in {directory}: {exc}") from exc
        self._offset = min(self._offset, len(self._entries))

    def _load(self) -> list[SpoolEntry]:
        if not self.data_path.exists():
            return []
        data = self.data_path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a torn last line: never acknowledged, drop it
            with open(self.data_path, "r+b") as fh:
                fh.truncate(len(complete))
                os.fsync(fh.fileno())
        entries = []
        for seq, line in enumerate(complete.splitlines()):
            obj = json.loads(line)
            entries.append(SpoolEntry(seq, obj["key"], obj["value"]))
        return entries

    def __len__(self) -> int:
        """Records waiting to be drained."""
        return len(self._entries) - self._offset

    def pending(self, limit: int) -> list[SpoolEntry]:
        return self._entries[self._offset : self._offset + limit]

    async def append(self, records: list[tuple[str, dict[str, Any]]]) -> list[SpoolEntry]:
        """Write and fsync; returns only once the records are durable on disk."""
        async with self._lock:
            start = len(self._entries)
            lines = b"".join(
                json.dumps({"key": k, "value": v}, ensure_ascii=False).encode() + b"\n" for k, v in records
            )
            try:
                self._file.write(lines)
                self._file.flush()
                await asyncio.to_thread(os.fsync, self._file.fileno())
                if start == 0:
                    await asyncio.to_thread(_fsync_dir, self.directory)
            except OSError as exc:
                raise SpoolError(f"cannot write the spool {self.data_path}: {exc}") from exc
            entries = [SpoolEntry(start + i, k, v) for i, (k, v) in enumerate(records)]
            self._entries.extend(entries)
            return entries

    async def mark_drained(self, upto: int) -> None:
        """Everything before seq `upto` is on the broker; reset the files once all of it is."""
        async with self._lock:
            self._offset = max(self._offset, upto)
            try:
                if self._offset >= len(self._entries):
                    self._file.truncate(0)
                    self._file.flush()
                    os.fsync(self._file.fileno())
                    self._entries, self._offset = [], 0
                tmp = self.offset_path.with_suffix(".tmp")
                with open(tmp, "w") as fh:
                    fh.write(str(self._offset))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.offset_path)
            except OSError as exc:
                raise SpoolError(f"cannot update the spool offset in {self.directory}: {exc}") from exc

    def close(self) -> None:
        self._file.close()
