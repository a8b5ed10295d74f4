"""The spool on disk: appended records survive a reopen in order, a torn last line is dropped, the
drained offset is kept, and the files are reset once everything is drained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.observers.errors import SpoolError
from ingest.observers.spool import Spool


async def test_appended_records_are_on_disk_in_order_with_their_seq(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    first = await spool.append([("75-0001", {"n": 1, "region": "Алматы"}), ("71-0001", {"n": 2})])
    second = await spool.append([("75-0001", {"n": 3})])
    assert [(e.seq, e.key, e.value["n"]) for e in first + second] == [(0, "75-0001", 1), (1, "71-0001", 2),
                                                                      (2, "75-0001", 3)]  # fmt: skip
    assert len(spool) == 3 and [e.seq for e in spool.pending(2)] == [0, 1]
    lines = (tmp_path / "spool" / "spool.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"key": "75-0001", "value": {"n": 1, "region": "Алматы"}}
    spool.close()
    reopened = Spool(tmp_path / "spool")
    assert [(e.seq, e.key, e.value) for e in reopened.pending(10)] == [(e.seq, e.key, e.value) for e in first + second]
    reopened.close()


async def test_drained_records_stay_drained_across_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    await spool.append([(str(n), {"n": n}) for n in range(5)])
    await spool.mark_drained(2)
    assert len(spool) == 3 and [e.value["n"] for e in spool.pending(10)] == [2, 3, 4]
    await spool.mark_drained(1)  # the offset never goes back
    assert len(spool) == 3
    spool.close()
    reopened = Spool(tmp_path)
    assert [e.value["n"] for e in reopened.pending(10)] == [2, 3, 4]
    assert (await reopened.append([("5", {"n": 5})]))[0].seq == 5  # numbering goes on after the reopen
    reopened.close()


async def test_files_reset_once_everything_is_drained(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    await spool.append([("a", {"n": 1}), ("b", {"n": 2})])
    await spool.mark_drained(2)
    assert len(spool) == 0 and spool.pending(10) == []
    assert (tmp_path / "spool.jsonl").stat().st_size == 0 and (tmp_path / "spool.offset").read_text() == "0"
    assert (await spool.append([("c", {"n": 3})]))[0].seq == 0
    spool.close()
    reopened = Spool(tmp_path)
    assert [e.value for e in reopened.pending(10)] == [{"n": 3}]
    reopened.close()


async def test_spool_drops_a_torn_last_line_and_keeps_its_offset(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    await spool.append([("a", {"n": 1}), ("b", {"n": 2}), ("c", {"n": 3})])
    await spool.mark_drained(1)
    spool.close()
    with open(tmp_path / "spool.jsonl", "ab") as fh:
        fh.write(b'{"key": "d", "val')  # a crash mid-write: never acknowledged
    reopened = Spool(tmp_path)
    assert [e.value["n"] for e in reopened.pending(10)] == [2, 3]
    assert (tmp_path / "spool.jsonl").read_bytes().endswith(b"}\n")  # cut back to the last whole line
    await reopened.mark_drained(3)
    assert len(reopened) == 0 and (tmp_path / "spool.jsonl").stat().st_size == 0
    reopened.close()


def test_an_unreadable_offset_is_a_spool_error(tmp_path: Path) -> None:
    (tmp_path / "spool.offset").write_text("not a number")
    with pytest.raises(SpoolError, match="cannot open the spool"):
        Spool(tmp_path)


def test_a_spool_where_a_file_stands_is_a_spool_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(SpoolError, match="cannot open the spool"):
        Spool(tmp_path / "taken")
