"""The worker process without a broker: how `build_worker` wires it, and `/metrics` over real loopback HTTP.

Running the worker (`run_worker`: Faust's Worker owning the loop, the agents consuming) needs the
broker and is covered by tests/services/test_replay.py and tests/streams/test_scale_out.py.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from streams.counts_hop import CountsHop
from streams.worker import AnnotatorService, MetricsServer, build_worker
from turnout_watch.core.settings import load_settings
from turnout_watch.core.topics import counts_group


def test_build_worker_wires_the_agent_the_counts_hop_and_the_metrics_server(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, history_dir=tmp_path / "no-history", topic_prefix="t1.", metrics_host="127.0.0.1"
    )
    app, worker = build_worker(settings, "127.0.0.1:9, 127.0.0.1:10,")
    assert worker.app is app
    assert [str(url) for url in app.conf.broker] == ["kafka://127.0.0.1:9", "kafka://127.0.0.1:10"]
    assert sorted(app.agents) == ["detect-releases"]
    assert set(app.agents["detect-releases"].channel.topics) == {
        "t1.releases",
        "t1.station-counts",
    }
    server, hop = worker.services  # no Grafana configured: no annotator
    # the counts hop is aiokafka's batched consumer in its own group, not a Faust agent
    assert isinstance(hop, CountsHop)
    assert isinstance(server, MetricsServer)
    assert (server.host, server.port) == ("127.0.0.1", settings.metrics_port)
    # the server serves the registry the agents' metrics live in: every region named, counters at 0
    registry = server.registry
    assert registry.get_sample_value("turnout_watch_region_info", {"region": "KZ-61", "name": "Turkistan Region"}) == 1
    assert registry.get_sample_value("turnout_watch_region_info", {"region": "KZ", "name": "Kazakhstan"}) == 1
    assert registry.get_sample_value("turnout_watch_broker_resets_total") == 0
    assert registry.get_sample_value("turnout_watch_events_malformed_total", {"stream": "releases"}) == 0


async def test_the_counts_hop_reads_observer_counts_in_its_own_group(tmp_path: Path) -> None:
    """Not Faust's group: a broker refuses members of one group subscribed to different topics."""
    settings = load_settings(data_dir=tmp_path, history_dir=tmp_path / "no-history", topic_prefix="t1.")
    _app, worker = build_worker(settings, "127.0.0.1:9, 127.0.0.1:10,")
    [hop] = [service for service in worker.services if isinstance(service, CountsHop)]
    consumer = hop._new_consumer()  # built, not started: no broker needed
    assert consumer._group_id == "turnout-watch-counts" == counts_group(settings) != settings.app_id
    assert consumer._client._bootstrap_servers == ["127.0.0.1:9", "127.0.0.1:10"]
    assert consumer._subscription.subscription.topics == {"t1.observer-counts"}
    assert not consumer._enable_auto_commit  # a batch is committed once its output is acknowledged
    await consumer.stop()


def test_a_grafana_url_adds_the_annotator_service(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, history_dir=tmp_path / "no-history", grafana_url="http://127.0.0.1:9", grafana_queue=7
    )
    _app, worker = build_worker(settings, "127.0.0.1:9")
    server, _hop, annotations = worker.services
    assert isinstance(server, MetricsServer) and isinstance(annotations, AnnotatorService)
    assert annotations.annotator.url == "http://127.0.0.1:9"
    assert annotations.annotator.queue.maxsize == 7


async def test_the_metrics_server_serves_its_registry_over_loopback() -> None:
    registry = CollectorRegistry()
    seen = Counter("probe_events", "events", ["stream"], registry=registry)
    seen.labels("releases").inc(3)
    server = MetricsServer(registry, "127.0.0.1", 0)  # 0: any free port, read back once started
    await server.start()
    try:
        assert server.port != 0
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
            seen.labels("releases").inc()  # read at scrape time: the next scrape shows 4
            async with session.get(f"{base}/metrics") as response:
                again = await response.text()
            async with session.get(f"{base}/healthz") as response:
                assert (response.status, await response.json()) == (200, {"status": "ok"})
            async with session.get(f"{base}/nothing") as response:
                assert response.status == 404
    finally:
        await server.stop()
    samples = {
        (s.name, s.labels.get("stream")): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }
    assert samples[("probe_events_total", "releases")] == 3.0
    assert 'probe_events_total{stream="releases"} 4.0' in again
    async with aiohttp.ClientSession() as session:  # stopped: the port no longer answers
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{base}/metrics")
