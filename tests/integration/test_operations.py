"""Operator actions on SQLite and PostgreSQL: each is recorded with its actor and reason in the
transaction of the change, forcing re-derives timers and SLA clocks, a paused SLA is due later
by exactly the paused span, and what an operator may not do changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.machine import Actor
from engine.core.records import CaseRecord, EventRecord, FireOutcome
from engine.core.sla import BREACH_AFTER, ClockStatus, compute_clocks
from engine.errors import OperationInvalid, TimerNotFound, TriggerNotPermitted
from engine.services import cases, inspection, operations, scheduling, timer_firing
from engine.services.calendars import LazyCalendars
from engine.services.definitions import get_definition
from engine.store.models import CaseSla, TimerStatus
from tests.conftest import ADMIN, T0
from tests.factories import create_case, create_ticket, deliver, fail_reminder, fire
from tests.workflows import PLAIN, TICKET

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SUPERVISOR = Actor("token:duty-supervisor", frozenset({"supervisor"}))

# --- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything an operator action may change, read in a session of its own."""

    case: CaseRecord
    history: tuple[EventRecord, ...]
    timers: tuple[tuple[Any, ...], ...]
    slas: tuple[tuple[Any, ...], ...]


def _snapshot(sessions: sessionmaker[Session], case_id: int) -> Snapshot:
    with sessions() as session, session.begin():
        rows = session.execute(
            select(
                CaseSla.sla,
                CaseSla.status,
                CaseSla.due_at,
                CaseSla.warn_at,
                CaseSla.elapsed_seconds,
            )
            .where(CaseSla.case_id == case_id)
            .order_by(CaseSla.sla)
        ).all()
        return Snapshot(
            cases.get_case(session, case_id),
            tuple(cases.history(session, case_id)),
            tuple(
                (t.id, t.name, t.status, t.due_at, t.attempts, t.note)
                for t in timer_firing.case_timers(session, case_id)
            ),
            tuple(tuple(r) for r in rows),
        )


def _timers_by_status(sessions: sessionmaker[Session], case_id: int) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with sessions() as session, session.begin():
        for t in timer_firing.case_timers(session, case_id):
            out.setdefault(t.status, {})[t.name] = t
    return out


def _slas(sessions: sessionmaker[Session], case_id: int) -> dict[str, CaseSla]:
    with sessions() as session, session.begin():
        return {
            r.sla: r
            for r in session.execute(select(CaseSla).where(CaseSla.case_id == case_id)).scalars()
        }


def _clocks(sessions: sessionmaker[Session], case_id: int, now: datetime) -> dict[str, Any]:
    with sessions() as session, session.begin():
        case = cases.get_case(session, case_id)
        definition = get_definition(session, case.definition_name, case.definition_version)
        return {
            c.name: c
            for c in compute_clocks(
                definition,
                cases.history(session, case_id),
                data=case.data,
                params=case.params,
                now=now,
                calendars=LazyCalendars(session),
            )
        }


def _operate(
    sessions: sessionmaker[Session],
    operation: Callable[..., FireOutcome],
    *args: Any,
    actor: Actor = SUPERVISOR,
    **kw: Any,
) -> FireOutcome:
    """One operator action (by the duty supervisor unless ``actor`` is given) in a transaction
    of its own, as the API and the CLI run it."""
    with sessions() as session, session.begin():
        return operation(session, *args, actor=actor, **kw)


def _pause_response(
    sessions: sessionmaker[Session], case_id: int, paused: bool = True, **kw: Any
) -> FireOutcome:
    """The duty supervisor pauses (``paused=False``: resumes) the ticket's response clock."""
    return _operate(sessions, operations.set_sla_paused, case_id, "response", paused, **kw)


def _reason_of(event: EventRecord) -> Any:
    return event.payload.get("reason") or (event.context or {}).get("reason")


