"""Liveness answers while the process does; readiness says whether every promise is on its
way: the database, Redis, and timer delivery as the database sees it (the oldest overdue
armed timer, the last sweep, worker heartbeats)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from api import state
from engine.runtime.clock import ManualClock
from engine.runtime.housekeeping import Housekeeper
from engine.services import cases
from tests.api.conftest import REPAIR, REPAIR_DATA, sqlite_only
from tests.conftest import ADMIN, T0


def test_liveness_is_200_even_when_redis_is_unreachable(client: Any) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"ok": True}


@sqlite_only
def test_readiness_reports_an_unreachable_redis_as_503(client: Any) -> None:
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["ok"] is False
    assert body["checks"]["database"]["ok"] is True and body["checks"]["database"]["revision"]
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}
    assert "redis: ConnectionError" in body["problems"]


class TestWithRedis:
    @pytest.fixture
    def app_redis_url(self, redis_url: str) -> str:
        """A reachable Redis for the app of this class's tests."""
        return redis_url

    @pytest.fixture
    def clock(self, app: Flask) -> Iterator[ManualClock]:
        clock = ManualClock(T0)
        state.of(app).runtime.clock = clock
        yield clock

    @sqlite_only
    def test_ready_once_a_worker_has_reported_and_swept(
        self, app: Flask, client: Any, clock: ManualClock
    ) -> None:
        before = client.get("/readyz").get_json()
        assert before["ok"] is False
        assert any("no worker has reported" in p for p in before["problems"])
        assert any("the timer sweep has not run" in p for p in before["problems"])

        Housekeeper(state.of(app).runtime, "worker-a").run_once()  # what a worker's thread does
        response = client.get("/readyz")

        assert response.status_code == 200, response.get_json()
        delivery = response.get_json()["checks"]["delivery"]
        assert delivery["workers"][0]["name"] == "worker-a" and delivery["workers"][0]["alive"]
        assert delivery["last_sweep"]["by"] == "worker-a"
        assert delivery["last_sweep"]["redelivered"] == 0
        assert delivery["oldest_overdue"] is None

    @sqlite_only
    def test_not_ready_while_a_timer_is_overdue_beyond_the_tolerance(
        self, app: Flask, client: Any, clock: ManualClock
    ) -> None:
        runtime = state.of(app).runtime
        with runtime.sessions() as session, session.begin():
            cases.create_case(session, REPAIR, REPAIR_DATA, actor=ADMIN, now=T0)
        keeper = Housekeeper(runtime, "worker-a")
        keeper.run_once()
        assert client.get("/readyz").status_code == 200  # nothing due yet

        # The first contact deadline passes, and no worker fires the timer (none runs here):
        # the sweep hands it over again, and once that is late too, readiness says so.
        clock.advance(timedelta(hours=2))
        keeper.run_once()
        after_sweep = client.get("/readyz").get_json()
        assert after_sweep["checks"]["delivery"]["last_sweep"]["redelivered"] >= 1
        assert after_sweep["checks"]["delivery"]["oldest_overdue"] is None  # handed over now

        clock.advance(timedelta(seconds=30))
        response = client.get("/readyz")

        assert response.status_code == 503
        body = response.get_json()
        overdue = body["checks"]["delivery"]["oldest_overdue"]
        assert overdue["overdue_seconds"] == 30
        assert any(f"timer {overdue['timer_id']} is 30 s overdue" in p for p in body["problems"])
        assert any("no worker has reported in the last 15 s" in p for p in body["problems"])
        gauges = client.get("/metrics").get_data(as_text=True)
        assert "svcflow_timer_oldest_overdue_seconds 30.0" in gauges
        assert "svcflow_workers_alive 0.0" in gauges


@sqlite_only
def test_a_readiness_probe_writes_no_migration_log_lines(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Probes come every few seconds; Alembic's two INFO lines per probe buried the log."""
    caplog.set_level(logging.DEBUG, logger="svcflow")
    for _ in range(3):
        assert client.get("/readyz").get_json()["checks"]["database"]["ok"] is True
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
