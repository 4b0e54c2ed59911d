"""Concurrent fires on one case over real HTTP (a threaded server, 20 clients at once): one
transition per version, the losers told 409/412 with the case's current state, history
contiguous."""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import REPAIR, REPAIR_DATA, Tokens

CLIENTS = 20


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class Http:
    """A tiny client: one connection per request, as independent clients would do."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token

    def __call__(self, method: str, path: str, body: Any = None, **headers: str) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.request(
                method,
                path,
                body=None if body is None else json.dumps(body),
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "Content-Type": "application/json",
                    **headers,
                },
            )
            response = conn.getresponse()
            raw = response.read()
            return Reply(
                response.status, dict(response.getheaders()), json.loads(raw) if raw else None
            )
        finally:
            conn.close()


def _all_at_once(work: Any) -> list[Any]:
    """Run ``work(i)`` for CLIENTS threads released together."""
    barrier = threading.Barrier(CLIENTS)

    def run(i: int) -> Any:
        barrier.wait(timeout=60)
        return work(i)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(run, range(CLIENTS)))


@pytest.fixture
def api(live_server: str, tokens: Tokens) -> Http:
    return Http(live_server, tokens.by_role["integrator"])


def _counter_case(api: Http) -> int:
    created = api("POST", "/api/v1/cases", {"definition": "api_counter", "data": {"count": 0}})
    assert created.status == 201, created.body
    case_id: int = created.body["id"]
    return case_id


def _check_history(api: Http, case_id: int, transitions: int) -> dict[str, Any]:
    """History runs 1..version without gaps; the version counts creation plus transitions."""
    case = api("GET", f"/api/v1/cases/{case_id}").body
    seqs = [e["seq"] for e in api("GET", f"/api/v1/cases/{case_id}/history").body]
    assert seqs == list(range(1, case["version"] + 1))
    assert case["version"] == transitions + 1
    return case


def test_if_match_lets_exactly_one_fire_through_per_version(api: Http) -> None:
    case_id = _counter_case(api)
    url = f"/api/v1/cases/{case_id}"

    def read_then_fire(_: int) -> tuple[int, Reply]:
        etag = api("GET", url).headers["ETag"]
        return int(etag.strip('"')), api(
            "POST", f"{url}/fire", {"trigger": "ping"}, **{"If-Match": etag}
        )

    results = _all_at_once(read_then_fire)
    by_version: dict[int, Counter[int]] = defaultdict(Counter)
    for version, reply in results:
        by_version[version][reply.status] += 1
        assert reply.status in (200, 409, 412), reply.body
        if reply.status == 200:
            assert reply.body["event"]["seq"] == version + 1
        else:  # the loser learns where the case is now
            assert reply.body["state"] == "open" and reply.body["version"] > version
    for version, statuses in by_version.items():
        assert statuses[200] == 1, (version, statuses)
    wins = sum(statuses[200] for statuses in by_version.values())
    case = _check_history(api, case_id, wins)
    assert case["data"]["count"] == wins


def test_without_if_match_each_success_is_one_transition(api: Http) -> None:
    case_id = _counter_case(api)
    replies = _all_at_once(
        lambda _: api("POST", f"/api/v1/cases/{case_id}/fire", {"trigger": "ping"})
    )
    wins = [r for r in replies if r.status == 200]
    for reply in replies:
        assert reply.status in (200, 409), reply.body
        if reply.status == 409:
            assert reply.body["code"] == "concurrency-conflict"
            assert reply.body["state"] == "open" and reply.body["version"] >= 2
    assert wins
    seqs = sorted(r.body["event"]["seq"] for r in wins)
    assert seqs == list(range(2, len(wins) + 2))
    case = _check_history(api, case_id, len(wins))
    assert case["data"]["count"] == len(wins)


def test_a_one_way_trigger_fired_twenty_times_moves_the_case_once(api: Http) -> None:
    created = api("POST", "/api/v1/cases", {"definition": REPAIR, "data": REPAIR_DATA})
    case_id = created.body["id"]
    contact = {"trigger": "contact", "payload": {"at": "2025-09-30T02:20:00Z"}}
    replies = _all_at_once(lambda _: api("POST", f"/api/v1/cases/{case_id}/fire", contact))
    statuses = Counter(r.status for r in replies)
    assert statuses[200] == 1 and statuses[409] == CLIENTS - 1, statuses
    for reply in replies:
        if reply.status == 409:
            assert reply.body["code"] in ("invalid-trigger", "concurrency-conflict")
            assert reply.body["state"] == "remote_diagnosis"
    assert _check_history(api, case_id, 1)["state"] == "remote_diagnosis"


def test_concurrent_retries_with_one_idempotency_key_transition_once(api: Http) -> None:
    case_id = _counter_case(api)
    replies = _all_at_once(
        lambda _: api(
            "POST",
            f"/api/v1/cases/{case_id}/fire",
            {"trigger": "ping"},
            **{"Idempotency-Key": "burst"},
        )
    )
    answered = [r for r in replies if r.status == 200]
    for reply in replies:
        assert reply.status in (200, 409), reply.body  # 409: still being handled, retry
    assert answered
    assert {r.body["event"]["seq"] for r in answered} == {2}
    _check_history(api, case_id, 1)
