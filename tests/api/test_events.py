"""The event feed over HTTP: pages by cursor, filters, long-polling, Server-Sent Events and a
case's history after a seq (docs/events.md)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask

from api import state
from engine.services import cases
from tests.api.conftest import assert_problem, sqlite_only
from tests.conftest import ADMIN, T0

FEED = "/api/v1/events"


def _feed(caller: Any, **params: Any) -> dict[str, Any]:
    response = caller.get(FEED, query_string=params)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_the_feed_lists_every_event_in_commit_order_and_resumes(
    integrator: Any, new_case: Any
) -> None:
    first = new_case()
    second = new_case()
    cancelled = integrator.post(f"/api/v1/cases/{first['id']}/cancel", json={"reason": "dup"})
    assert cancelled.status_code == 200, cancelled.get_json()
    page = _feed(integrator, limit=2)
    assert [(e["case_id"], e["seq"], e["type"]) for e in page["items"]] == [
        (first["id"], 1, "created"),
        (second["id"], 1, "created"),
    ]
    assert page["items"][0]["definition"] == "repair_ticket"
    assert page["items"][0]["id"] == f"evt_{page['items'][0]['position']}"
    rest = _feed(integrator, after=page["next"])
    assert [(e["case_id"], e["seq"], e["type"]) for e in rest["items"]] == [
        (first["id"], 2, "cancelled")
    ]
    assert _feed(integrator, after=rest["next"]) == {"items": [], "next": rest["next"]}


def test_filters_by_definition_and_type(integrator: Any, new_case: Any) -> None:
    case = new_case()
    integrator.post(f"/api/v1/cases/{case['id']}/cancel", json={"reason": "duplicate"})
    cancelled = _feed(integrator, type="cancelled")
    assert [(e["case_id"], e["type"]) for e in cancelled["items"]] == [(case["id"], "cancelled")]
    both = integrator.get(f"{FEED}?type=created&type=cancelled").get_json()
    assert [e["type"] for e in both["items"]] == ["created", "cancelled"]
    assert _feed(integrator, definition="loaner")["items"] == []


@sqlite_only
@pytest.mark.parametrize(
    "query",
    ["after=-1", "after=x", "limit=0", "limit=1001", "wait=31", "type=nonsense", "colour=red"],
)
def test_bad_feed_parameters_are_refused_with_the_field_named(integrator: Any, query: str) -> None:
    body = assert_problem(integrator.get(f"{FEED}?{query}"), 422)
    assert query.split("=", maxsplit=1)[0] in str(body)


@sqlite_only
def test_the_feed_needs_a_reader_role(client: Any, as_role: Any) -> None:
    assert_problem(client.get(FEED), 401)
    assert_problem(as_role("process_owner").get(FEED), 403)
    assert as_role("supervisor").get(FEED).status_code == 200


def test_a_long_poll_with_nothing_new_returns_within_its_wait(
    integrator: Any, new_case: Any
) -> None:
    new_case()
    head = _feed(integrator)["next"]
    started = time.monotonic()
    page = _feed(integrator, after=head, wait=0.3)
    elapsed = time.monotonic() - started
    assert page == {"items": [], "next": head}
    assert 0.3 <= elapsed < 3


def test_a_long_poll_answers_as_soon_as_an_event_commits(
    app: Flask, integrator: Any, new_case: Any
) -> None:
    case = new_case()
    head = _feed(integrator)["next"]
    outcome: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        outcome["page"] = _feed(integrator, after=head, wait=20)
        outcome["elapsed"] = time.monotonic() - started

    waiting = threading.Thread(target=poll)
    waiting.start()
    sessions = state.of(app).runtime.sessions
    with sessions() as session, session.begin():
        cases.cancel_case(session, case["id"], actor=ADMIN, now=T0, reason="duplicate")
    waiting.join(timeout=30)
    assert [e["type"] for e in outcome["page"]["items"]] == ["cancelled"]
    assert outcome["elapsed"] < 10


def test_history_after_seq(integrator: Any, new_case: Any) -> None:
    case = new_case()
    integrator.post(f"/api/v1/cases/{case['id']}/cancel", json={"reason": "duplicate"})
    newer = integrator.get(f"/api/v1/cases/{case['id']}/history?after_seq=1").get_json()
    assert [e["seq"] for e in newer] == [2]
    whole = integrator.get(f"/api/v1/cases/{case['id']}/history").get_json()
    assert [e["seq"] for e in whole] == [1, 2]
    assert_problem(integrator.get(f"/api/v1/cases/{case['id']}/history?after_seq=-1"), 422)


def _sse_events(text: str) -> list[dict[str, str]]:
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and line[0] != ":")
        if "id" in fields:
            found.append(fields)
    return found


def test_the_stream_sends_events_and_resumes_from_last_event_id(
    integrator: Any, new_case: Any
) -> None:
    first = new_case()
    second = new_case()
    response = integrator.get(f"{FEED}/stream?wait=0.2")
    assert response.mimetype == "text/event-stream"
    sent = _sse_events(response.get_data(as_text=True))
    assert [(s["event"], s["data"].count(f'"case_id": {first["id"]}')) for s in sent][:1] == [
        ("created", 1)
    ]
    assert len(sent) == 2
    resumed = integrator.get(
        f"{FEED}/stream?wait=0.2", headers={"Last-Event-ID": sent[0]["id"]}
    ).get_data(as_text=True)
    again = _sse_events(resumed)
    assert [s["id"] for s in again] == [sent[1]["id"]]
    assert f'"case_id": {second["id"]}' in again[0]["data"]


@sqlite_only
def test_a_bad_last_event_id_is_refused(integrator: Any) -> None:
    body = assert_problem(
        integrator.get(f"{FEED}/stream", headers={"Last-Event-ID": "yesterday"}), 400
    )
    assert "Last-Event-ID" in body["detail"]
