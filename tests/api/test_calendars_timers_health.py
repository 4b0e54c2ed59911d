"""Calendars, the failed-timers list and the health probe over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import InvalidTrigger
from engine.services import timer_firing
from engine.store.models import Timer
from tests.api.conftest import assert_problem, sqlite_only
from tests.conftest import T0

CALENDARS = "/api/v1/calendars"


def _days(body: dict[str, Any]) -> dict[str, bool]:
    return {d["date"]: d["working"] for d in body["days"]}


def test_calendar_create_get_month_update(owner: Any, integrator: Any) -> None:
    created = owner.post(
        CALENDARS,
        json={
            "name": "hospital-a",
            "base": "cn-workdays",
            "overrides": {"holidays_add": ["2025-10-09"]},
        },
    )
    assert created.status_code == 201, created.get_json()
    assert (created.get_json()["revision"], created.get_json()["base"]) == (1, "cn-workdays")

    month = integrator.get(f"{CALENDARS}/hospital-a?month=2025-10").get_json()
    days = _days(month)
    assert len(days) == 31
    assert days["2025-10-01"] is False  # National Day
    assert days["2025-10-09"] is False  # the hospital's own holiday
    assert days["2025-10-11"] is True  # a Saturday make-up workday
    assert month["timezone"] == "Asia/Shanghai"
    windows = next(d for d in month["days"] if d["date"] == "2025-10-10")["windows"]
    assert windows and all(len(w) == 2 for w in windows)

    updated = owner.put(f"{CALENDARS}/hospital-a", json={"overrides": {}})
    assert updated.status_code == 200 and updated.get_json()["revision"] == 2
    assert (
        _days(integrator.get(f"{CALENDARS}/hospital-a?month=2025-10").get_json())["2025-10-09"]
        is True
    )

    names = [c["name"] for c in integrator.get(CALENDARS).get_json()]
    assert {"24x7", "cn-workdays", "hospital-a"} <= set(names)


@sqlite_only
def test_calendar_errors(owner: Any) -> None:
    body = assert_problem(owner.get(f"{CALENDARS}/no-such-calendar"), 422, "calendar-error")
    assert "no-such-calendar" in body["detail"]
    assert_problem(owner.get(f"{CALENDARS}/cn-workdays?month=2025-13"), 422)
    assert_problem(owner.post(CALENDARS, json={"name": "Bad Name", "overrides": {}}), 422)
    assert_problem(
        owner.post(CALENDARS, json={"name": "both", "overrides": {}, "definition": {}}), 422
    )
    body = assert_problem(
        owner.put(f"{CALENDARS}/24x7", json={"overrides": {}}), 422, "calendar-error"
    )
    assert "24x7 calendar cannot be changed" in body["detail"]
    for bad in ("Bad Name", "x" * 300):  # a PUT may create, so it takes POST's names only
        assert_problem(
            owner.put(f"{CALENDARS}/{bad}", json={"overrides": {}}), 422, "calendar-name-invalid"
        )
    body = assert_problem(
        owner.post(CALENDARS, json={"name": "custom", "definition": {}}), 422, "calendar-error"
    )
    assert body["hint"]


def test_failed_timers_are_listed_for_supervisors(
    supervisor: Any, new_case: Callable[..., dict[str, Any]], sessions: sessionmaker[Session]
) -> None:
    case = new_case()
    with sessions() as session, session.begin():
        timer = session.execute(
            select(Timer).where(Timer.case_id == case["id"], Timer.name == "contact_overdue")
        ).scalar_one()
        error = InvalidTrigger(
            case_id=case["id"], state="closed", trigger="contact_overdue", allowed=[]
        )
        assert timer_firing.record_failure(session, timer.id, error, now=T0) is None
    listed = supervisor.get("/api/v1/timers")
    assert listed.status_code == 200
    [failed] = listed.get_json()
    assert (failed["case_id"], failed["name"], failed["status"]) == (
        case["id"],
        "contact_overdue",
        "failed",
    )
    assert "cannot fire" in failed["last_error"]
    assert supervisor.get("/api/v1/timers?limit=1").status_code == 200
    assert_problem(supervisor.get("/api/v1/timers?status=armed"), 422)
