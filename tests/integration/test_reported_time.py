"""Facts reported late, on the bundled repair ticket (docs/timers.md, "Facts reported late").

The hotline logs a call after it was made: ``contact`` says when (``payload.at``, R-REP-02),
and the first-contact clock stops then, within bounds: not in the future, not before the
ticket's previous event, not older than a day. The event keeps both instants.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.core.machine import Actor
from engine.core.records import CaseRecord, EventRecord
from engine.core.sla import ClockStatus, SlaClock
from engine.errors import PayloadInvalid
from engine.services import cases, delivery_health, sla_clocks, timer_firing
from engine.services.definitions import get_definition
from engine.store import case_store
from engine.store.models import TimerStatus
from tests.conftest import T0
from tests.factories import create_case, deliver, fire

HOTLINE = Actor("token:hotline", frozenset({"integrator"}))
ENGINEER = Actor("token:wechat-bot", frozenset({"integrator"}))
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)
TICKET = {
    "customer": "Ruijin Hospital",
    "device_serial": "CT-0042",
    "fault": "no image",
    "priority": "normal",
}


@pytest.fixture
def ticket(sessions: sessionmaker[Session], publish_workflow: Any) -> int:
    """A repair ticket logged at T0 (10:00 Beijing time): its customer is owed a call by 11:00."""
    publish_workflow("repair_ticket.yaml")
    return create_case(sessions, "repair_ticket", dict(TICKET), now=T0).case.id


def _contact(
    sessions: sessionmaker[Session], case_id: int, *, happened: datetime | str, received: datetime
) -> EventRecord:
    at = happened if isinstance(happened, str) else happened.isoformat()
    return fire(sessions, case_id, "contact", {"at": at}, actor=HOTLINE, now=received).event


def _instants(event: EventRecord) -> dict[str, Any]:
    """What the event's context says of when it happened (it also keeps the counters read)."""
    return {k: v for k, v in (event.context or {}).items() if k != "counters"}


def _state(sessions: sessionmaker[Session], case_id: int) -> tuple[CaseRecord, list[EventRecord]]:
    with sessions() as session, session.begin():
        return cases.get_case(session, case_id), cases.history(session, case_id)


def _clock(sessions: sessionmaker[Session], case_id: int, name: str, now: datetime) -> SlaClock:
    with sessions() as session, session.begin():
        case = cases.get_case(session, case_id)
        definition = get_definition(session, case.definition_name, case.definition_version)
        return next(
            c for c in sla_clocks.clocks(session, definition, case, now=now) if c.name == name
        )


def _deliver_due(
    sessions: sessionmaker[Session], case_id: int, until: datetime, at: datetime | None = None
) -> list[str]:
    """Deliver the case's timers due by ``until``, each at its due instant (or all ``at`` one
    instant, as workers catching up do); their names."""
    fired = []
    while True:
        with sessions() as session, session.begin():
            due = sorted(
                (t.due_at, t.id, t.name)
                for t in timer_firing.case_timers(session, case_id)
                if t.status == TimerStatus.ARMED.value and t.due_at <= until
            )
        if not due:
            return fired
        due_at, timer_id, name = due[0]
        deliver(sessions, timer_id, at or due_at)
        fired.append(name)


def test_a_call_logged_late_stops_the_clock_when_it_was_made_and_keeps_both_instants(
    sessions: sessionmaker[Session], ticket: int
) -> None:
    made, logged = T0 + 50 * MINUTE, T0 + 58 * MINUTE

    event = _contact(sessions, ticket, happened=made, received=logged)

    assert event.at == made
    assert _instants(event) == {
        "reported_at": made.isoformat(),
        "received_at": logged.isoformat(),
    }
    case, history = _state(sessions, ticket)
    assert history[-1] == event
    assert (case.state, case.state_entered_at, case.updated_at) == (
        "remote_diagnosis",
        made,
        logged,
    )
    assert case.data["contacted_at"] == "2025-09-30T02:50:00Z"  # `now` in its action
    clock = _clock(sessions, ticket, "first_contact", T0 + 2 * HOUR)
    assert (clock.status, clock.elapsed) == (ClockStatus.MET, 50 * MINUTE)


