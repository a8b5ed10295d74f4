"""DurablePublisher: straight to the broker while it answers (acks=all), else to the spool, and the spool
drained to the topic in the order the records were accepted. The real session broker, the real spool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.observers.publisher import DurablePublisher
from ingest.observers.spool import Spool
from tests.support.intake import make_settings, read_topic
from turnout_watch.core.records import ObserverCount
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames, ensure_topics
from turnout_watch.services.broker import EmbeddedBroker


def record(n: int, station: str = "75-0001") -> tuple[str, ObserverCount]:
    """The station's n-th count as the intake publishes it (the wire payload, read as the record)."""
    payload = {
        "type": "observer_count",
        "election": "kz-2022-11-20-presidential",
        "station": station,
        "region": "Almaty",
        "observer": "obs-1",
        "observed_at": f"2022-11-20T{8 + n:02d}:00:00+06:00",
        "received_at": f"2022-11-20T{8 + n:02d}:01:00+06:00",
        "registered": 2374,
        "voted": 100 * n,
        "source": "tally",
        "report_id": f"{station}-{n}",
        "region_code": "KZ-75",
        "accepted_at": f"2022-11-20T{8 + n:02d}:01:00.250+06:00",
    }
    return station, ObserverCount.from_dict(payload)


def on_topic(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["_key"], r["report_id"]) for r in records]


def topic_of(settings: Settings) -> str:
    return TopicNames.from_settings(settings).observer_counts


async def test_acknowledged_records_are_on_the_topic_keyed_and_in_order(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = make_settings(broker.bootstrap, tmp_path)
    await ensure_topics(broker.bootstrap, settings)
    spool, acks = Spool(tmp_path / "spool"), list[float]()
    publisher = DurablePublisher(broker.bootstrap, settings, topic_of(settings), spool, on_ack=acks.append)
    await publisher.start()
    try:
        assert publisher.broker_up
        sent = [record(n) for n in range(1, 6)] + [record(1, "71-0001")]
        assert await publisher.publish(sent) == ["broker"] * 6
        assert len(acks) == 6 and all(seconds >= 0 for seconds in acks)
        assert len(spool) == 0 and publisher.broker_up
        got = await read_topic(broker.bootstrap, topic_of(settings), 6)
        assert sorted(on_topic(got)) == sorted((key, str(r.report_id)) for key, r in sent)
        by_station = [rid for key, rid in on_topic(got) if key == "75-0001"]
        assert by_station == [f"75-0001-{n}" for n in range(1, 6)]  # one key, one partition: in order
        assert [{k: v for k, v in r.items() if k != "_key"} for r in got if r["_key"] == "71-0001"] == [
            sent[-1][1].to_dict()
        ]
    finally:
        await publisher.stop()
        spool.close()


async def test_spooled_records_reach_the_topic_before_newer_ones(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = make_settings(broker.bootstrap, tmp_path)
    spool = Spool(tmp_path / "spool")
    await spool.append([(key, r.to_dict()) for key, r in (record(1), record(2), record(3))])  # from a broker outage
    publisher = DurablePublisher(broker.bootstrap, settings, topic_of(settings), spool)
    try:
        assert publisher.spooling and not publisher.broker_up
        assert await publisher.publish([record(4), record(5)]) == ["spool", "spool"]  # behind the spooled ones
        await publisher.drain_once()  # connects, creates the topics, publishes the spool in order
        assert len(spool) == 0 and publisher.broker_up
        assert await publisher.publish([record(6)]) == ["broker"]
        got = await read_topic(broker.bootstrap, topic_of(settings), 6)
        assert on_topic(got) == [("75-0001", f"75-0001-{n}") for n in range(1, 7)]
        assert {k: v for k, v in got[0].items() if k != "_key"} == record(1)[1].to_dict()
    finally:
        await publisher.stop()
        spool.close()


async def test_without_a_broker_records_wait_in_the_spool(no_broker: str, tmp_path: Path) -> None:
    settings = make_settings(no_broker, tmp_path)
    spool = Spool(tmp_path / "spool")
    publisher = DurablePublisher(no_broker, settings, topic_of(settings), spool)
    await publisher.start()
    try:
        assert not publisher.broker_up
        assert await publisher.publish([]) == []
        assert await publisher.publish([record(1), record(2)]) == ["spool", "spool"]
        waiting = [(e.key, e.value) for e in spool.pending(10)]
        assert waiting == [(key, r.to_dict()) for key, r in (record(1), record(2))]
        await publisher.drain_once()  # the broker still refuses: nothing is lost, nothing moves
        assert len(spool) == 2 and publisher.spooling
    finally:
        await publisher.stop()
        spool.close()
    reopened = Spool(tmp_path / "spool")
    assert DurablePublisher(no_broker, settings, topic_of(settings), reopened).spooling  # a restart keeps spooling
    assert len(reopened) == 2
    reopened.close()
