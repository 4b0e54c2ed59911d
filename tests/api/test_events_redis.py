"""The feed's long-poll woken through Redis: a commit publishes the new head, and a waiting
reader answers at once instead of at its next poll."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from api import state
from engine.runtime.feed import CHANNEL
from engine.services import cases
from tests.conftest import ADMIN, T0


@pytest.fixture
def app_redis_url(redis_url: str) -> str:
    return redis_url


def test_a_commit_wakes_a_long_poll_through_redis(
    app: Flask, integrator: Any, new_case: Any
) -> None:
    case = new_case()
    head = integrator.get("/api/v1/events").get_json()["next"]
    runtime = state.of(app).runtime
    runtime.feed_waiter.poll_seconds = 60  # only a wake-up can end the wait early
    outcome: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        response = integrator.get("/api/v1/events", query_string={"after": head, "wait": 25})
        outcome["page"] = response.get_json()
        outcome["elapsed"] = time.monotonic() - started

    waiting = threading.Thread(target=poll)
    waiting.start()
    _until_subscribed(runtime.redis)  # the reader has looked once and now waits
    with runtime.sessions() as session, session.begin():
        cases.cancel_case(session, case["id"], actor=ADMIN, now=T0, reason="duplicate")
    waiting.join(timeout=40)
    assert [e["type"] for e in outcome["page"]["items"]] == ["cancelled"]
    assert outcome["elapsed"] < 10


def _until_subscribed(redis: Redis) -> None:
    for _ in range(2000):
        if dict(redis.pubsub_numsub(CHANNEL)).get(CHANNEL.encode()):
            return
        time.sleep(0.005)
    raise AssertionError("the long-poll never subscribed to the feed's channel")
