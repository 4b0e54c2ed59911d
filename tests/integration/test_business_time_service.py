"""Business time through the services, on SQLite and PostgreSQL: a calendar parameter and a
working-day duration parameter set per deployment, timers planned on a stored calendar, and
guards and actions computing with the database's calendars (docs/definitions.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import GuardRejected, ParameterInvalid
from engine.services import timer_firing
from engine.services.calendars import save_calendar
from engine.services.definitions import effective_parameters, get_definition, set_parameter
from tests.conftest import T0
from tests.factories import create_case, fire

LOANER = """\
name: it_loaner_time
title: {en: Loaner time, zh: 备用机时限}
initial: offered
parameters:
  deliver_within: {type: duration, default: 48h}
  delivery_calendar: {type: calendar, default: 24x7}
data_schema:
  type: object
  properties:
    reply_by: {type: string}
states:
  - name: offered
    title: {en: Offered, zh: 已提供}
    timers:
      - name: chase
        after: {param: deliver_within}
        calendar: {param: delivery_calendar}
        trigger: chase
  - {name: delivered, title: {en: Delivered, zh: 已送达}, final: true}
transitions:
  - {trigger: chase, source: offered, dest: offered}
  - trigger: promise
    source: offered
    dest: offered
    payload_schema:
      type: object
      required: [at]
      properties:
        at: {type: string, format: date-time}
    guard: is_working_day(timestamp(payload.at), params.delivery_calendar)
    actions:
      - set: {reply_by: "add_working(now, '1 working day', params.delivery_calendar)"}
  - {trigger: deliver, source: offered, dest: delivered}
"""
SHANGHAI_10_OCTOBER = datetime(2025, 10, 10, 2, 0, tzinfo=UTC)  # Fri 10 Oct 2025, 10:00


def _set(sessions: sessionmaker[Session], name: str, value: str) -> None:
    with sessions() as session, session.begin():
        set_parameter(session, "it_loaner_time", name, value, actor="test", now=T0)


def _plant(sessions: sessionmaker[Session]) -> None:
    """A site calendar: China's, with Thursday 9 October 2025 off as well."""
    with sessions() as session, session.begin():
        save_calendar(
            session,
            "plant",
            actor="test",
            now=T0,
            base="cn-workdays",
            overrides={"holidays_add": ["2025-10-09"]},
        )


def test_set_param_holds_calendars_and_working_days_to_the_rules_of_literals(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(LOANER)

    with pytest.raises(ParameterInvalid) as unknown:
        _set(sessions, "delivery_calendar", "plant")
    assert "no calendar has that name" in unknown.value.message
    assert "24x7, cn-workdays" in (unknown.value.hint or "")

    with pytest.raises(ParameterInvalid) as on_wall:
        _set(sessions, "deliver_within", "5 working days")
    assert "states[0].timers[0].after" in on_wall.value.message
    assert "measured on the wall clock (24x7)" in on_wall.value.message
    assert "Change the calendar parameter first" in (on_wall.value.hint or "")

    _plant(sessions)
    _set(sessions, "delivery_calendar", "plant")
    _set(sessions, "deliver_within", "5 working days")
    with pytest.raises(ParameterInvalid, match="measured on the wall clock"):
        _set(sessions, "delivery_calendar", "24x7")

    with sessions() as session:
        params = effective_parameters(session, get_definition(session, "it_loaner_time"))
    assert (params["delivery_calendar"], params["deliver_within"]) == ("plant", "5 working days")


def test_a_timer_runs_on_the_stored_calendar_its_parameter_names(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(LOANER)
    _plant(sessions)
    _set(sessions, "delivery_calendar", "plant")
    _set(sessions, "deliver_within", "5 working days")

    case_id = create_case(sessions, "it_loaner_time").case.id

    with sessions() as session:
        (chase,) = timer_firing.armed_timers(session, case_id)
    # From Tue 30 Sep 10:00: National Day to 8 Oct, the plant's 9 Oct off, then 10, 11 (a
    # make-up Saturday), 13, 14 and 15 October.
    assert chase.calendar == "plant"
    assert chase.due_at.astimezone(UTC) == datetime(2025, 10, 15, 2, 0, tzinfo=UTC)


def test_guards_and_actions_compute_on_the_databases_calendars(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(LOANER)
    _plant(sessions)
    _set(sessions, "delivery_calendar", "plant")
    case_id = create_case(sessions, "it_loaner_time").case.id

    with pytest.raises(GuardRejected):  # 9 October is a working day in China, not at the plant
        fire(sessions, case_id, "promise", {"at": "2025-10-09T03:00:00Z"}, now=T0)
    moved = fire(
        sessions, case_id, "promise", {"at": "2025-10-10T03:00:00Z"}, now=SHANGHAI_10_OCTOBER
    )

    # One working day after Fri 10 Oct 10:00 is the make-up Saturday 11 October, 10:00.
    reply_by = datetime.fromisoformat(moved.case.data["reply_by"])
    assert reply_by == SHANGHAI_10_OCTOBER + timedelta(days=1)
