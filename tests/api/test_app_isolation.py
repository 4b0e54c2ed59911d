"""Two apps on two databases in one process each answer from their own database.

The app keeps its runtime (database engine, Redis, clock) and its caches (tokens, scrape
gauges) in ``app.extensions``; when it kept them in a process global, building a second app
made the first answer from the second's database: its tokens were refused with 401.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cachetools import TTLCache
from flask import Flask

from api import state
from api.app import create_app
from engine.services.tokens import create_token
from engine.store.database import create_db_engine, session_factory
from tests.api.conftest import REPAIR, REPAIR_DATA
from tests.conftest import T0

CASES = "/api/v1/cases"


def _database(template: Path, path: Path) -> str:
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


def _token(url: str, name: str) -> str:
    engine = create_db_engine(url)
    with session_factory(engine)() as session, session.begin():
        token = create_token(session, name=name, role="integrator", actor="test", now=T0)
    engine.dispose()
    return token


@pytest.fixture
def two_apps(
    api_sqlite_template: Path, tmp_path: Path, app_redis_url: str
) -> Iterator[tuple[Flask, str, Flask, str]]:
    first_url = _database(api_sqlite_template, tmp_path / "first.db")
    second_url = _database(api_sqlite_template, tmp_path / "second.db")
    first_token, second_token = _token(first_url, "first"), _token(second_url, "second")
    first = create_app({"DATABASE_URL": first_url, "REDIS_URL": app_redis_url})
    second = create_app({"DATABASE_URL": second_url, "REDIS_URL": app_redis_url})
    yield first, first_token, second, second_token
    state.of(first).runtime.close()
    state.of(second).runtime.close()


def test_two_apps_in_one_process_each_use_their_own_database(
    two_apps: tuple[Flask, str, Flask, str],
) -> None:
    first, first_token, second, second_token = two_apps
    mine = {"Authorization": f"Bearer {first_token}"}
    theirs = {"Authorization": f"Bearer {second_token}"}
    body = {"definition": REPAIR, "data": REPAIR_DATA, "business_key": "T-ONLY-IN-FIRST"}

    created = first.test_client().post(CASES, json=body, headers=mine)
    assert created.status_code == 201, created.get_json()

    # Each app knows its own token only (the second app was built last).
    assert first.test_client().get(CASES, headers=mine).status_code == 200
    assert second.test_client().get(CASES, headers=theirs).status_code == 200
    assert first.test_client().get(CASES, headers=theirs).status_code == 401
    assert second.test_client().get(CASES, headers=mine).status_code == 401

    # And its own cases only.
    in_first = first.test_client().get(CASES, headers=mine).get_json()["items"]
    in_second = second.test_client().get(CASES, headers=theirs).get_json()["items"]
    assert [c["business_key"] for c in in_first] == ["T-ONLY-IN-FIRST"]
    assert in_second == []
    assert state.of(first).runtime is not state.of(second).runtime


def test_the_token_cache_is_bounded(api_sqlite_url: str, app_redis_url: str) -> None:
    """Random bearer strings cannot grow the app's memory: the cache keeps at most its size
    (3,000 random tokens left 3,000 entries when it was a dict)."""
    app = create_app(
        {"DATABASE_URL": api_sqlite_url, "REDIS_URL": app_redis_url, "TOKEN_CACHE_SIZE": 64}
    )
    client = app.test_client()
    for n in range(300):
        response = client.get(CASES, headers={"Authorization": f"Bearer random-{n}"})
        assert response.status_code == 401
    assert len(state.of(app).tokens) == 64
    state.of(app).runtime.close()


class _ExpiresRightAfterALook(TTLCache[str, Any]):
    """A token cache whose entries expire just after a membership test has seen them: the
    window between ``key in cache`` and ``cache[key]``, a few microseconds every cache period
    in production, made certain."""

    def __init__(self) -> None:
        self.clock = 0.0
        super().__init__(maxsize=64, ttl=10, timer=lambda: self.clock)

    def __contains__(self, key: object) -> bool:
        seen = super().__contains__(key)
        self.clock += 20
        return seen


def test_a_token_expiring_from_the_cache_as_it_is_read_is_looked_up_again(
    api_sqlite_url: str, app_redis_url: str
) -> None:
    """It answered 500 (KeyError) when the entry expired between the check and the read."""
    app = create_app({"DATABASE_URL": api_sqlite_url, "REDIS_URL": app_redis_url})
    token = _token(api_sqlite_url, "hotline")
    state.of(app).tokens = _ExpiresRightAfterALook()
    client = app.test_client()
    for _ in range(3):
        response = client.get(CASES, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.get_json()
    state.of(app).runtime.close()