def test_a_call_logged_after_the_deadline_was_acted_on_counts_after_what_was_done(
    sessions: sessionmaker[Session], ticket: int
) -> None:
    """At 11:00 the ticket went to contact_late and the breach was recorded; a call made at
    10:55 and logged at 11:10 cannot go back before that: the history stays in order and the
    breach stays on record. The call's own instant is kept beside the one it counts at."""
    fired = _deliver_due(sessions, ticket, T0 + HOUR + MINUTE)
    assert fired == [
        "sla:first_contact:sla_warning:0.75",
        "contact_overdue",
        "sla:first_contact:sla_breached:1.0",
    ]
    _, before = _state(sessions, ticket)
    last = before[-1]

    made, logged = T0 + 55 * MINUTE, T0 + HOUR + 10 * MINUTE
    event = _contact(sessions, ticket, happened=made, received=logged)

    assert event.at == last.at
    assert _instants(event) == {
        "reported_at": made.isoformat(),
        "received_at": logged.isoformat(),
        "counted_at": last.at.isoformat(),
        "counted_because": f"reported before the case's previous event (seq {last.seq}), "
        "which it cannot precede: counts at that event's instant",
    }
    case, _ = _state(sessions, ticket)
    # The data, like the clock, holds the instant the call counts at; the call's own is above.
    assert (case.state, case.data["contacted_at"]) == ("remote_diagnosis", "2025-09-30T03:00:01Z")
    clock = _clock(sessions, ticket, "first_contact", logged)
    assert clock.status is ClockStatus.BREACHED


def test_a_report_older_than_its_window_counts_when_received(
    sessions: sessionmaker[Session], ticket: int
) -> None:
    made, logged = T0 + 30 * MINUTE, T0 + 26 * HOUR

    event = _contact(sessions, ticket, happened=made, received=logged)

    assert event.at == logged
    assert event.context is not None
    assert event.context["counted_because"] == (
        "reported more than 1d after it happened (the transition's occurred_at.within): "
        "counts as received"
    )
    assert event.context["reported_at"] == made.isoformat()


def test_a_report_of_a_call_not_yet_made_is_refused_and_changes_nothing(
    sessions: sessionmaker[Session], ticket: int
) -> None:
    """10:30 logged as 10:30Z (18:30 in Beijing): eight hours ahead, a time zone mistake."""
    received = T0 + 30 * MINUTE
    before = _state(sessions, ticket)

    with pytest.raises(PayloadInvalid) as ahead:
        _contact(sessions, ticket, happened="2025-09-30T10:30:00Z", received=received)

    assert ahead.value.message == (
        "payload.at is 8h after the time svcflow received it: a fact is reported after it happens."
    )
    assert ahead.value.hint is not None and "+08:00" in ahead.value.hint
    assert ahead.value.fields["path"] == "payload.at"
    with pytest.raises(PayloadInvalid, match="has no UTC offset"):
        _contact(sessions, ticket, happened="2025-09-30T10:30:00", received=received)
    assert _state(sessions, ticket) == before


def test_a_sender_s_clock_a_little_ahead_counts_as_received(
    sessions: sessionmaker[Session], ticket: int
) -> None:
    received = T0 + 30 * MINUTE

    event = _contact(
        sessions, ticket, happened=received + 45 * timedelta(seconds=1), received=received
    )

    assert event.at == received
    assert event.context is not None
    assert event.context["counted_because"] == (
        "reported after it was received (the clocks differ): counts as received"
    )


def test_an_arrival_reported_late_stops_the_arrival_clock_when_the_engineer_arrived(
    sessions: sessionmaker[Session], ticket: int
) -> None:
    """No signal in the hospital basement: the engineer's check-in reaches svcflow later."""
    _contact(sessions, ticket, happened=T0 + 10 * MINUTE, received=T0 + 10 * MINUTE)
    fire(sessions, ticket, "dispatch", {"engineer": "Wang"}, actor=HOTLINE, now=T0 + 25 * MINUTE)
    arrived, reported = T0 + 2 * HOUR, T0 + 2 * HOUR + 40 * MINUTE

    event = fire(
        sessions, ticket, "arrive", {"at": arrived.isoformat()}, actor=ENGINEER, now=reported
    ).event

    assert event.at == arrived
    clock = _clock(sessions, ticket, "arrival", reported)
    # Arrival counts from the report (T0), exactly its 2 hours: in time (R-REP-04).
    assert (clock.status, clock.elapsed) == (ClockStatus.MET, arrived - T0)


