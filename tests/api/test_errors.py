"""Every failure is a 4xx problem (RFC 9457) that says what to fix, never a 500: bad JSON,
wrong types, unknown fields, oversized bodies, unknown ids, text or numbers no database can
hold, and the domain's refusals (invalid trigger, lost precondition, taken business key,
invalid definition)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from api.app import MAX_BODY_BYTES
from tests.api.conftest import REPAIR, REPAIR_DATA, Tokens, assert_problem, sqlite_only

CASES = "/api/v1/cases"
CONTACT = {"trigger": "contact", "payload": {"at": "2025-09-30T02:20:00Z"}}


@pytest.fixture
def case(new_case: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return new_case("ERR-1")


@sqlite_only
def test_bad_json_is_400(integrator: Any, owner: Any, case: dict[str, Any]) -> None:
    for caller, method, url in (
        (integrator, "POST", CASES),
        (integrator, "POST", f"{CASES}/{case['id']}/fire"),
        (owner, "PUT", f"/api/v1/definitions/{REPAIR}/draft"),
        (owner, "PUT", "/api/v1/calendars/cn-workdays"),
    ):
        response = caller.open(
            method, url, data='{"trigger": "contact",', content_type="application/json"
        )
        body = assert_problem(response, 400, "bad-request")
        assert body["detail"] == "The request body is not valid JSON.", url


@sqlite_only
def test_wrong_types_and_missing_fields_name_each_field(
    integrator: Any, case: dict[str, Any]
) -> None:
    body = assert_problem(
        integrator.post(CASES, json={"definition": 5, "data": "x", "version": "two"}),
        422,
        "request-invalid",
    )
    assert set(body["errors"]["json"]) == {"definition", "data", "version"}
    body = assert_problem(integrator.post(f"{CASES}/{case['id']}/fire", json={}), 422)
    assert body["errors"]["json"]["trigger"] == ["Missing data for required field."]
    body = assert_problem(integrator.post(CASES, json=["not", "an", "object"]), 422)
    assert body["errors"]["json"]
    body = assert_problem(integrator.get(f"{CASES}?limit=many"), 422)
    assert "limit" in body["errors"]["query"]


@sqlite_only
def test_unknown_fields_and_query_parameters_are_refused(
    integrator: Any, owner: Any, case: dict[str, Any]
) -> None:
    body = assert_problem(
        integrator.post(f"{CASES}/{case['id']}/fire", json={**CONTACT, "priority": "high"}), 422
    )
    assert body["errors"]["json"] == {"priority": ["Unknown field."]}
    body = assert_problem(
        owner.post(
            "/api/v1/calendars", json={"name": "h", "overrides": {"holidays": ["2025-10-09"]}}
        ),
        422,
    )
    assert "holidays" in str(body["errors"])
    # A misspelt filter must fail, not silently widen the search.
    body = assert_problem(integrator.get(f"{CASES}?stauts=open"), 422)
    assert body["errors"]["query"] == {"stauts": ["Unknown field."]}


@sqlite_only
def test_an_oversized_body_is_413(integrator: Any, db_state: Callable[[], Any]) -> None:
    before = db_state()
    big = {"definition": REPAIR, "data": {**REPAIR_DATA, "fault": "x" * MAX_BODY_BYTES}}
    body = assert_problem(integrator.post(CASES, json=big), 413, "body-too-large")
    assert "1 MiB" in body["detail"]
    assert db_state() == before


def test_unknown_ids_are_404(integrator: Any, owner: Any) -> None:
    for url in (
        f"{CASES}/987654",
        f"{CASES}/987654/history",
        f"{CASES}/987654/timers",
        f"{CASES}/by-key/{REPAIR}/NOPE",
        f"{CASES}/by-key/nope/NOPE",
        f"/api/v1/definitions/{REPAIR}/versions/42",
        "/api/v1/definitions/nope/versions",
        f"{CASES}/99999999999999999999999",  # beyond any id column
        f"/api/v1/definitions/{REPAIR}/versions/99999999999",
    ):
        body = assert_problem(integrator.get(url), 404)
        assert body["detail"], url
    assert_problem(integrator.post(f"{CASES}/987654/fire", json=CONTACT), 404, "case-not-found")
    assert_problem(integrator.get(f"{CASES}/not-a-number"), 404, "not-found")
    assert_problem(integrator.get("/api/v1/no-such-thing"), 404, "not-found")
    assert_problem(owner.post("/api/v1/definitions/nope/draft/publish"), 404)
    assert_problem(integrator.open("DELETE", f"{CASES}/1"), 405, "method-not-allowed")


def test_text_and_numbers_no_database_can_hold_are_refused(
    integrator: Any, db_state: Callable[[], Any]
) -> None:
    before = db_state()
    nul = {"definition": REPAIR, "data": {**REPAIR_DATA, "customer": "Xiangya\x00"}}
    assert_problem(integrator.post(CASES, json=nul), 422, "text-not-allowed")
    surrogate = (
        '{"definition": "repair_ticket", "data": {"customer": "\\ud800", '
        '"device_serial": "1", "fault": "f", "priority": "normal"}}'
    )
    assert_problem(
        integrator.post(CASES, data=surrogate, content_type="application/json"),
        422,
        "text-not-allowed",
    )
    deep = '{"definition": "repair_ticket", "data": {"x": ' + "[" * 5000 + "]" * 5000 + "}}"
    assert_problem(
        integrator.post(CASES, data=deep, content_type="application/json"), 422, "body-too-deep"
    )
    assert_problem(integrator.get(f"{CASES}/by-key/{REPAIR}/A%00B"), 400, "text-not-allowed")
    assert_problem(integrator.get(f"{CASES}?state=a%00b"), 400, "text-not-allowed")
    assert_problem(
        integrator.post(CASES, json={"definition": REPAIR, "version": 2**40, "data": REPAIR_DATA}),
        422,
    )
    assert_problem(
        integrator.get(f"{CASES}?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5"), 400, "bad-cursor"
    )
    assert db_state() == before


def test_searching_data_compares_json_types_and_never_fails(
    supervisor: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    case = new_case(visits=3_000_000_000, device_model="12345")  # beyond 32 bits
    for query, expected in (
        ("customer&data_value=5", []),
        ("customer&data_value=0", []),  # text is not the number 0
        ("priority&data_value=false", []),
        ("device_model&data_value=12345", []),  # a number, not the text
        ("device_model&data_value=%2212345%22", [case["id"]]),
        ("visits&data_value=3000000000", [case["id"]]),
        ("visits&data_value=3000000000.0", [case["id"]]),
        ("visits&data_value=%223000000000%22", []),
        ("visits&data_value=99999999999999999999999", []),
    ):
        response = supervisor.get(f"{CASES}?data_field={query}")
        assert response.status_code == 200, (query, response.get_json())
        assert [c["id"] for c in response.get_json()["items"]] == expected, query


@sqlite_only
def test_an_unknown_trigger_is_422_and_not_allowed_now_is_409_each_with_its_code(
    integrator: Any, case: dict[str, Any]
) -> None:
    unknown = assert_problem(
        integrator.post(f"{CASES}/{case['id']}/fire", json={"trigger": "explode"}),
        422,
        "unknown-trigger",
    )
    assert "contact" in unknown["allowed"] and "explode" not in unknown["allowed"]
    assert (unknown["state"], unknown["trigger"]) == ("logged", "explode")
    assert unknown["detail"] == "The definition has no trigger 'explode'."
    assert "sign" in unknown["hint"]  # every trigger it defines is listed

    not_now = assert_problem(
        integrator.post(f"{CASES}/{case['id']}/fire", json={"trigger": "sign"}),
        409,
        "invalid-trigger",
    )
    assert not_now["detail"] == "Trigger 'sign' cannot fire in state 'logged'."


@sqlite_only
def test_payload_not_matching_its_schema_is_422(
    integrator: Any, case: dict[str, Any], history: Any
) -> None:
    body = assert_problem(
        integrator.post(f"{CASES}/{case['id']}/fire", json={"trigger": "contact", "payload": {}}),
        422,
    )
    assert "at" in body["detail"]
    assert len(history(case["id"])) == 1


def test_a_date_time_that_is_not_an_instant_is_422_naming_the_field(
    integrator: Any, case: dict[str, Any], history: Any
) -> None:
    for bad, why in (("yesterday", "is not a date and time"), ("2025-09-30", "has no UTC offset")):
        body = assert_problem(
            integrator.post(
                f"{CASES}/{case['id']}/fire", json={"trigger": "contact", "payload": {"at": bad}}
            ),
            422,
            "payload-invalid",
        )
        assert body["detail"].startswith("payload.at") and why in body["detail"]
    assert len(history(case["id"])) == 1  # nothing stored


def test_if_match_must_match_the_current_version(
    integrator: Any, case: dict[str, Any], history: Any
) -> None:
    url = f"{CASES}/{case['id']}/fire"
    body = assert_problem(
        integrator.post(url, json=CONTACT, headers={"If-Match": '"7"'}), 412, "version-mismatch"
    )
    assert (body["state"], body["version"]) == ("logged", 1)
    assert_problem(
        integrator.post(url, json=CONTACT, headers={"If-Match": "yesterday"}), 400, "bad-if-match"
    )
    # An empty tag among others is no ETag either (werkzeug reads it as None): 400, not 500.
    assert_problem(
        integrator.post(url, json=CONTACT, headers={"If-Match": 'W/"x", "", W/"y"'}),
        400,
        "bad-if-match",
    )
    # If-Match compares strongly (RFC 9110): a weak ETag never matches, even the right one.
    weak = assert_problem(
        integrator.post(url, json=CONTACT, headers={"If-Match": 'W/"1"'}),
        412,
        "precondition-failed",
    )
    assert "weak" in weak["detail"]
    assert len(history(case["id"])) == 1
    # A list matches when the case's version is in it.
    assert integrator.post(url, json=CONTACT, headers={"If-Match": '"0", "1"'}).status_code == 200
    assert (
        integrator.post(
            url,
            json={"trigger": "dispatch", "payload": {"engineer": "Li"}},
            headers={"If-Match": "*"},
        ).status_code
        == 200
    )


def test_a_body_that_is_not_json_is_415_and_changes_nothing(
    integrator: Any, case: dict[str, Any], history: Any
) -> None:
    url = f"{CASES}/{case['id']}/fire"
    for headers in ({"Content-Type": "text/plain"}, {}):
        body = assert_problem(
            integrator.post(url, data='{"trigger": "contact"}', headers=headers),
            415,
            "unsupported-media-type",
        )
        assert "Content-Type: application/json" in body["hint"]
    assert len(history(case["id"])) == 1


def test_a_method_the_resource_does_not_have_is_405_with_allow(
    integrator: Any, case: dict[str, Any]
) -> None:
    response = integrator.delete(f"{CASES}/{case['id']}/fire")

    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"POST", "OPTIONS"}


def test_a_taken_business_key_is_409(integrator: Any, case: dict[str, Any]) -> None:
    body = assert_problem(
        integrator.post(
            CASES, json={"definition": REPAIR, "data": REPAIR_DATA, "business_key": "ERR-1"}
        ),
        409,
        "business-key-taken",
    )
    assert body["case_id"] == case["id"] and "ERR-1" in body["detail"]


@sqlite_only
def test_a_trigger_the_role_may_not_fire_is_403(integrator: Any, admin: Any) -> None:
    created = integrator.post(CASES, json={"definition": "api_counter", "data": {}}).get_json()
    url = f"{CASES}/{created['id']}/fire"
    body = assert_problem(
        integrator.post(url, json={"trigger": "check"}), 403, "trigger-not-permitted"
    )
    assert "supervisor" in body["detail"]
    assert admin.post(url, json={"trigger": "check"}).status_code == 200


@sqlite_only
def test_an_invalid_definition_is_422_with_element_paths(owner: Any) -> None:
    document = {
        "name": "api_bad",
        "title": {"en": "Bad", "zh": "坏"},
        "initial": "nowhere",
        "states": [{"name": "a", "title": {"en": "A", "zh": "甲"}}],
        "transitions": [],
    }
    body = assert_problem(
        owner.post("/api/v1/definitions", json={"document": document}), 422, "definition-invalid"
    )
    assert body["problems"], body
    for item in body["problems"]:
        assert {"severity", "path", "code", "message"} <= set(item)
    assert "initial" in {p["path"] for p in body["problems"]}
    unreadable = assert_problem(
        owner.post("/api/v1/definitions", json={"source": "a: [b"}), 422, "definition-unreadable"
    )
    assert unreadable["line"] == 1


def test_a_guard_refusal_says_what_is_missing_in_both_languages(
    client: Any, tokens: Tokens
) -> None:
    """Closing a ticket before its service report: the definition's guard_message, not the
    CEL expression, with the expression kept as detail."""
    integrator = tokens.headers("integrator")
    created = client.post(
        "/api/v1/cases", headers=integrator, json={"definition": REPAIR, "data": REPAIR_DATA}
    ).get_json()
    case_id = created["id"]
    response = client.post(
        f"/api/v1/supervision/cases/{case_id}/force",
        headers=tokens.headers("admin"),
        json={"state": "signed", "reason": "to test the close guard"},
    )
    assert response.status_code == 200, response.get_json()

    refused = client.post(
        f"/api/v1/cases/{case_id}/fire",
        headers=integrator,
        json={"trigger": "close", "payload": {"feedback": "设备运行正常"}},
    )

    body = assert_problem(refused, 409, "guard-rejected")
    assert body["detail"] == (
        "'close' cannot be fired in 'signed' yet: The service report has not been delivered "
        "yet (deliver_report)."
    )
    assert body["reasons"] == [
        {
            "en": "The service report has not been delivered yet (deliver_report).",
            "zh": "服务报告尚未交付（deliver_report）。",
        }
    ]
    (guard,) = body["guards"]
    assert guard.startswith("transitions[") and guard.endswith(
        ".guard = has(data.report_delivered_at)"
    )
    assert "has(data." not in body["detail"]
