"""The spool on disk: appended records survive a reopen in order, a torn last line is dropped, the
drained offset is kept, and the files are reset once everything is drained."""

from __future__ import annotations

import json
import subprocess
import sys
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


#: Run in a child process whose files may not grow past a limit (RLIMIT_FSIZE, SIGXFSZ ignored): each
#: write past it fails with EFBIG, as a write on a full disk fails with ENOSPC.
DISK_FULL = """
import asyncio, json, resource, signal, sys
from pathlib import Path
from ingest.observers.errors import SpoolError
from ingest.observers.spool import Spool

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))

async def main() -> None:
    errors = []
    spool = Spool(Path(sys.argv[1]), on_error=lambda: errors.append(1))
    acked, failed = [], 0
    for n in range(200):
        try:
            await spool.append([("k", {"n": n, "pad": "x" * 300})])
            acked.append(n)
        except SpoolError:
            failed += 1
    healthy_while_full = spool.healthy
    await spool.mark_drained(5)  # the drainer took a few: a small offset file still fits
    drained_offset = len(spool)
    await spool.mark_drained(len(acked))  # all of it: the data file is emptied, space is back
    after = []
    for n in range(1000, 1003):
        await spool.append([("k", {"n": n})])
        after.append(n)
    spool.close()
    reopened = Spool(Path(sys.argv[1]))
    print(json.dumps({"acked": acked, "failed": failed, "errors": len(errors), "full_healthy": healthy_while_full,
                      "healthy": spool.healthy, "pending_after_drain_5": drained_offset,
                      "reopened": [e.value["n"] for e in reopened.pending()]}))

asyncio.run(main())
"""


def test_a_full_disk_is_survived_nothing_half_written_nothing_drained_comes_back(tmp_path: Path) -> None:
    """Issue 13: while full, appends fail (no false 2xx); the failed bytes must not linger in a buffer and
    land later, the spool must work again once there is room, and a reopen must hold exactly the records
    acknowledged and not drained."""
    limit = 16 * 1024
    run = subprocess.run(
        [sys.executable, "-c", DISK_FULL, str(tmp_path / "spool"), str(limit)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert 10 < len(out["acked"]) < 200 and out["failed"] == 200 - len(out["acked"])
    assert out["acked"] == list(range(len(out["acked"])))  # every write before the first failure, none after
    assert out["errors"] == out["failed"] and out["full_healthy"] is False and out["healthy"] is True
    assert out["pending_after_drain_5"] == len(out["acked"]) - 5
    assert out["reopened"] == [1000, 1001, 1002]  # the drained ones do not come back
    assert "spool write failed" in run.stderr and "writable again" in run.stderr


async def test_a_failed_offset_write_does_not_advance_the_offset(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    await spool.append([(str(n), {"n": n}) for n in range(4)])
    (tmp_path / "spool.tmp").mkdir()  # the offset's temporary file cannot be created: the write fails
    with pytest.raises(SpoolError, match="offset"):
        await spool.mark_drained(2)
    assert len(spool) == 4 and not spool.healthy  # still owed to the broker, as the disk says
    (tmp_path / "spool.tmp").rmdir()
    await spool.mark_drained(2)
    assert len(spool) == 2 and spool.healthy
    spool.close()
    assert [e.value["n"] for e in Spool(tmp_path).pending()] == [2, 3]


async def test_records_below_the_sending_mark_are_uncertain_after_a_reopen(tmp_path: Path) -> None:
    """A crash after the broker acknowledged a drained chunk, before the offset was written: the chunk
    must be checked against the topic, not sent again blindly."""
    spool = Spool(tmp_path)
    await spool.append([(str(n), {"n": n}) for n in range(5)])
    await spool.append([("5", {"n": 5})], [{0: 41}])  # a direct send that may have landed
    await spool.will_send(3, {0: 7, 1: 2})
    spool.close()  # the crash
    reopened = Spool(tmp_path)
    assert [(e.value["n"], e.floor) for e in reopened.pending()] == [
        (0, {0: 7, 1: 2}), (1, {0: 7, 1: 2}), (2, {0: 7, 1: 2}), (3, None), (4, None), (5, {0: 41})
    ]  # fmt: skip
    await reopened.mark_drained(6)
    assert not (tmp_path / "spool.sending").exists()
    reopened.close()
