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
from engine.services import cases, sla_clocks, timer_firing
from engine.services.definitions import get_definition
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


def _deliver_due(sessions: sessionmaker[Session], case_id: int, until: datetime) -> list[str]:
    """Deliver the ticket's timers due by ``until``, each at its due instant; their names."""
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
        deliver(sessions, timer_id, due_at)
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
    assert case.data["contacted_at"] == made.isoformat()
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
    assert (case.state, case.data["contacted_at"]) == ("remote_diagnosis", made.isoformat())
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
    assert (clock.status, clock.elapsed) == (ClockStatus.MET, arrived - (T0 + 25 * MINUTE))


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
