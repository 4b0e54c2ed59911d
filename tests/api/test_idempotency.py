"""``Idempotency-Key`` on every POST: a retry returns the stored response and changes
nothing; the same key with another request is refused; keys belong to one token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from api.idempotency import MAX_KEY_LENGTH
from tests.api.conftest import API_COUNTER, REPAIR, REPAIR_DATA, Tokens, assert_problem

CASES = "/api/v1/cases"
CONTACT = {"trigger": "contact", "payload": {"at": "2025-09-30T02:20:00Z"}}


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def test_a_retried_create_makes_one_case(integrator: Any, supervisor: Any) -> None:
    body = {"definition": REPAIR, "data": REPAIR_DATA, "business_key": "RETRY-1"}
    first = integrator.post(CASES, json=body, headers=_key("create-1"))
    retries = [integrator.post(CASES, json=body, headers=_key("create-1")) for _ in range(2)]
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    for retry in retries:
        assert retry.status_code == 201
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert retry.get_json() == first.get_json()
        assert retry.headers["ETag"] == first.headers["ETag"]
        assert retry.headers["Location"] == first.headers["Location"]
    found = supervisor.get(f"{CASES}?business_key=RETRY-1").get_json()["items"]
    assert [c["id"] for c in found] == [first.get_json()["id"]]


def test_a_retried_fire_transitions_once(
    integrator: Any, new_case: Callable[..., dict[str, Any]], history: Any
) -> None:
    case = new_case()
    url = f"{CASES}/{case['id']}/fire"
    first = integrator.post(url, json=CONTACT, headers=_key("fire-1"))
    retries = [integrator.post(url, json=CONTACT, headers=_key("fire-1")) for _ in range(3)]
    assert first.status_code == 200
    for retry in retries:
        assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
        assert retry.get_json() == first.get_json()
        assert retry.headers["ETag"] == '"2"'
    events = history(case["id"])
    assert [e.seq for e in events] == [1, 2]
    assert events[1].idempotency_key.endswith(":fire-1")  # qualified by the token


def test_the_same_key_with_another_request_is_422(
    integrator: Any, new_case: Callable[..., dict[str, Any]], db_state: Callable[[], Any]
) -> None:
    case = new_case()
    url = f"{CASES}/{case['id']}/fire"
    assert integrator.post(url, json=CONTACT, headers=_key("k")).status_code == 200
    before = db_state()
    other = {"trigger": "contact", "payload": {"at": "2025-10-01T00:00:00Z"}}
    body = assert_problem(
        integrator.post(url, json=other, headers=_key("k")), 422, "idempotency-key-reused"
    )
    assert "'k'" in body["detail"] and body["hint"]
    # Another path is another request, too.
    assert_problem(
        integrator.post(CASES, json={"definition": REPAIR, "data": REPAIR_DATA}, headers=_key("k")),
        422,
        "idempotency-key-reused",
    )
    assert db_state() == before


def test_keys_belong_to_one_token(client: FlaskClient, tokens: Tokens) -> None:
    other_token = tokens.create("integrator")[1]
    ids = set()
    for token, serial in ((tokens.by_role["integrator"], "A-1"), (other_token, "B-2")):
        response = client.post(
            CASES,
            json={"definition": REPAIR, "data": {**REPAIR_DATA, "device_serial": serial}},
            headers={"Authorization": f"Bearer {token}", **_key("shared-key")},
        )
        assert response.status_code == 201, response.get_json()
        assert "Idempotent-Replayed" not in response.headers
        ids.add(response.get_json()["id"])
    assert len(ids) == 2


def test_a_failed_request_is_not_remembered(
    integrator: Any, new_case: Callable[..., dict[str, Any]], history: Any
) -> None:
    case = new_case()
    url = f"{CASES}/{case['id']}/fire"
    for _ in range(2):
        response = integrator.post(
            url, json={"trigger": "sign", "payload": {}}, headers=_key("oops")
        )
        assert_problem(response, 409, "invalid-trigger")
        assert "Idempotent-Replayed" not in response.headers
    assert integrator.post(url, json=CONTACT, headers=_key("oops")).status_code == 200
    assert len(history(case["id"])) == 2


def test_a_bad_key_is_400(integrator: Any) -> None:
    body = {"definition": REPAIR, "data": REPAIR_DATA}
    assert_problem(
        integrator.post(CASES, json=body, headers=_key("x" * (MAX_KEY_LENGTH + 1))),
        400,
        "bad-idempotency-key",
    )
    longest = integrator.post(CASES, json=body, headers=_key("x" * MAX_KEY_LENGTH))
    assert longest.status_code == 201, longest.get_json()
    assert_problem(
        integrator.post(CASES, json=body, headers=_key("  ")), 400, "bad-idempotency-key"
    )
    assert_problem(
        integrator.post(CASES, json=body, headers=_key("a\x00b")), 400, "bad-idempotency-key"
    )


CONTRACT = """\
id: idem
title: {en: Idempotent, zh: 幂等}
customers: [幂等医院]
valid_from: 2026-01-01
parameters:
  repair_ticket: {loaner_after: 12h}
