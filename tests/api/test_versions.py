"""Steering versions over HTTP (process owner): migrate running cases in batches with a dry run
first, promote back to v1, retire, delete refused while cases use a version, the audit, and
the versions listed with their cases."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import API_COUNTER, assert_problem
from tests.tables import every_row

BASE = "/api/v1/definitions"
COUNTER = "api_counter"
# Version 2: 'checked' is renamed 'reviewed', and cases carry who reviewed them.
COUNTER_V2 = API_COUNTER.replace("checked", "reviewed").replace(
    "    count: {type: integer, minimum: 0}\n",
    "    count: {type: integer, minimum: 0}\n    reviewer: {type: string}\n",
)
PLAN = {
    "from_version": 1,
    "to_version": 2,
    "params": "keep",
    "map_state": {"checked": "reviewed"},
    "set": {"reviewer": "'unknown'"},
    "reason": "v2 names reviews",
}


def _create(integrator: Any, version: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"definition": COUNTER, "data": {"count": 0}}
    if version is not None:
        body["version"] = version
    response = integrator.post("/api/v1/cases", json=body)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def test_migration_over_http_dry_run_then_batches(owner: Any, integrator: Any, admin: Any) -> None:
    ids = [_create(integrator)["id"] for _ in range(3)]
    checked = admin.post(f"/api/v1/cases/{ids[0]}/fire", json={"trigger": "check"})
    assert checked.status_code == 200, checked.get_json()
    assert owner.post(BASE, json={"source": COUNTER_V2}).status_code == 201

    dry = owner.post(f"{BASE}/{COUNTER}/migrations", json=PLAN)
    assert dry.status_code == 200, dry.get_json()
    body = dry.get_json()
    assert body["dry_run"] is True and body["summary"] == {"would_move": 3}
    assert body["states_in_use"] == {"checked": 1, "open": 2}
    assert body["items"][0]["to_state"] == "reviewed"
    assert integrator.get(f"/api/v1/cases/{ids[0]}").get_json()["definition_version"] == 1

    first = owner.post(
        f"{BASE}/{COUNTER}/migrations", json={**PLAN, "dry_run": False, "limit": 2}
    ).get_json()
    assert first["summary"] == {"moved": 2} and first["next_after_id"] == ids[1]
    rest = owner.post(
        f"{BASE}/{COUNTER}/migrations",
        json={**PLAN, "dry_run": False, "after_id": first["next_after_id"]},
    ).get_json()
    assert rest["summary"] == {"moved": 1} and rest["next_after_id"] is None
    case = integrator.get(f"/api/v1/cases/{ids[0]}").get_json()
    assert (case["definition_version"], case["state"]) == (2, "reviewed")
    assert case["data"] == {"count": 0, "reviewer": "unknown"}
    history = integrator.get(f"/api/v1/cases/{ids[0]}/history").get_json()
    events = history["events"] if isinstance(history, dict) else history
    assert events[-1]["event_type"] == "migrated"


def test_a_wrong_plan_is_422_with_every_problem(owner: Any) -> None:
    owner.post(BASE, json={"source": COUNTER_V2})
    bad = {**PLAN, "map_state": {"checked": "nowhere"}, "set": {"colour": "'red'"}}
    body = assert_problem(owner.post(f"{BASE}/{COUNTER}/migrations", json=bad), 422)
    assert body["code"] == "migration-invalid"
    assert len(body["problems"]) == 2
    missing = assert_problem(
        owner.post(f"{BASE}/{COUNTER}/migrations", json={**PLAN, "to_version": 9}), 404
    )
    assert missing["code"] == "definition-not-found"


def test_promote_back_to_v1_retire_delete_and_audit(owner: Any, integrator: Any) -> None:
    owner.post(BASE, json={"source": COUNTER_V2})
    assert _create(integrator)["definition_version"] == 2

    promoted = owner.post(f"{BASE}/{COUNTER}/promote", json={"version": 1, "reason": "v2 bug"})
    assert promoted.status_code == 200, promoted.get_json()
    assert promoted.get_json()["current_version"] == 1
    assert _create(integrator)["definition_version"] == 1

    in_use = owner.post(f"{BASE}/{COUNTER}/versions/2/delete", json={"reason": "mistake"})
    assert assert_problem(in_use, 409)["code"] == "definition-in-use"

    retired = owner.post(f"{BASE}/{COUNTER}/retire", json={"reason": "replaced"})
    assert retired.get_json()["retired"] is True
    refused = integrator.post("/api/v1/cases", json={"definition": COUNTER, "data": {}})
    assert assert_problem(refused, 409)["code"] == "definition-retired"
    owner.post(f"{BASE}/{COUNTER}/restore", json={"reason": "back"})

    listed = integrator.get(f"{BASE}/{COUNTER}/versions").get_json()
    assert [(v["version"], v["current"]) for v in listed] == [(1, True), (2, False)]
    assert listed[1]["running_by_state"] == {"open": 1} and listed[1]["published_by"]
    audit = integrator.get(f"{BASE}/{COUNTER}/audit").get_json()
    assert [(a["action"], a["version"], a["reason"]) for a in audit] == [
        ("promoted", 1, "v2 bug"),
        ("retired", None, "replaced"),
        ("restored", None, "back"),
    ]
    no_reason = owner.post(f"{BASE}/{COUNTER}/promote", json={"version": 1})
    assert_problem(no_reason, 422)


def test_the_dry_run_over_http_names_cases_whose_timers_cannot_be_planned_and_writes_nothing(
    owner: Any, integrator: Any, sessions: sessionmaker[Session]
) -> None:
    """Version 2 reminds at the instant a case's data names; the plan gives one case an
    instant and the other words: the dry run refuses that one, with why, before any write."""
    timed = COUNTER_V2.replace(
        "    reviewer: {type: string}\n",
        "    reviewer: {type: string}\n    remind_at: {type: string}\n",
    ).replace(
        "  - name: open\n    title: {en: Open, zh: 打开}\n",
        "  - name: open\n    title: {en: Open, zh: 打开}\n    timers:\n"
        '      - {name: remind, at: "timestamp(data.remind_at)", trigger: ping}\n',
    )
    assert timed != COUNTER_V2
    first, second = (_create(integrator)["id"] for _ in range(2))
    assert owner.post(BASE, json={"source": timed}).status_code == 201
    plan = {
        **PLAN,
        "set": {
            "reviewer": "'unknown'",
            "remind_at": f"case.id == {first} ? '2025-06-02T08:00:00Z' : 'next week'",
        },
    }
    before = every_row(sessions, leave_out=frozenset({"api_tokens"}))

    dry = owner.post(f"{BASE}/{COUNTER}/migrations", json=plan)

    assert dry.status_code == 200, dry.get_json()
    assert every_row(sessions, leave_out=frozenset({"api_tokens"})) == before
    items = {item["case_id"]: item for item in dry.get_json()["items"]}
    assert items[first]["outcome"] == "would_move"
    assert items[second]["outcome"] == "refused"
    assert "cannot be planned under version 2" in items[second]["reasons"][0]
    applied = owner.post(f"{BASE}/{COUNTER}/migrations", json={**plan, "dry_run": False})
    moved = {item["case_id"]: item for item in applied.get_json()["items"]}
    assert moved[second]["reasons"] == items[second]["reasons"]
    assert moved[first]["outcome"] == "moved"
