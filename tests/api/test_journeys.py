"""Full journeys end to end through the HTTP API: every bundled workflow scenario, replayed
as an integrating system would drive it.

Each scenario under workflows/scenarios/ (the catalog's promises: R-REP-04 late arrival,
R-REP-06 loaner after 8 hours, R-REP-07 replacement, R-CMP-03 National Day deadline, R-SPR-02
overdue return, R-SPR-05 stock count, ...) runs here over HTTP: cases are created and
triggers fired with API tokens, states, data, SLA clocks and history are read back from the
API, and expected failures must come back as problem+json with the expected code. Time is
virtual: the app's clock is injected and advancing it fires due timers through the same
path an RQ worker takes (engine.simulation.Simulator.deliver), never sleeping.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import state
from engine.core.definition import parse_source
from engine.runtime.clock import ManualClock
from engine.services.definitions import set_parameter
from engine.simulation import Simulator
from tests.api.conftest import Tokens

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "workflows" / "scenarios").glob("*.yaml"))
PROBLEM = "application/problem+json"


class Journey:
    def __init__(self, client: FlaskClient, tokens: Tokens, sessions: Any, clock: ManualClock):
        self.client = client
        self.tokens = tokens
        self.simulator = Simulator(sessions, clock)
        self.clock = clock
        self.cases: dict[str, int] = {}

    def headers(self, body: dict[str, Any]) -> dict[str, str]:
        # A step naming roles acts with that role's token; otherwise as an administrator,
        # as the simulator does, since scenarios exercise supervisor-only steps too.
        roles = body.get("roles") or ["admin"]
        return self.tokens.headers(roles[0])

    def case_id(self, alias: Any) -> int:
        return alias if isinstance(alias, int) else self.cases[str(alias)]

    def request(self, kind: str, body: dict[str, Any]) -> Any:
        if kind == "create":
            payload = {"definition": body["definition"], "data": body.get("data", {})}
            for key in ("business_key", "contract"):
                if key in body:
                    payload[key] = body[key]
            response = self.client.post("/api/v1/cases", json=payload, headers=self.headers(body))
            if response.status_code == 201 and "case" in body:
                self.cases[str(body["case"])] = response.get_json()["id"]
            return response
        if kind == "fire" and (body.get("roles") or ["admin"])[0] == "supervisor":
            # A supervisor acts through the supervision API, which records a reason.
            return self.client.post(
                f"/api/v1/supervision/cases/{self.case_id(body['case'])}/fire",
                json={
                    "trigger": body["trigger"],
                    "payload": body.get("payload", {}),
                    "reason": "journey step taken by a supervisor",
                },
                headers=self.headers(body),
            )
        if kind == "fire":
            return self.client.post(
                f"/api/v1/cases/{self.case_id(body['case'])}/fire",
                json={"trigger": body["trigger"], "payload": body.get("payload", {})},
                headers=self.headers(body),
            )
        assert kind == "cancel", kind
        return self.client.post(
            f"/api/v1/cases/{self.case_id(body['case'])}/cancel",
            json={"reason": str(body.get("reason", "journey"))},
            headers=self.headers(body),
        )

    def expect(self, body: dict[str, Any], where: str) -> None:
        case_id = self.case_id(body["case"])
        headers = self.tokens.headers("supervisor")
        case = self.client.get(f"/api/v1/cases/{case_id}", headers=headers).get_json()
        history = self.client.get(f"/api/v1/cases/{case_id}/history", headers=headers).get_json()
        for key in ("state", "status"):
            if key in body:
                assert case[key] == body[key], f"{where}: {key}"
        for name, value in (body.get("data") or {}).items():
            assert case["data"].get(name) == value, f"{where}: data.{name}"
        if "contract" in body:
            assert (case["contract"] or {}).get("id") == body["contract"], f"{where}: contract"
        # The API shows the parameters a case's contract set (its terms), not all of them.
        terms = (case["contract"] or {}).get("terms") or {}
        for name, value in (body.get("params") or {}).items():
            assert terms.get(name, value) == value, f"{where}: params.{name}"
        if "triggers" in body:
            fired = [e["trigger"] for e in history if e["event_type"] == "transition"]
            assert fired == list(body["triggers"]), f"{where}: triggers"
        if "events" in body:
            kinds = {e["event_type"] for e in history}
            assert set(body["events"]) <= kinds, f"{where}: events {kinds}"
        rounds: dict[str, list[str]] = {}  # every round's status, first to latest
        for c in case["sla"]:
            rounds.setdefault(c["name"], []).append(c["status"])
        for name, status in (body.get("sla") or {}).items():
            shown = rounds.get(name) if isinstance(status, list) else rounds.get(name, [None])[-1]
            assert shown == status, f"{where}: SLA {name}"

    def run(self, index: int, step: dict[str, Any]) -> None:
        where = f"steps[{index}]"
        kind = next(iter(step))
        body = step[kind]
        if kind in ("create", "fire", "cancel"):
            response = self.request(kind, body)
            assert response.status_code < 300, (where, response.get_json())
        elif kind in ("advance", "advance_to"):
            # Time moves as in `svcflow simulate`: due timers fire on the worker's path.
            moved = self.simulator.run_step(index, step)
            assert moved.ok, (where, moved.message)
        elif kind == "expect":
            self.expect(body, where)
        elif kind == "expect_error":
            inner_kind = next(k for k in body if k != "code")
            response = self.request(inner_kind, body[inner_kind])
            assert 400 <= response.status_code < 500, (where, response.status_code)
            assert response.content_type == PROBLEM, where
            if "code" in body:
                assert response.get_json()["code"] == body["code"], (where, response.get_json())
        else:
            raise AssertionError(f"{where}: unknown step {kind}")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_journey_over_http(
    path: Path, app: Flask, client: FlaskClient, tokens: Tokens, sessions: Any
) -> None:
    scenario = parse_source(path.read_text("utf-8"), str(path))
    start = scenario["start"]  # YAML reads an ISO 8601 instant as a datetime
    assert isinstance(start, datetime) and start.tzinfo is not None, f"{path.name}: start"
    clock = ManualClock(start)
    state.of(app).runtime.clock = clock
    with sessions() as s, s.begin():
        for definition, params in (scenario.get("parameters") or {}).items():
            for name, value in params.items():
                set_parameter(s, definition, name, value, actor="journey", now=clock.now())
    for name, overrides in (scenario.get("calendars") or {}).items():
        response = client.put(
            f"/api/v1/calendars/{name}",
            json={"overrides": overrides},
            headers=tokens.headers("process_owner"),
        )
        assert response.status_code == 200, response.get_json()
    for relative in scenario.get("contracts") or []:
        response = client.post(
            "/api/v1/contracts",
            json={"source": (path.parent / relative).read_text("utf-8")},
            headers=tokens.headers("process_owner"),
        )
        assert response.status_code == 201, response.get_json()
    journey = Journey(client, tokens, sessions, clock)
    for index, step in enumerate(scenario["steps"]):
        journey.run(index, step)


def test_every_scenario_definition_is_bundled() -> None:
    """The journeys drive the bundled workflows themselves, not copies."""
    assert len(SCENARIOS) >= 6, "the glob found no bundled scenarios"
    for path in SCENARIOS:
        scenario = parse_source(path.read_text("utf-8"), str(path))
        named = scenario.get("definitions") or []
        assert named, f"{path.name} names no definition"
        for relative in named:
            assert (path.parent / relative).resolve().parent == path.parent.parent.resolve()
