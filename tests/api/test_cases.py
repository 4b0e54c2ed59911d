"""Cases over HTTP: create, read, fire (by id and by business key), history, cancel, timers,
and search with filters and cursor pagination."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api import state
from engine.runtime.clock import ManualClock
from tests.api.conftest import REPAIR, REPAIR_DATA, assert_problem, sqlite_only
from tests.conftest import T0
from tests.factories import complaint_with_two_rectification_rounds

BASE = "/api/v1/cases"
CONTACT = {"trigger": "contact", "payload": {"at": "2025-09-30T02:20:00Z"}}


def test_create_returns_the_case_with_etag_location_and_what_may_happen_next(
    integrator: Any, history: Any
) -> None:
    response = integrator.post(
        BASE, json={"definition": REPAIR, "data": REPAIR_DATA, "business_key": "HOT-1"}
    )
    assert response.status_code == 201
    case = response.get_json()
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"].endswith(f"{BASE}/{case['id']}")
    assert (case["state"], case["status"], case["version"]) == ("logged", "open", 1)
    assert (case["definition"], case["definition_version"]) == (REPAIR, 1)
    assert case["business_key"] == "HOT-1" and case["data"] == REPAIR_DATA
    assert "contact" in case["allowed_triggers"]
    assert "contact_overdue" not in case["allowed_triggers"]  # the timer's (below)
    assert [t["name"] for t in case["timers"]].count("contact_overdue") == 1
    assert {"first_contact", "arrival"} <= {c["name"] for c in case["sla"]}
    assert [e.event_type for e in history(case["id"])] == ["created"]


@sqlite_only
def test_create_refuses_unknown_definition_and_invalid_data(integrator: Any) -> None:
    body = assert_problem(
        integrator.post(BASE, json={"definition": "nope", "data": {}}), 404, "definition-not-found"
    )
    assert "nope" in body["detail"]
    missing = dict(REPAIR_DATA)
    del missing["customer"]
    body = assert_problem(integrator.post(BASE, json={"definition": REPAIR, "data": missing}), 422)
    assert "customer" in body["detail"]


def test_get_case_with_etag(
    integrator: Any, supervisor: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    case = new_case()
    response = supervisor.get(f"{BASE}/{case['id']}")
    assert response.status_code == 200 and response.headers["ETag"] == '"1"'
    assert response.get_json()["id"] == case["id"]
    assert_problem(integrator.get(f"{BASE}/999999"), 404, "case-not-found")


def test_fire_moves_the_case_and_returns_the_event(
    integrator: Any, new_case: Callable[..., dict[str, Any]], history: Any
) -> None:
    case = new_case()
    response = integrator.post(
        f"{BASE}/{case['id']}/fire", json=CONTACT, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200 and response.headers["ETag"] == '"2"'
    body = response.get_json()
    assert (body["case"]["state"], body["case"]["version"]) == ("remote_diagnosis", 2)
    # Reported more than a day late, the call counts when received: so does contacted_at.
    assert body["event"]["context"]["reported_at"] == "2025-09-30T02:20:00+00:00"
    contacted = datetime.fromisoformat(body["case"]["data"]["contacted_at"])
    assert contacted == datetime.fromisoformat(body["event"]["at"]) > T0 + timedelta(days=1)
    assert body["event"]["seq"] == 2 and body["event"]["trigger"] == "contact"
    assert body["event"]["actor"].startswith("token:integrator")
    assert [e.to_state for e in history(case["id"])] == ["logged", "remote_diagnosis"]


def test_triggers_the_engine_fires_are_refused_to_every_token(
    integrator: Any,
    supervisor: Any,
    admin: Any,
    new_case: Callable[..., dict[str, Any]],
    history: Any,
) -> None:
    """A forged breach would be ground for a deposit deduction (R-REP-12); a forged contact
    timeout would escalate the ticket. Only the engine fires them (docs/definitions.md)."""
    case = new_case()
    fire = f"{BASE}/{case['id']}/fire"

    def refused_to_all(forged: dict[str, Any], engine_triggers: set[str]) -> None:
        for caller in (integrator, admin):  # supervisors fire through /supervision (below)
            body = assert_problem(caller.post(fire, json=forged), 403, "trigger-not-permitted")
            assert "svcflow fires it itself" in body["detail"]
            assert "operator action" in body["hint"]
            offered = set(caller.get(f"{BASE}/{case['id']}").get_json()["allowed_triggers"])
            assert offered and not engine_triggers & offered

    refused_to_all({"trigger": "contact_overdue", "payload": {}}, {"contact_overdue"})
    assert integrator.post(fire, json=CONTACT).status_code == 200  # now in remote_diagnosis
    refused_to_all({"trigger": "record_breach", "payload": {"sla": "arrival"}}, {"record_breach"})
    assert_problem(
        supervisor.post(
            f"/api/v1/supervision/cases/{case['id']}/fire",
            json={"trigger": "record_breach", "payload": {"sla": "arrival"}, "reason": "x"},
        ),
        403,
        "trigger-not-permitted",
    )
    assert [e.event_type for e in history(case["id"])] == ["created", "transition"]


def test_fire_an_invalid_trigger_is_409_listing_the_allowed_ones(
    integrator: Any, new_case: Callable[..., dict[str, Any]], history: Any
) -> None:
    case = new_case()
    body = assert_problem(
        integrator.post(f"{BASE}/{case['id']}/fire", json={"trigger": "sign", "payload": {}}),
        409,
        "invalid-trigger",
    )
    assert "contact" in body["allowed"] and "sign" not in body["allowed"]
    assert body["state"] == "logged"
    assert len(history(case["id"])) == 1


def test_fire_by_business_key(
    integrator: Any, supervisor: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    case = new_case("WX-20250930-7")
    url = f"{BASE}/by-key/{REPAIR}/WX-20250930-7"
    assert supervisor.get(url).get_json()["id"] == case["id"]
    fired = integrator.post(f"{url}/fire", json=CONTACT)
    assert fired.status_code == 200 and fired.get_json()["case"]["id"] == case["id"]
    assert fired.get_json()["case"]["state"] == "remote_diagnosis"
    assert_problem(supervisor.get(f"{BASE}/by-key/{REPAIR}/WX-none"), 404, "case-not-found")
    assert_problem(integrator.post(f"{BASE}/by-key/{REPAIR}/WX-none/fire", json=CONTACT), 404)


def test_any_business_key_is_addressable_in_the_query_form(
    integrator: Any, supervisor: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    key = "WX/2025/09 #7?a=b&c"  # what a hotline's ticket numbers can look like
    case = new_case(key)
    where = {"definition": REPAIR, "business_key": key}
    found = supervisor.get(f"{BASE}/by-key", query_string=where)
    assert found.status_code == 200 and found.get_json()["id"] == case["id"]
    fired = integrator.post(f"{BASE}/by-key/fire", query_string=where, json=CONTACT)
    assert fired.status_code == 200, fired.get_json()
    assert fired.get_json()["case"]["id"] == case["id"]
    assert fired.headers["ETag"] == '"2"'
    missing = {"definition": REPAIR, "business_key": "WX/none"}
    assert_problem(supervisor.get(f"{BASE}/by-key", query_string=missing), 404, "case-not-found")
    assert_problem(supervisor.get(f"{BASE}/by-key", query_string={"definition": REPAIR}), 422)


def test_history_lists_every_event_in_order(
    integrator: Any, supervisor: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    case = new_case()
    integrator.post(f"{BASE}/{case['id']}/fire", json=CONTACT)
    integrator.post(
        f"{BASE}/{case['id']}/fire",
        json={"trigger": "dispatch", "payload": {"engineer": "Wang Wei"}},
    )
    events = supervisor.get(f"{BASE}/{case['id']}/history").get_json()
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert [e["trigger"] for e in events] == [None, "contact", "dispatch"]
    assert events[2]["changes"]["engineer"] == "Wang Wei"
    assert_problem(supervisor.get(f"{BASE}/424242/history"), 404)


def test_cancel_closes_the_case_and_its_timers(
    integrator: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    case = new_case()
    url = f"{BASE}/{case['id']}"
    response = integrator.post(f"{url}/cancel", json={"reason": "Duplicate of HOT-1"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["case"]["status"] == "cancelled" and body["case"]["allowed_triggers"] == []
    assert body["event"]["payload"] == {"reason": "Duplicate of HOT-1"}
    assert body["case"]["timers"] == []
    assert {t["status"] for t in integrator.get(f"{url}/timers").get_json()} == {"cancelled"}
    assert_problem(integrator.post(f"{url}/cancel", json={"reason": "again"}), 409, "case-closed")
    assert_problem(integrator.post(f"{url}/fire", json=CONTACT), 409, "case-closed")
    assert_problem(integrator.post(f"{BASE}/5555/cancel", json={"reason": "x"}), 404)


def test_case_timers_lists_armed_and_cancelled(
    integrator: Any, supervisor: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    case = new_case()
    before = supervisor.get(f"{BASE}/{case['id']}/timers").get_json()
    assert {t["name"]: t["status"] for t in before}["contact_overdue"] == "armed"
    integrator.post(f"{BASE}/{case['id']}/fire", json=CONTACT)
    after = {
        t["name"]: t["status"] for t in supervisor.get(f"{BASE}/{case['id']}/timers").get_json()
    }
    assert after["contact_overdue"] == "cancelled"
    assert_problem(supervisor.get(f"{BASE}/31337/timers"), 404, "case-not-found")


def test_links_show_a_tickets_device_file_and_the_files_tickets(
    integrator: Any, supervisor: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    serial = REPAIR_DATA["device_serial"]
    device = integrator.post(
        BASE,
        json={
            "definition": "device",
            "business_key": serial,
            "data": {"device_serial": serial, "customer": REPAIR_DATA["customer"]},
        },
    )
    assert device.status_code == 201, device.get_json()
    ticket = new_case()  # attaches to the device file by its serial
    ticket_links = supervisor.get(f"{BASE}/{ticket['id']}/links").get_json()
    assert ticket_links["parent"]["id"] == device.get_json()["id"]
    assert ticket_links["children"] == []
    file_links = supervisor.get(f"{BASE}/{device.get_json()['id']}/links").get_json()
    assert ticket["id"] in [c["id"] for c in file_links["children"]]
    assert_problem(supervisor.get(f"{BASE}/777777/links"), 404, "case-not-found")


def test_search_filters(
    integrator: Any, supervisor: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    urgent = new_case("S-1", priority="emergency")
    normal = new_case("S-2")
    moved = new_case("S-3")
    integrator.post(f"{BASE}/{moved['id']}/fire", json=CONTACT)

    def ids(query: str) -> list[int]:
        response = supervisor.get(f"{BASE}?{query}")
        assert response.status_code == 200, response.get_json()
        return [c["id"] for c in response.get_json()["items"]]

    assert ids(f"definition={REPAIR}") == [moved["id"], normal["id"], urgent["id"]]
    assert ids("state=remote_diagnosis") == [moved["id"]]
    assert ids("status=open&business_key=S-2") == [normal["id"]]
    assert ids("data_field=priority&data_value=emergency") == [urgent["id"]]
    assert ids("data_field=priority&data_value=%22normal%22") == [moved["id"], normal["id"]]
    everyone = [moved["id"], normal["id"], urgent["id"]]
    assert ids("created_after=2000-01-01T00:00:00Z") == everyone
    assert ids("created_after=2999-01-01T00:00:00Z") == []
    assert ids("created_after=2000-01-01T00:00:00Z&status=completed") == []
    assert ids("created_before=2000-01-01T00:00:00%2B08:00") == []
    assert ids("overdue=true") == []
    body = assert_problem(supervisor.get(f"{BASE}?data_field=priority"), 422)
    assert "data_field" in str(body["errors"])
    assert_problem(supervisor.get(f"{BASE}?status=sleeping"), 422)
    assert_problem(supervisor.get(f"{BASE}?created_after=2025-01-01T00:00:00"), 422)  # naive


def test_search_pages_with_a_cursor(
    integrator: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    created = [new_case(f"P-{n}")["id"] for n in range(7)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = integrator.get(f"{BASE}?{query}").get_json()
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(created, reverse=True)
    body = assert_problem(integrator.get(f"{BASE}?cursor=%25%25not-ours"), 400, "bad-cursor")
    assert "next_cursor" in body["hint"]
    assert_problem(integrator.get(f"{BASE}?limit=0"), 422)
    assert_problem(integrator.get(f"{BASE}?limit=501"), 422)


def test_a_call_logged_late_counts_when_it_was_made_and_one_in_the_future_is_a_422(
    app: Any, integrator: Any, new_case: Callable[..., dict[str, Any]], history: Any
) -> None:
    """The hotline's retry queue delivers a call logged at 10:20 at 10:35 (R-REP-02)."""
    clock = ManualClock(T0)
    state.of(app).runtime.clock = clock
    case = new_case()
    clock.set(T0 + timedelta(minutes=35))
    fire = f"{BASE}/{case['id']}/fire"

    ahead = assert_problem(
        integrator.post(
            fire, json={"trigger": "contact", "payload": {"at": "2025-09-30T10:20:00Z"}}
        ),
        422,
        "payload-invalid",
    )
    assert ahead["detail"].startswith("payload.at is 7h45m after the time svcflow received it")
    assert ahead["path"] == "payload.at" and "+08:00" in ahead["hint"]

    body = integrator.post(
        fire, json={"trigger": "contact", "payload": {"at": "2025-09-30T10:20:00+08:00"}}
    ).get_json()

    assert body["event"]["at"] == "2025-09-30T02:20:00+00:00"
    assert body["event"]["context"]["reported_at"] == "2025-09-30T02:20:00+00:00"
    assert body["event"]["context"]["received_at"] == "2025-09-30T02:35:00+00:00"
    assert [e.at for e in history(case["id"])] == [T0, T0 + timedelta(minutes=20)]
    (clock_row,) = [c for c in body["case"]["sla"] if c["name"] == "first_contact"]
    assert (clock_row["status"], clock_row["elapsed_seconds"]) == ("met", 20 * 60)


def test_a_case_lists_every_round_of_a_repeating_clock(
    supervisor: Any, sessions: sessionmaker[Session]
) -> None:
    """A complaint whose rectification took two rounds: its feedback clock shows twice, each
    round with its own start, stop and status; a clock that runs once shows as round 1."""
    case_id = complaint_with_two_rectification_rounds(sessions)

    response = supervisor.get(f"{BASE}/{case_id}")

    assert response.status_code == 200
    clocks = response.get_json()["sla"]
    feedback = [
        (c["round"], c["status"], c["started_at"], c["stopped_at"])
        for c in clocks
        if c["name"] == "feedback"
    ]
    assert feedback == [
        (1, "breached", "2025-03-20T08:00:00Z", "2025-03-25T01:00:00Z"),
        (2, "met", "2025-03-25T06:00:00Z", "2025-03-26T02:00:00Z"),
    ]
    assert [c["round"] for c in clocks if c["name"] == "investigation"] == [1]