def test_a_trigger_without_the_instant_counts_when_received(
    sessions: sessionmaker[Session], ticket: int
) -> None:
    _contact(sessions, ticket, happened=T0 + 10 * MINUTE, received=T0 + 10 * MINUTE)
    fire(sessions, ticket, "dispatch", {"engineer": "Wang"}, actor=HOTLINE, now=T0 + 25 * MINUTE)

    event = fire(sessions, ticket, "arrive", {}, actor=ENGINEER, now=T0 + HOUR).event

    assert (event.at, _instants(event)) == (T0 + HOUR, {})


def test_a_complaint_call_logged_late_counts_when_it_was_made(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """R-CMP-02: the manager called the customer at 14:00; the form was typed in at 16:00."""
    publish_workflow("complaint.yaml")
    data = {
        "customer": "河南省人民医院",
        "description": "工程师未按约定时间到场",
        "category": "non_quality",
        "severity": "minor",
    }
    case_id = create_case(sessions, "complaint", data, now=T0).case.id
    called, typed = T0 + 4 * HOUR, T0 + 6 * HOUR

    event = fire(
        sessions,
        case_id,
        "contact",
        {"manager": "王建国", "complaint_form": "TS-01", "at": called.isoformat()},
        actor=HOTLINE,
        now=typed,
    ).event

    assert event.at == called
    case, _ = _state(sessions, case_id)
    assert case.data["contacted_at"] == "2025-09-30T06:00:00Z"  # `now` in its action
    clock = _clock(sessions, case_id, "first_contact", typed)
    assert (clock.status, clock.elapsed) == (ClockStatus.MET, 4 * HOUR)


# --- what a late report sets in motion -----------------------------------------------------

JOB = """\
name: late_job
title: {en: Job, zh: 工作}
initial: new
states:
  - {name: new, title: {en: New, zh: 新}}
  - {name: lent, title: {en: Lent, zh: 借出}}
  - {name: escalated, title: {en: Escalated, zh: 升级}}
  - {name: back, title: {en: Back, zh: 回}}
  - {name: closed, title: {en: Closed, zh: 关}, final: true}
transitions:
  - trigger: lend
    source: new
    dest: lent
    actions:
      - spawn: {definition: late_loaner, data: {}}
  - {trigger: escalate, source: lent, dest: escalated}
  - {trigger: loaner_returned, source: [lent, escalated], dest: back}
  - {trigger: close, source: [new, lent, escalated, back], dest: closed}
slas:
  - name: get_back
    title: {en: Get back, zh: 取回}
    target: 4h
    start: {states: [escalated]}
    stop: {triggers: [loaner_returned]}
"""
LOANER = """\
name: late_loaner
title: {en: Loaner, zh: 备用机}
initial: out
states:
  - {name: out, title: {en: Out, zh: 借出}}
  - {name: returned, title: {en: Returned, zh: 已归还}, final: true}
parent:
  definition: late_job
  notify: {final: loaner_returned}
transitions:
  - trigger: return
    source: out
    dest: returned
    occurred_at: {field: at, within: 24h}
    payload_schema:
      type: object
      properties: {at: {type: string, format: date-time}}
"""
VISIT = """\
name: late_visit
title: {en: Visit, zh: 上门}
initial: new
states:
  - {name: new, title: {en: New, zh: 新}}
  - name: visited
    title: {en: Visited, zh: 已上门}
    timers:
      - {name: follow_up, after: 2h, trigger: follow}
      - {name: hourly, every: "0 * * * *", trigger: ping}
  - {name: done, title: {en: Done, zh: 完成}, final: true}
transitions:
  - trigger: visit
    source: new
    dest: visited
    occurred_at: {field: at, within: 24h}
    payload_schema:
      type: object
      properties: {at: {type: string, format: date-time}}
    actions:
      - spawn: {definition: late_loaner_free, data: {}}
  - {trigger: ping, source: visited, dest: visited}
  - {trigger: follow, source: visited, dest: visited}
  - {trigger: close, source: visited, dest: done}
"""
FOLLOW_UP = """\
name: late_loaner_free
title: {en: Follow-up, zh: 回访}
initial: open
states:
  - {name: open, title: {en: Open, zh: 待回访}}
  - {name: done, title: {en: Done, zh: 完成}, final: true}
transitions:
  - {trigger: finish, source: open, dest: done}
"""


def test_a_late_report_moves_no_other_case_s_history_back(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """The loaner's return, made at 10:30, is reported at 13:00; its parent escalated at 12:00
    (its clock started then). The parent takes the news when it comes: in order, and its
    clock measures no negative time."""
    publish_workflow(JOB)
    publish_workflow(LOANER)
    job = create_case(sessions, "late_job", {}, now=T0).case.id
    fire(sessions, job, "lend", {}, now=T0 + 10 * MINUTE)
    with sessions() as session:
        (loaner,) = case_store.children_of(session, job)
    fire(sessions, job, "escalate", {}, now=T0 + 2 * HOUR)

    returned = fire(
        sessions,
        loaner.id,
        "return",
        {"at": (T0 + 30 * MINUTE).isoformat()},
        actor=HOTLINE,
        now=T0 + 3 * HOUR,
    ).event

    assert returned.at == T0 + 30 * MINUTE
    parent, history = _state(sessions, job)
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert (history[-1].trigger, history[-1].at) == ("loaner_returned", T0 + 3 * HOUR)
    assert parent.state_entered_at == T0 + 3 * HOUR
    clock = _clock(sessions, job, "get_back", T0 + 4 * HOUR)
    assert (clock.status, clock.elapsed) == (ClockStatus.MET, HOUR)


def test_timers_of_a_state_entered_in_the_past_are_armed_now_and_catch_up_once(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """A visit made at 10:10 is reported at 06:00 the next day: the state's timers count from
    10:10, so they are due already. They are expected from now (no readiness alarm, no
    lateness), the child case it spawns begins now, and the hourly timer fires once, not
    twenty times."""
    publish_workflow(FOLLOW_UP)
    publish_workflow(VISIT)
    case_id = create_case(sessions, "late_visit", {}, now=T0).case.id
    made, received = T0 + 10 * MINUTE, T0 + 20 * HOUR

    fire(sessions, case_id, "visit", {"at": made.isoformat()}, actor=HOTLINE, now=received)

    with sessions() as session, session.begin():
        armed = {t.name: t for t in timer_firing.armed_timers(session, case_id)}
        (child,) = case_store.children_of(session, case_id)
        case = cases.get_case(session, case_id)
        overdue = delivery_health.report(session, now=received + timedelta(seconds=1))
    assert armed["follow_up"].due_at == made + 2 * HOUR
    assert {t.deliver_at for t in armed.values()} == {received}
    assert {t.created_at for t in armed.values()} == {received}
    assert overdue.overdue_seconds < 2  # due hours ago, but armed a moment ago
    assert (case.updated_at, child.created_at) == (received, received)

    fired = _deliver_due(sessions, case_id, received, at=received)
    assert sorted(fired) == ["follow_up", "hourly"]
    with sessions() as session, session.begin():
        (hourly,) = [t for t in timer_firing.armed_timers(session, case_id) if t.name == "hourly"]
    assert hourly.due_at == received + HOUR  # 07:00 the next day, on the hour


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_an_instant_outside_the_range_of_times_is_a_payload_error(
    sessions: sessionmaker[Session], ticket: int, value: str
) -> None:
    with pytest.raises(PayloadInvalid, match="is not a date and time"):
        _contact(sessions, ticket, happened=value, received=T0 + 10 * MINUTE)


def test_a_long_value_is_quoted_cut_short(sessions: sessionmaker[Session], ticket: int) -> None:
    with pytest.raises(PayloadInvalid) as refused:
        _contact(sessions, ticket, happened="x" * 500_000, received=T0 + 10 * MINUTE)
    assert len(refused.value.message) < 300
