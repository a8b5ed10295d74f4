"""Issue 13's bad-input probes over real HTTP (pytest-aiohttp's server on loopback): every one a 4xx with
the usual `{"error": {code, message}}` shape (or per-item 422s), never a 500; wrong media types 415;
requests without a valid token limited per client address."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from ingest.observers.ratelimit import AUTH_FAILURE_BURST, RateLimiter
from tests.support.intake import IntakeClient, intake_client
from turnout_watch.core.settings import Settings

JSON = "application/json"
CSV = "text/csv"
COUNT = b'{"station": "75-0001", "observed_at": "2022-11-20T12:00:00+06:00", "voted": %s}'


@pytest.fixture
async def intake(aiohttp_client: AiohttpClient, offline: Settings) -> IntakeClient:
    return await intake_client(aiohttp_client, offline)


async def send(env: IntakeClient, path: str, body: bytes, content_type: str, who: str = "obs1") -> tuple[int, Any]:
    headers = {**env.auth(who), "Content-Type": content_type}
    async with env.client.post(path, data=body, headers=headers) as response:
        return response.status, json.loads(await response.read())


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"[" * 100_000, 400, "too_deep"),  # was RecursionError: 500
        (b"[" * 100_000 + b"]" * 100_000, 400, "too_deep"),
        (b'{"station": ' + b"[" * 970 + b"]" * 970 + b"}", 400, "too_deep"),  # was json.dumps in a message
        (b'{"station": "[[[[[[[[[[[[", "observed_at": "x", "voted": 1}', 422, None),  # brackets in a string
        (COUNT % (b"1" + b"0" * 5000), 422, "bad_number"),  # past int()'s 4,300 digits: was a 500
        (COUNT % (b"-" + b"9" * 31), 422, "bad_number"),
        (COUNT % b"NaN", 422, "bad_number"),
        (COUNT % b"Infinity", 422, "bad_number"),
        (COUNT % b"-Infinity", 422, "bad_number"),
        (COUNT % b"1e400", 422, "bad_number"),  # a float that is infinite
        (COUNT % (b"1." + b"0" * 100), 422, "bad_number"),
        (COUNT % (b'"1' + b"0" * 5000 + b'"'), 422, None),  # digits as text: per-item 422
        (b'{"station": "' + b"7" * 100_000 + b'", "observed_at": "x", "voted": 1}', 422, None),
        (json.dumps({f"k{i}": i for i in range(20_000)}).encode(), 422, None),  # a flood of unknown fields
        (b"\xff\xfe{", 400, "bad_json"),
    ],
)
async def test_hostile_json_is_a_4xx_with_the_usual_shape(
    intake: IntakeClient, body: bytes, status: int, code: str | None
) -> None:
    got, answer = await send(intake, "/v1/counts", body, JSON)
    assert got == status, answer
    if code is None:  # per-item refusals: a normal answer, and it does not echo the body back
        assert answer["rejected"] == 1 and len(json.dumps(answer)) < 5000
    else:
        assert answer["error"]["code"] == code and len(answer["error"]["message"]) < 300


@pytest.mark.parametrize(
    ("csv", "status"),
    [
        (b"station,observed_at,voted\n75-0001,2022-11-20T12:00:00+06:00,1" + b"0" * 5000 + b"\n", 422),
        (b"station,observed_at,voted\n75-0001,2022-11-20T12:00:00+06:00," + b"9" * 200_000 + b"\n", 400),
        (b"station,observed_at,voted,registered\n75-0001,2022-11-20T12:00:00+06:00,9,10\n", 422),
    ],
)
async def test_hostile_csv_is_a_4xx(intake: IntakeClient, csv: bytes, status: int) -> None:
    got, answer = await send(intake, "/v1/counts.csv", csv, CSV)
    assert got == status, answer


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/v1/counts", "text/plain", COUNT % b"1"),
        ("/v1/counts", "application/x-www-form-urlencoded", COUNT % b"1"),
        ("/v1/counts", "application/json; charset=utf-16", (COUNT % b"1").decode().encode("utf-16")),
        ("/v1/counts", "text/csv", COUNT % b"1"),
        ("/v1/counts.csv", JSON, b"station,voted\n75-0001,1\n"),
        ("/v1/counts.csv", "text/csv; charset=latin-1", b"station,voted\n75-0001,1\n"),
    ],
)
async def test_wrong_media_type_is_415(intake: IntakeClient, path: str, content_type: str, body: bytes) -> None:
    status, answer = await send(intake, path, body, content_type)
    assert (status, answer["error"]["code"]) == (415, "unsupported_media_type")


async def test_a_byte_order_mark_is_named(intake: IntakeClient) -> None:
    got, answer = await send(intake, "/v1/counts", b"\xef\xbb\xbf" + json.dumps({"station": "75-0001"}).encode(), JSON)
    assert got == 400 and answer["error"]["code"] == "bad_json" and "byte order mark" in answer["error"]["message"]


async def test_utf8_charset_is_accepted(intake: IntakeClient) -> None:
    status, answer = await send(intake, "/v1/counts", COUNT % b"800", "application/json; charset=UTF-8")
    assert (status, answer["accepted"]) == (200, 1)


async def test_requests_without_a_valid_token_are_limited_per_address(intake: IntakeClient) -> None:
    http = intake.client
    statuses = []
    for n in range(AUTH_FAILURE_BURST + 20):  # a guesser: no token, malformed tokens, wrong secrets
        headers = {} if n % 3 == 0 else {"Authorization": f"Bearer tw_{n:012x}_{'A' * 43}"}
        async with http.post("/v1/counts", data=COUNT % b"1", headers={**headers, "Content-Type": JSON}) as r:
            statuses.append(r.status)
            if r.status == 429:
                assert int(r.headers["Retry-After"]) >= 1 and (await r.json())["error"]["code"] == "rate_limited"
    assert statuses[:AUTH_FAILURE_BURST] == [401] * AUTH_FAILURE_BURST
    assert set(statuses[AUTH_FAILURE_BURST + 1 :]) == {429}
    status, answer = await send(intake, "/v1/counts", COUNT % b"800", JSON)  # a real token from that address
    assert (status, answer["accepted"]) == (200, 1)
    metrics = await (await http.get("/metrics")).text()
    assert 'turnout_watch_intake_requests_total{route="counts",status="429"}' in metrics


def test_the_limiter_forgets_idle_addresses() -> None:
    now = [0.0]
    limiter = RateLimiter(1.0, 2, clock=lambda: now[0], max_keys=100)
    for n in range(10_000):  # an address scan
        limiter.take(f"10.0.{n // 256}.{n % 256}")
        now[0] += 0.001
    assert len(limiter) <= 100
    assert limiter.take("10.0.39.15") == 0.0 and limiter.take("10.0.39.15") > 0  # the latest is remembered