# Each operator action, ready to run on a case prepared for it. ``now`` is T0 + 3h.
NOW = T0 + 3 * HOUR
Act = Callable[[Session, dict[str, int], str], FireOutcome]
ACTIONS: dict[str, tuple[Act, str]] = {
    "fire": (
        lambda s, ids, why: operations.fire(
            s, ids["case"], "start", {}, actor=SUPERVISOR, reason=why, now=NOW
        ),
        "transition",
    ),
    "cancel": (
        lambda s, ids, why: operations.cancel(
            s, ids["case"], actor=SUPERVISOR, reason=why, now=NOW
        ),
        "cancelled",
    ),
    "force": (
        lambda s, ids, why: operations.force_state(
            s, ids["case"], "repairing", actor=ADMIN, reason=why, now=NOW
        ),
        "forced",
    ),
    "pause": (
        lambda s, ids, why: operations.set_sla_paused(
            s, ids["case"], "response", True, actor=SUPERVISOR, reason=why, now=NOW
        ),
        "sla_paused",
    ),
    "resume": (
        lambda s, ids, why: operations.set_sla_paused(
            s, ids["case"], "response", False, actor=SUPERVISOR, reason=why, now=NOW
        ),
        "sla_resumed",
    ),
    "reassign": (
        lambda s, ids, why: operations.reassign(
            s, ids["case"], "Li", actor=SUPERVISOR, reason=why, now=NOW
        ),
        "reassigned",
    ),
    "retry_timer": (
        lambda s, ids, why: operations.retry_timer(
            s, ids["timer"], actor=SUPERVISOR, reason=why, now=NOW
        ),
        "timer_retried",
    ),
}


def _prepare(sessions: sessionmaker[Session], action: str) -> dict[str, int]:
    case_id = create_ticket(sessions, allowed=action != "retry_timer", engineer="Wang")
    ids = {"case": case_id}
    if action == "resume":
        _pause_response(sessions, case_id, reason="customer asked to wait", now=T0 + HOUR)
    if action == "retry_timer":
        ids["timer"] = fail_reminder(sessions, case_id)
    return ids


# --- every action: recorded with actor and reason, atomically ----------------------------------


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_records_actor_and_reason_in_its_own_transaction(
    sessions: sessionmaker[Session], publish_workflow: Any, action: str
) -> None:
    publish_workflow(TICKET)
    ids = _prepare(sessions, action)
    before = _snapshot(sessions, ids["case"])
    act, event_type = ACTIONS[action]
    actor = ADMIN if action == "force" else SUPERVISOR

    session = sessions()
    session.begin()
    outcome = act(session, ids, "customer called back")
    seen = cases.history(session, ids["case"])
    session.rollback()
    session.close()

    event = seen[-1]
    assert event == outcome.event
    assert (event.event_type, event.actor, _reason_of(event)) == (
        event_type,
        actor.name,
        "customer called back",
    )
    assert event.seq == before.case.version + 1 and event.at == NOW
    assert _snapshot(sessions, ids["case"]) == before  # rolled back: nothing of it remains

    with sessions() as session, session.begin():  # and committed, it stays
        act(session, ids, "customer called back")
    after = _snapshot(sessions, ids["case"])
    assert after.history[:-1] == before.history
    assert (after.history[-1].event_type, after.history[-1].actor) == (event_type, actor.name)


@pytest.mark.parametrize("reason", ["", " \n\t "])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_an_action_without_a_reason_is_refused_and_changes_nothing(
    sessions: sessionmaker[Session], publish_workflow: Any, action: str, reason: str
) -> None:
    publish_workflow(TICKET)
    ids = _prepare(sessions, action)
    before = _snapshot(sessions, ids["case"])
    act, _ = ACTIONS[action]

    with (
        pytest.raises(OperationInvalid, match="need a reason") as refused,
        sessions() as session,
        session.begin(),
    ):
        act(session, ids, reason)

    assert refused.value.hint
    assert _snapshot(sessions, ids["case"]) == before


