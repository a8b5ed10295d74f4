"""The per-token bucket, on a clock the test moves: a burst at once, then the steady rate."""

from __future__ import annotations

import pytest

from ingest.observers.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_burst_then_the_wait_until_the_next_token(clock: Clock) -> None:
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one token every 1/rate seconds
    clock.now += 0.25
    assert limiter.take("a") == pytest.approx(0.25)  # a refused request does not cost a token
    clock.now += 0.25
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)


def test_tokens_refill_at_the_rate_up_to_the_burst(clock: Clock) -> None:
    limiter = RateLimiter(rate=0.5, burst=2, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(2.0)]
    clock.now += 2.0
    assert limiter.take("a") == 0.0
    clock.now += 3600  # a long quiet spell earns no more than the burst
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(2.0)]


def test_each_key_has_its_own_bucket(clock: Clock) -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0
    assert limiter.take("b") == pytest.approx(1.0)