"""


def test_every_post_replays_and_changes_nothing_the_second_time(
    client: FlaskClient,
    tokens: Tokens,
    integrator: Any,
    owner: Any,
    db_state: Callable[[], Any],
) -> None:
    case = integrator.post(
        CASES, json={"definition": "api_counter", "data": {"count": 0}, "business_key": "IDEM-1"}
    ).get_json()
    owner.put(
        "/api/v1/definitions/api_counter/draft",
        json={"source": API_COUNTER.replace("en: Counter,", "en: Counter v2,")},
    )
    document = {
        "name": "api_idem",
        "title": {"en": "I", "zh": "幂"},
        "initial": "a",
        "states": [{"name": "a", "title": {"en": "A", "zh": "甲"}, "final": True}],
        "transitions": [],
    }
    posts = {
        "/api/v1/definitions": ("process_owner", {"document": document}),
        "/api/v1/definitions/validate": ("process_owner", {"document": document}),
        "/api/v1/definitions/api_counter/draft/publish": ("process_owner", None),
        CASES: ("integrator", {"definition": "api_counter", "data": {"count": 1}}),
        f"{CASES}/{case['id']}/fire": ("integrator", {"trigger": "ping"}),
        f"{CASES}/by-key/api_counter/IDEM-1/fire": ("integrator", {"trigger": "ping"}),
        f"{CASES}/{case['id']}/cancel": ("integrator", {"reason": "test"}),
        "/api/v1/calendars": ("process_owner", {"name": "idem-cal", "overrides": {}}),
        "/api/v1/webhooks": ("integrator", {"url": "https://erp.example/h", "events": ["*"]}),
        "/api/v1/contracts": ("process_owner", {"source": CONTRACT}),
        "/api/v1/contracts/validate": ("process_owner", {"source": CONTRACT}),
        "/api/v1/definitions/api_counter/promote": (
            "process_owner",
            {"version": 1, "reason": "roll back"},
        ),
    }
    spec = client.get("/api/openapi.json").get_json()
    # Creating a token is not replayed: the stored response would keep the token in clear
    # text. Its unique name makes a retry safe instead (the second is refused, nothing made).
    unreplayed = {"/api/v1/tokens"}
    for path, item in spec["paths"].items():
        names = [p["name"] for p in item.get("post", {}).get("parameters", [])]
        assert "post" not in item or "Idempotency-Key" in names or path in unreplayed, path

    for url, (role, body) in posts.items():
        headers = tokens.headers(role, **_key(f"every-{url}"))
        first = client.post(url, json=body, headers=headers)
        assert first.status_code < 300, (url, first.get_json())
        after_first = db_state()
        again = client.post(url, json=body, headers=headers)
        assert (again.status_code, again.get_json()) == (first.status_code, first.get_json()), url
        assert again.headers["Idempotent-Replayed"] == "true", url
        assert db_state() == after_first, f"{url}: the replay changed the database"