def test_a_hand_fired_trigger_keeps_the_reason_with_the_transition(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    outcome = _operate(
        sessions,
        operations.fire,
        case_id,
        "start",
        {},
        reason="  parts arrived early ",
        now=T0 + HOUR,
    )
    assert outcome.case.state == "repairing"
    event = _snapshot(sessions, case_id).history[-1]
    assert (event.trigger, event.context) == ("start", {"reason": "parts arrived early"})


# --- forcing -----------------------------------------------------------------------------------


def test_forcing_a_state_re_derives_its_timers_and_sla_clocks(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    armed = _timers_by_status(sessions, case_id)["armed"]
    assert set(armed) == {"remind", "sla:response:sla_warning:0.5", "sla:response:sla_breached:1.0"}
    forced_at = T0 + HOUR

    outcome = _operate(
        sessions,
        operations.force_state,
        case_id,
        "repairing",
        actor=ADMIN,
        reason="work started without the hotline",
        now=forced_at,
    )

    assert (outcome.case.state, outcome.case.state_entered_at) == ("repairing", forced_at)
    assert outcome.allowed_triggers == ("chase", "close")
    event = outcome.event
    assert (event.event_type, event.from_state, event.to_state, event.actor, event.payload) == (
        "forced",
        "received",
        "repairing",
        ADMIN.name,
        {"reason": "work started without the hotline"},
    )
    by_status = _timers_by_status(sessions, case_id)
    assert set(by_status["armed"]) == {"chase_parts", "sla:repair:sla_breached:1.0"}
    assert by_status["armed"]["chase_parts"].due_at == forced_at + DAY
    breach = by_status["armed"]["sla:repair:sla_breached:1.0"]
    assert breach.due_at == forced_at + 2 * DAY + BREACH_AFTER
    assert by_status["cancelled"]["remind"].note == "left state 'received'"
    assert set(by_status["cancelled"]) >= {"remind", "sla:response:sla_breached:1.0"}

    slas = _slas(sessions, case_id)
    assert (slas["response"].status, slas["response"].stopped_at) == ("met", forced_at)
    assert slas["response"].elapsed_seconds == HOUR.total_seconds()
    assert (slas["repair"].status, slas["repair"].started_at, slas["repair"].due_at) == (
        "running",
        forced_at,
        forced_at + 2 * DAY,
    )
    clocks = _clocks(sessions, case_id, forced_at + DAY)
    assert clocks["response"].status is ClockStatus.MET
    assert (clocks["repair"].status, clocks["repair"].due_at) == (
        ClockStatus.RUNNING,
        forced_at + 2 * DAY,
    )


def test_forcing_a_case_into_its_own_state_restarts_its_timers_and_nothing_else(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """A forced move into the state the case is in is a re-entry, as a ``reenter``
    transition is: the state's timers start again from the forced instant; the stay goes
    on for SLA clocks and dwell statistics (an operator cannot reset a promise's clock)."""
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    with sessions() as session, session.begin():
        operations.force_state(
            session, case_id, "repairing", actor=ADMIN, reason="work started", now=T0 + HOUR
        )
    again = T0 + 5 * HOUR
    with sessions() as session, session.begin():
        outcome = operations.force_state(
            session, case_id, "repairing", actor=ADMIN, reason="re-arm the chase", now=again
        )

    assert (outcome.event.from_state, outcome.event.to_state) == ("repairing", "repairing")
    assert outcome.case.state_entered_at == again
    armed = _timers_by_status(sessions, case_id)["armed"]
    assert armed["chase_parts"].due_at == again + DAY  # restarted
    assert armed["sla:repair:sla_breached:1.0"].due_at == T0 + HOUR + 2 * DAY + BREACH_AFTER
    repair = _clocks(sessions, case_id, again + HOUR)["repair"]
    assert (repair.status, repair.started_at) == (ClockStatus.RUNNING, T0 + HOUR)
    assert repair.elapsed == 5 * HOUR
    with sessions() as session, session.begin():
        dwells = inspection.ended_dwells(cases.history(session, case_id))
    assert dwells == [("received", HOUR.total_seconds())]  # the stay in repairing goes on


def test_forcing_into_a_final_state_closes_the_case_and_stops_everything(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    outcome = _operate(
        sessions,
        operations.force_state,
        case_id,
        "closed",
        actor=ADMIN,
        reason="duplicate of another ticket",
        now=T0 + HOUR,
    )
    assert (outcome.case.status, outcome.allowed_triggers) == ("completed", ())
    assert "armed" not in _timers_by_status(sessions, case_id)
    assert _slas(sessions, case_id)["response"].status == "met"


def test_only_an_administrator_may_force_and_a_refusal_changes_nothing(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    before = _snapshot(sessions, case_id)

    with pytest.raises(TriggerNotPermitted, match="Only administrators"):
        _operate(
            sessions, operations.force_state, case_id, "repairing", reason="please", now=T0 + HOUR
        )
    with pytest.raises(OperationInvalid, match="no state 'nowhere'") as unknown:
        _operate(
            sessions,
            operations.force_state,
            case_id,
            "nowhere",
            actor=ADMIN,
            reason="typo",
            now=T0 + HOUR,
        )
    assert "received, repairing, on_hold, closed" in (unknown.value.hint or "")
    assert _snapshot(sessions, case_id) == before

    fire(sessions, case_id, "close", now=T0 + HOUR)
    with pytest.raises(OperationInvalid, match="only open cases move"):
        _operate(
            sessions,
            operations.force_state,
            case_id,
            "received",
            actor=ADMIN,
            reason="reopen",
            now=T0 + 2 * HOUR,
        )


# --- pausing and resuming an SLA ---------------------------------------------------------------


def test_a_paused_sla_is_due_later_by_exactly_the_paused_span(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    assert (
        _slas(sessions, case_id)["response"].due_at,
        _slas(sessions, case_id)["response"].warn_at,
    ) == (T0 + 4 * HOUR, T0 + 2 * HOUR)
    paused_at, resumed_at = T0 + HOUR, T0 + 3 * HOUR + 25 * timedelta(minutes=1)
    span = resumed_at - paused_at

    paused = _pause_response(sessions, case_id, reason="customer on holiday", now=paused_at)
    assert paused.event.payload == {"sla": "response", "reason": "customer on holiday"}
    row = _slas(sessions, case_id)["response"]
    assert (row.status, row.due_at, row.elapsed_seconds) == ("paused", None, HOUR.total_seconds())
    sla_timers = {n for n in _timers_by_status(sessions, case_id)["armed"] if n.startswith("sla:")}
    assert sla_timers == set()  # nothing runs while paused
    assert _clocks(sessions, case_id, T0 + 3 * HOUR)["response"].elapsed == HOUR

    _pause_response(sessions, case_id, reason="customer is back", now=resumed_at, paused=False)

    row = _slas(sessions, case_id)["response"]
    assert (row.status, row.due_at, row.warn_at) == (
        "running",
        T0 + 4 * HOUR + span,
        T0 + 2 * HOUR + span,
    )
    armed = _timers_by_status(sessions, case_id)["armed"]
    assert armed["sla:response:sla_breached:1.0"].due_at == T0 + 4 * HOUR + span + BREACH_AFTER
    assert armed["sla:response:sla_warning:0.5"].due_at == T0 + 2 * HOUR + span
    clock = _clocks(sessions, case_id, resumed_at + HOUR)["response"]
    assert (clock.status, clock.elapsed, clock.due_at) == (
        ClockStatus.RUNNING,
        2 * HOUR,
        T0 + 4 * HOUR + span,
    )
    events = [
        (e.event_type, e.actor, e.payload.get("reason"))
        for e in _snapshot(sessions, case_id).history
    ]
    assert events[-2:] == [
        ("sla_paused", SUPERVISOR.name, "customer on holiday"),
        ("sla_resumed", SUPERVISOR.name, "customer is back"),
    ]


def test_a_pause_given_a_resume_time_ends_by_itself_at_that_time(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """ "The customer is away until Monday": a pause with a resume time arms one timer; when it
    fires, ``sla_resumed`` is in the history and the clock runs again, due later by exactly the
    paused span. A resume by hand before then takes the timer away."""
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    paused_at, resume_at = T0 + HOUR, T0 + 3 * HOUR

    paused = _pause_response(
        sessions, case_id, reason="customer away until 3 pm", now=paused_at, resume_at=resume_at
    )
    assert paused.event.payload["resume_at"] == resume_at.isoformat()
    armed = _timers_by_status(sessions, case_id)["armed"]
    sla_timers = {n: t.due_at for n, t in armed.items() if n.startswith("sla:response")}
    assert sla_timers == {"sla:response:sla_resume": resume_at}
    assert _slas(sessions, case_id)["response"].resume_at == resume_at

    outcome = deliver(sessions, armed["sla:response:sla_resume"].id, resume_at)

    assert outcome is not None
    last = _snapshot(sessions, case_id).history[-1]
    assert (last.event_type, last.payload["sla"], last.at) == ("sla_resumed", "response", resume_at)
    row = _slas(sessions, case_id)["response"]
    span = resume_at - paused_at
    assert (row.status, row.due_at, row.resume_at) == ("running", T0 + 4 * HOUR + span, None)
    armed = _timers_by_status(sessions, case_id)["armed"]
    assert armed["sla:response:sla_breached:1.0"].due_at == T0 + 4 * HOUR + span + BREACH_AFTER
    assert "sla:response:sla_resume" not in armed

    # Resumed by hand before its time, the pause leaves no timer behind.
    with sessions() as session, session.begin():
        operations.set_sla_paused(
            session,
            case_id,
            "response",
            True,
            actor=SUPERVISOR,
            reason="away again",
            now=T0 + 4 * HOUR,
            resume_at=T0 + 9 * HOUR,
        )
        operations.set_sla_paused(
            session,
            case_id,
            "response",
            False,
            actor=SUPERVISOR,
            reason="back early",
            now=T0 + 5 * HOUR,
        )
    assert "sla:response:sla_resume" not in _timers_by_status(sessions, case_id)["armed"]
    assert _timers_by_status(sessions, case_id)["cancelled"]["sla:response:sla_resume"]


def test_a_resume_time_must_be_ahead_and_belongs_to_a_pause(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    before = _snapshot(sessions, case_id)

    def pause(paused: bool, resume_at: datetime) -> None:
        _pause_response(
            sessions, case_id, reason="checking", now=T0 + HOUR, resume_at=resume_at, paused=paused
        )

    with pytest.raises(OperationInvalid, match="must be later than now") as past:
        pause(True, T0 + HOUR)
    assert (
        past.value.hint == "Give resume_at with a pause, as an instant in the future within a year."
    )
    with pytest.raises(OperationInvalid, match="not to a resume"):
        pause(False, T0 + 2 * HOUR)
    assert _snapshot(sessions, case_id) == before


def test_a_resume_timer_delivered_late_resumes_the_clock_at_its_resume_time(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """Paused at 1 h (1 h elapsed) until 3 h; the workers were down until 5 h. The outage adds
    nothing to the pause: at 6 h the clock has run 1 h + 3 h."""
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    _pause_response(
        sessions, case_id, reason="customer away", now=T0 + HOUR, resume_at=T0 + 3 * HOUR
    )
    resume = _timers_by_status(sessions, case_id)["armed"]["sla:response:sla_resume"]

    deliver(sessions, resume.id, T0 + 5 * HOUR)

    last = _snapshot(sessions, case_id).history[-1]
    assert (last.event_type, last.at) == ("sla_resumed", T0 + 3 * HOUR)
    assert last.context == {"received_at": (T0 + 5 * HOUR).isoformat()}
    assert _clocks(sessions, case_id, T0 + 6 * HOUR)["response"].elapsed == 4 * HOUR


def test_a_pause_is_found_since_it_began_whatever_re_planned_its_clock_later(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    _pause_response(
        sessions, case_id, reason="customer away", now=T0 + HOUR, resume_at=T0 + 30 * HOUR
    )
    with sessions() as session, session.begin():
        case = cases.get_case(session, case_id)
        definition = get_definition(session, case.definition_name, case.definition_version)
        scheduling.replan_case(session, definition, case, now=T0 + 20 * HOUR, note="calendar")
        (found,) = inspection.inspect(
            session, now=T0 + 21 * HOUR, reasons=[inspection.Reason.SLA_PAUSED]
        )
    assert (found.since, found.until) == (T0 + HOUR, T0 + 30 * HOUR)


@pytest.mark.parametrize(
    ("resume_at", "message"),
    [
        (datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-14))), "within a year"),
        (T0 + HOUR + timedelta(days=367), "within a year"),
        (T0 + HOUR, "must be later than now"),
    ],
)
def test_a_resume_time_is_ahead_and_within_a_year(
    sessions: sessionmaker[Session], publish_workflow: Any, resume_at: datetime, message: str
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    before = _snapshot(sessions, case_id)
    with pytest.raises(OperationInvalid, match=message):
        _pause_response(sessions, case_id, reason="r", now=T0 + HOUR, resume_at=resume_at)
    assert _snapshot(sessions, case_id) == before


def test_a_clock_is_paused_only_when_running_and_resumed_only_when_paused(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    before = _snapshot(sessions, case_id)

    def toggle(sla: str, pause: bool) -> None:
        _operate(
            sessions,
            operations.set_sla_paused,
            case_id,
            sla,
            pause,
            reason="checking",
            now=T0 + HOUR,
        )

    with pytest.raises(OperationInvalid, match="is running; only a paused clock"):
        toggle("response", False)
    with pytest.raises(OperationInvalid, match="is pending; only a running clock"):
        toggle("repair", True)
    with pytest.raises(OperationInvalid, match="no SLA 'resolution'") as unknown:
        toggle("resolution", True)
    assert unknown.value.hint == "SLAs: response, repair."
    assert _snapshot(sessions, case_id) == before
    toggle("response", True)
    with pytest.raises(OperationInvalid, match="is paused; only a running clock"):
        toggle("response", True)


def test_a_clock_paused_by_its_state_is_not_resumed_by_hand(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    fire(sessions, case_id, "hold", now=T0 + HOUR)
    before = _snapshot(sessions, case_id)
    assert _slas(sessions, case_id)["response"].status == "paused"

    with pytest.raises(OperationInvalid, match="paused by its state 'on_hold', not by an operator"):
        _pause_response(
            sessions, case_id, reason="customer is back", now=T0 + 2 * HOUR, paused=False
        )
    assert _snapshot(sessions, case_id) == before

    # Paused by hand as well, a resume lifts the operator's pause; the state's pause stays.
    fire(sessions, case_id, "unhold", now=T0 + 2 * HOUR)
    _pause_response(sessions, case_id, reason="customer on holiday", now=T0 + 3 * HOUR)
    fire(sessions, case_id, "hold", now=T0 + 4 * HOUR)
    _pause_response(sessions, case_id, reason="customer is back", now=T0 + 5 * HOUR, paused=False)
    assert _slas(sessions, case_id)["response"].status == "paused"
    fire(sessions, case_id, "unhold", now=T0 + 6 * HOUR)
    row = _slas(sessions, case_id)["response"]  # ran 1h + 1h: due 2h after T0+6h
    assert (row.status, row.due_at) == ("running", T0 + 8 * HOUR)


# --- reassigning -------------------------------------------------------------------------------


def test_reassigning_sets_the_assignee_field_and_records_who_had_it(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions, engineer="Wang")
    unassigned = create_ticket(sessions)

    with sessions() as session, session.begin():
        outcome = operations.reassign(
            session, case_id, "Li", actor=SUPERVISOR, reason="Wang is on leave", now=T0 + HOUR
        )
        operations.reassign(
            session, unassigned, "Zhao", actor=SUPERVISOR, reason="first assignment", now=T0 + HOUR
        )

    assert outcome.case.data == {"allowed": True, "engineer": "Li"}
    assert (outcome.case.state, outcome.case.version) == ("received", 2)
    event = _snapshot(sessions, case_id).history[-1]
    assert (event.event_type, event.changes, event.payload) == (
        "reassigned",
        {"engineer": "Li"},
        {"field": "engineer", "from": "Wang", "to": "Li", "reason": "Wang is on leave"},
    )
    assert _snapshot(sessions, case_id).case.data["engineer"] == "Li"
    assert _snapshot(sessions, unassigned).history[-1].payload["from"] is None
    assert _snapshot(sessions, unassigned).case.data["engineer"] == "Zhao"


def test_reassigning_is_refused_where_the_definition_names_no_assignee(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(PLAIN)
    case_id = create_case(sessions, "plain").case.id
    before = _snapshot(sessions, case_id)
    with pytest.raises(OperationInvalid, match="declares no assignee field") as refused:
        _operate(sessions, operations.reassign, case_id, "Li", reason="cover", now=T0 + HOUR)
    assert "assignee:" in (refused.value.hint or "")
    assert _snapshot(sessions, case_id) == before


# --- retrying a failed timer -------------------------------------------------------------------


def test_retrying_a_failed_timer_re_arms_it_and_records_timer_retried(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions, allowed=False)
    timer_id = fail_reminder(sessions, case_id)
    failed = _timers_by_status(sessions, case_id)["failed"]["remind"]
    assert failed.last_error.startswith("GuardRejected:")
    fire(sessions, case_id, "permit", now=T0 + 150 * timedelta(minutes=1))  # the cause, fixed

    outcome = _operate(
        sessions, operations.retry_timer, timer_id, reason="guard data fixed", now=NOW
    )

    assert (outcome.event.event_type, outcome.event.actor, outcome.event.payload) == (
        "timer_retried",
        SUPERVISOR.name,
        {"timer_id": timer_id, "reason": "guard data fixed"},
    )
    timer = _timers_by_status(sessions, case_id)["armed"]["remind"]
    assert (timer.id, timer.note) == (timer_id, f"retried by {SUPERVISOR.name}: guard data fixed")

    with sessions() as session, session.begin():
        fired = timer_firing.fire_due_timer(session, timer_id, now=NOW)
    assert fired.result is timer_firing.FireResult.FIRED
    last = _snapshot(sessions, case_id).history[-1]
    assert (last.event_type, last.trigger, last.actor) == ("transition", "remind", "timer")


def test_only_a_failed_timer_can_be_retried(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions)
    armed = _timers_by_status(sessions, case_id)["armed"]["remind"]
    before = _snapshot(sessions, case_id)
    for timer_id in (armed.id, 999_999):
        with pytest.raises(TimerNotFound, match=f"No failed timer with id {timer_id}"):
            _operate(sessions, operations.retry_timer, timer_id, reason="again", now=NOW)
    assert _snapshot(sessions, case_id) == before
    assert _timers_by_status(sessions, case_id)["armed"]["remind"].status == (
        TimerStatus.ARMED.value
    )


def test_retrying_a_timer_whose_case_moved_on_dismisses_it_and_says_why(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions, allowed=False)
    timer_id = fail_reminder(sessions, case_id)
    fire(sessions, case_id, "start", now=T0 + 3 * timedelta(hours=1))  # left 'received'

    outcome = _operate(sessions, operations.retry_timer, timer_id, reason="try again", now=NOW)

    assert outcome.event.event_type == "timer_cancelled"
    assert outcome.event.payload == {
        "timer_id": timer_id,
        "reason": "try again",
        "why": f"case {case_id} has left the state this timer belonged to (now 'repairing')",
        # The same sentence as its code and values, for the dashboard's other language.
        "messages": {
            "why": {
                "code": "timer.state-left",
                "params": {"case_id": case_id, "state": "repairing"},
            }
        },
    }
    cancelled = _timers_by_status(sessions, case_id)["cancelled"]["remind"]
    assert cancelled.note.startswith(f"cancelled by {SUPERVISOR.name}: case {case_id} has left")


def test_a_timer_s_failed_attempts_are_in_its_case_history(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TICKET)
    case_id = create_ticket(sessions, allowed=False)
    timer_id = fail_reminder(sessions, case_id)  # a guard refusal: failed for good at once

    (failed,) = [e for e in _snapshot(sessions, case_id).history if e.event_type == "timer_failed"]
    assert (failed.actor, failed.payload) == (
        "timer",
        {
            "timer_id": timer_id,
            "timer": "remind",
            "attempt": 1,
            "error": failed.payload["error"],
            "error_detail": {
                "code": "guard-rejected",
                "message": "'remind' cannot be fired in 'received' yet: Reminders are not "
                "allowed for this ticket.",
                "reasons": [
                    {"en": "Reminders are not allowed for this ticket.", "zh": "本工单不允许提醒。"}
                ],
            },
            "retry_at": None,
            "gave_up": True,
        },
    )
    assert failed.payload["error"].startswith("GuardRejected: ")
    assert "None" not in failed.payload["error"]

    # A passing fault (the database, a lost race) is retried; the history says when.
    other = create_ticket(sessions)
    with sessions() as session:
        (remind,) = [t for t in timer_firing.case_timers(session, other) if t.name == "remind"]
    with sessions() as session, session.begin():
        retry = timer_firing.record_failure(
            session, remind.id, ConnectionError("database restarting"), now=remind.due_at
        )
    assert retry is not None
    (attempt,) = [e for e in _snapshot(sessions, other).history if e.event_type == "timer_failed"]
    assert attempt.payload["retry_at"] == retry.due_at.isoformat()
    assert (attempt.payload["attempt"], attempt.payload["gave_up"]) == (1, False)
    assert attempt.payload["error"] == "ConnectionError: database restarting"
    # Not one of svcflow's errors: no code, its Python type and text kept as they were.
    assert attempt.payload["error_detail"] == {
        "code": None,
        "type": "ConnectionError",
        "message": "database restarting",
    }
