"""The intake API through `aiohttp_client(create_app(settings))`.

Most tests need no broker: their settings point at an address that refuses connections, so the app
answers from its spool (`offline`). The tests that check what reaches the topic, and the broker's
own metrics, publish to the real session broker.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_aiohttp import AiohttpClient

from ingest.observers import store
from ingest.observers.registry import Station, save_stations
from ingest.observers.tokens import revoke_token
from ingest.observers.views import _openapi_text
from tests.support.intake import IntakeClient, intake_client, make_settings, read_topic
from turnout_watch.core.settings import Settings
from turnout_watch.services.broker import EmbeddedBroker

NOON = "2022-11-20T12:00:00+06:00"


def count(station: str = "75-0001", voted: int = 800, at: str = NOON, **extra: Any) -> dict[str, Any]:
    return {"station": station, "observed_at": at, "voted": voted, **extra}


@pytest.fixture
async def intake(aiohttp_client: AiohttpClient, offline: Settings) -> IntakeClient:
    return await intake_client(aiohttp_client, offline)


@pytest.fixture
async def on_broker(aiohttp_client: AiohttpClient, broker: EmbeddedBroker, tmp_path: Path) -> IntakeClient:
    return await intake_client(aiohttp_client, make_settings(broker.bootstrap, tmp_path))


async def post(env: IntakeClient, body: Any, who: str | None = "obs1") -> tuple[int, Any]:
    headers = env.auth(who) if who else {}
    async with env.client.post("/v1/counts", json=body, headers=headers) as response:
        return response.status, await response.json()


def codes(item: dict[str, Any]) -> set[str]:
    return {e["code"] for e in item.get("errors", ())}


async def test_auth_no_token_wrong_token_revoked_and_other_station(intake: IntakeClient) -> None:
    http = intake.client
    status, body = await post(intake, count(), who=None)
    assert status == 401 and "Authorization: Bearer" in body["error"]["message"]
    async with http.post("/v1/counts", json=count(), headers={"Authorization": "Bearer nonsense"}) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    real = intake.tokens["obs1"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")  # right id, wrong secret
    async with http.post("/v1/counts", json=count(), headers={"Authorization": f"Bearer {forged}"}) as r:
        assert r.status == 401 and "wrong token" in (await r.json())["error"]["message"]
    status, body = await post(intake, count(), who="revoked")
    assert status == 401 and "revoked" in body["error"]["message"]
    status, body = await post(intake, count("75-0002"), who="obs1")  # another observer's station
    assert status == 403 and codes(body["items"][0]) == {"forbidden"}
    status, body = await post(intake, count("71-0001", 10), who="almaty")  # Astana, not Almaty
    assert status == 403
    status, body = await post(intake, count("75-0002", 10), who="almaty")  # a coordinator's region
    assert status == 200 and body["accepted"] == 1


async def test_revocation_takes_effect_on_the_running_app(intake: IntakeClient) -> None:
    assert (await post(intake, count()))[0] == 200
    conn = store.connect(store.db_path(intake.settings))  # as `turnout-watch tokens revoke` does
    revoke_token(conn, intake.tokens["obs1"])
    conn.close()
    status, body = await post(intake, count(voted=900, at="2022-11-20T14:00:00+06:00"))
    assert status == 401 and "revoked" in body["error"]["message"]


async def upload_slowly(
    intake: IntakeClient, payload: dict[str, Any], meanwhile: Callable[[], None]
) -> tuple[int, dict[str, Any]]:
    """POST `payload` in two parts, 0.2 s apart (the server has the headers, and authenticates, in
    between); `meanwhile` runs before the second part is sent."""
    done = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        text = json.dumps(payload).encode()
        yield text[:10]
        await asyncio.sleep(0.2)
        meanwhile()
        done.set()
        yield text[10:]

    headers = {**intake.auth("obs1"), "Content-Type": "application/json"}
    async with intake.client.post("/v1/counts", data=body(), headers=headers) as response:
        answer = await response.json()
    assert done.is_set()
    return response.status, answer


async def test_a_registry_change_while_the_body_uploads_applies_to_it(intake: IntakeClient) -> None:
    """The CLI corrects station 75-0001's voters (2,374 -> 3,000) after the request's headers were
    authenticated but before its body has all arrived: the count is checked against the new registry."""

    def correct() -> None:
        conn = store.connect(store.db_path(intake.settings))  # as `turnout-watch stations import` does
        save_stations(conn, [Station("75-0001", "Almaty", "KZ-75", 3000)])
        conn.close()

    status, answer = await upload_slowly(intake, count(voted=2500), correct)
    assert status == 200 and answer["accepted"] == 1, answer
    status, after = await post(intake, count(voted=3100, at="2022-11-20T14:00:00+06:00"))  # and after it
    assert status == 422 and codes(after["items"][0]) == {"exceeds_registered"}


async def test_a_token_revoked_while_the_body_uploads_is_refused(intake: IntakeClient) -> None:
    """`tokens revoke` runs after the request's headers were authenticated, before its body has all
    arrived: nothing of it is taken (401), as for the next request."""

    def revoke() -> None:
        conn = store.connect(store.db_path(intake.settings))  # as `turnout-watch tokens revoke` does
        revoke_token(conn, intake.tokens["obs1"])
        conn.close()

    status, answer = await upload_slowly(intake, count(), revoke)
    assert status == 401 and "revoked" in answer["error"]["message"], answer


async def test_csv_upload_reports_lines(intake: IntakeClient) -> None:
    http = intake.client
    text = (
        "station,observed_at,voted,source,registered\n"
        "75-0001,2022-11-20T10:00:00+06:00,300,tally,\n"
        "75-0002,2022-11-20T10:00:00+06:00,9999,tally,\n"
        "71-0001,2022-11-20T10:00:00+06:00,200,commission,1800\n"  # the registry's figure, repeated
        "75-0002,2022-11-20T10:00:00+06:00,9,tally,10\n"  # a forged list size: not the registry's 1500
    )
    headers = {**intake.auth("all"), "Content-Type": "text/csv"}
    async with http.post("/v1/counts.csv", data=text.encode(), headers=headers) as response:
        body = await response.json()
        assert response.status == 200
    assert [(i["line"], i["status"]) for i in body["items"]] == [
        (2, "accepted"),
        (3, "rejected"),
        (4, "accepted"),
        (5, "rejected"),
    ]
    assert codes(body["items"][1]) == {"exceeds_registered"}
    assert codes(body["items"][3]) == {"registered_mismatch"}
    assert body["items"][3]["errors"][0]["params"] == {"registered": 10, "station_registered": 1500}
    async with http.get("/v1/stations/71-0001", headers=intake.auth("obs2")) as response:
        view = await response.json()
    assert view["region_code"] == "KZ-71" and view["last"]["commission"]["registered"] == 1800
    assert view["last"]["tally"] is None
    async with http.get("/v1/stations/71-0001", headers=intake.auth("obs1")) as response:
        assert response.status == 403
    async with http.get("/v1/stations/00-0000", headers=intake.auth("obs1")) as response:
        assert response.status == 404 and (await response.json())["error"]["code"] == "unknown_station"


async def test_rate_limit_and_size_limit(aiohttp_client: AiohttpClient, no_broker: str, tmp_path: Path) -> None:
    settings = make_settings(no_broker, tmp_path, observers_rate=0.01, observers_burst=2, observers_max_body=2048)
    env = await intake_client(aiohttp_client, settings)
    assert (await post(env, count(voted=1)))[0] == 200
    assert (await post(env, count(voted=1)))[0] == 200
    async with env.client.post("/v1/counts", json=count(voted=2), headers=env.auth("obs1")) as response:
        assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
        assert (await response.json())["error"]["code"] == "rate_limited"
    assert (await post(env, count("75-0002", 5), who="obs2"))[0] == 200  # per token
    big = [count(voted=i) for i in range(100)]
    async with env.client.post("/v1/counts", json=big, headers=env.auth("obs2")) as response:
        assert response.status == 413 and "2048 bytes" in (await response.json())["error"]["message"]
    metrics = await (await env.client.get("/metrics")).text()
    assert "turnout_watch_intake_rate_limited_total 1.0" in metrics
    assert 'turnout_watch_intake_requests_total{route="counts",status="429"} 1.0' in metrics


async def test_malformed_requests_get_json_errors(
    aiohttp_client: AiohttpClient, no_broker: str, tmp_path: Path
) -> None:
    env = await intake_client(aiohttp_client, make_settings(no_broker, tmp_path, observers_max_batch=2))
    http, auth = env.client, env.auth("obs1")

    async def answer(method: str, path: str, **kwargs: Any) -> tuple[int, str, str]:
        async with http.request(method, path, **kwargs) as response:
            error = (await response.json())["error"]
            return response.status, error["code"], error["message"]

    json_auth = {**auth, "Content-Type": "application/json"}
    csv_auth = {**auth, "Content-Type": "text/csv"}
    status, code, message = await answer("POST", "/v1/counts", data=b"{", headers=json_auth)
    assert (status, code) == (400, "bad_json") and message.startswith("the body is not JSON")
    assert await answer("POST", "/v1/counts", json=[], headers=auth) == (400, "empty", "no counts in the request")
    assert await answer("POST", "/v1/counts", json=[{}, {}, {}], headers=auth) == (
        413,
        "too_many",
        "3 counts in one request; at most 2",
    )
    assert await answer("POST", "/v1/counts.csv", data=b"station,voted\n1,2,3\n", headers=csv_auth) == (
        400,
        "bad_csv",
        "line 2 has more cells than the header",
    )
    status, code, message = await answer("POST", "/v1/counts.csv", data=b"station,voted\n\xff,2\n", headers=csv_auth)
    assert (status, code) == (400, "bad_csv") and "not UTF-8 CSV" in message
    assert await answer("GET", "/nope") == (404, "not_found", "404: Not Found")
    async with http.get("/v1/counts") as response:
        assert response.status == 405 and response.headers["Allow"] == "POST"
        assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_broker_down_counts_are_spooled_and_health_says_so(intake: IntakeClient) -> None:
    status, body = await post(intake, [count(voted=800), count(voted=-5)])
    assert status == 200 and (body["accepted"], body["rejected"]) == (1, 1)
    assert body["items"][0]["stored"] == "spool"
    async with intake.client.get("/healthz") as response:
        health = await response.json()
    assert health == {"status": "ok", "election": "kz-2022-11-20-presidential", "broker": "down", "spool_depth": 1}
    metrics = await (await intake.client.get("/metrics")).text()
    assert "turnout_watch_intake_broker_up 0.0" in metrics
    assert "turnout_watch_intake_spool_depth 1.0" in metrics
    assert 'turnout_watch_intake_stored_total{where="spool"} 1.0' in metrics
    assert 'turnout_watch_intake_stored_total{where="broker"} 0.0' in metrics


async def test_form_and_openapi_are_served(intake: IntakeClient) -> None:
    async with intake.client.get("/") as response:
        assert response.status == 200 and response.content_type == "text/html"
        assert response.headers["Cache-Control"] == "no-store"
        page = await response.text()
    assert "/*CONFIG*/{}" not in page
    assert '"election": "kz-2022-11-20-presidential"' in page and '"offset": "+06:00"' in page
    assert '"polls_open": "07:00"' in page and '"polls_close": "20:00"' in page
    async with intake.client.get("/openapi.yaml") as response:
        assert response.content_type == "application/yaml" and await response.text() == _openapi_text()
    async with intake.client.get("/openapi.json") as response:
        assert await response.json() == yaml.safe_load(_openapi_text())


async def test_every_validation_rule_named_per_item_and_valid_items_kept(on_broker: IntakeClient) -> None:
    intake = on_broker
    assert (await post(intake, count(voted=800), who="all"))[0] == 200
    batch = [
        count("99-9999", 10),  # unknown station
        count(voted=2375),  # more than the 2374 on the list
        count(voted=-1),  # negative
        count(voted=700, at="2022-11-20T14:00:00+06:00"),  # lower than the 12:00 count (800)
        count(voted=100, at="2022-11-20T06:30:00+06:00"),  # before polls open
        count(voted=100, at="2099-11-20T12:00:00+06:00"),  # in the future
        count(voted=100, election="kz-2023-03-19-majilis"),  # wrong election
        count("71-0001", 500, region="Almaty"),  # a region the station is not in
        {"station": "75-0002", "voted": "many", "observed_at": "noon", "colour": "red"},  # types, unknown field
        count(voted=900, at="2022-11-20T14:00:00+06:00"),  # valid
        count("71-0002", 300, source="commission"),  # valid
        count(voted=100, at="0001-01-01T00:00:00+01:00"),  # before the first instant a clock can show
        count(voted=100, at="9999-12-31T23:59:59+00:00"),  # a year that overflows in Kazakhstan's zone
    ]
    status, body = await post(intake, batch, who="all")
    assert status == 200
    assert (body["accepted"], body["rejected"]) == (2, 11)
    items = body["items"]
    assert [i["index"] for i in items] == list(range(13))
    assert codes(items[0]) == {"unknown_station"}
    assert codes(items[1]) == {"exceeds_registered"}
    assert "2374" in items[1]["errors"][0]["message"]
    assert codes(items[2]) == {"negative"}
    assert codes(items[3]) == {"lower_than_earlier"} and items[3]["errors"][0]["params"]["earlier_voted"] == 800
    assert codes(items[4]) == {"outside_hours"}
    assert codes(items[5]) == {"in_future"}
    assert codes(items[6]) == {"wrong_election"}
    assert codes(items[7]) == {"region_mismatch"}
    assert codes(items[8]) == {"type", "bad_time", "unknown_field"}
    assert items[9]["status"] == items[10]["status"] == "accepted"
    assert codes(items[11]) == codes(items[12]) == {"bad_time"}
    records = await read_topic(intake.settings.broker or "", intake.topic, 3)
    assert sorted((r["station"], r["voted"], r["source"]) for r in records) == [
        ("71-0002", 300, "commission"),
        ("75-0001", 800, "tally"),
        ("75-0001", 900, "tally"),
    ]
    for record in records:  # the contract with the streams side
        assert record["_key"] == record["station"]
        assert record["type"] == "observer_count" and record["election"] == "kz-2022-11-20-presidential"
        assert {"region_code", "report_id", "accepted_at", "received_at", "registered", "observer"} <= record.keys()
    assert {r["region_code"] for r in records} == {"KZ-75", "KZ-71"}
    status, body = await post(intake, batch[:2], who="all")  # nothing valid: 422
    assert status == 422 and body["accepted"] == 0


async def test_resend_is_idempotent_same_answer_counted_once(on_broker: IntakeClient) -> None:
    intake = on_broker
    first = await post(intake, count(report_id="phone-42-1"))
    again = await post(intake, count(report_id="phone-42-1"))
    assert first[0] == again[0] == 200
    assert first[1]["items"] == again[1]["items"] and first[1]["items"][0]["stored"] == "broker"
    assert (first[1]["accepted"], again[1]["accepted"], again[1]["duplicates"]) == (1, 0, 1)
    no_id = await post(intake, count("75-0001", 1000, "2022-11-20T16:00:00+06:00"))
    no_id_again = await post(intake, count("75-0001", 1000, "2022-11-20T16:00:00+06:00"))
    assert no_id[1]["items"] == no_id_again[1]["items"]  # derived from the content
    in_one_batch = await post(intake, [count(voted=1100, at="2022-11-20T18:00:00+06:00")] * 2)
    assert (in_one_batch[1]["accepted"], in_one_batch[1]["duplicates"]) == (1, 1)
    reused = await post(intake, count(voted=801, report_id="phone-42-1"))
    assert reused[0] == 422 and codes(reused[1]["items"][0]) == {"report_id_reused"}
    records = await read_topic(intake.settings.broker or "", intake.topic, 3)
    assert len(records) == 3 and len({r["report_id"] for r in records}) == 3


async def test_metrics_are_valid_prometheus(on_broker: IntakeClient) -> None:
    await post(on_broker, [count(voted=800), count(voted=-5)])
    async with on_broker.client.get("/metrics") as response:
        text = await response.text()
    assert 'turnout_watch_intake_counts_total{outcome="accepted"} 1.0' in text
    assert 'turnout_watch_intake_rejections_total{code="negative"} 1.0' in text
    assert "turnout_watch_intake_broker_up 1.0" in text
    assert "turnout_watch_intake_publish_seconds_count 1.0" in text
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
