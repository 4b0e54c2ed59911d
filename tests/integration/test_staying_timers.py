"""What staying in a state does to its timers, through the services on SQLite and
PostgreSQL: a transition without `dest` keeps them running from the original entry; one with
`reenter: true` cancels them and arms them afresh from its own event."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.services import cases, timer_firing
from engine.store.models import Timer, TimerStatus
from tests.conftest import T0
from tests.factories import create_case, deliver, fire

HOUR = timedelta(hours=1)

REMINDERS = """\
name: tst_reminders
title: {en: Reminders, zh: 提醒}
initial: waiting
data_schema:
  type: object
  properties:
    notes: {type: integer}
    reminders: {type: integer}
states:
  - name: waiting
    title: {en: Waiting, zh: 等待}
    timers:
      - name: nudge
        after: 4h
        trigger: remind
  - name: paused
    title: {en: Paused, zh: 暂停}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - trigger: note
    source: [waiting, paused]
    actions:
      - increment: notes
  - trigger: remind
    source: waiting
    reenter: true
    actions:
      - increment: reminders
  - trigger: pause
    source: waiting
    dest: paused
  - trigger: finish
    source: [waiting, paused]
    dest: done
"""


def _timers(sessions: sessionmaker[Session], case_id: int) -> list[tuple[str, object, str | None]]:
    with sessions() as session, session.begin():
        rows = session.scalars(select(Timer).where(Timer.case_id == case_id).order_by(Timer.id))
        return [(t.status, t.due_at, t.note) for t in rows]


def test_a_stay_keeps_the_state_timers_running_from_the_first_entry(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(REMINDERS)
    case_id = create_case(sessions, "tst_reminders").case.id

    outcome = fire(sessions, case_id, "note", now=T0 + HOUR)

    assert outcome.case.state == "waiting"
    assert outcome.case.state_entered_at == T0
    assert _timers(sessions, case_id) == [(TimerStatus.ARMED.value, T0 + 4 * HOUR, None)]
    assert outcome.event.context is None  # a plain stay: from == to, no re-entry


def test_a_reentry_restarts_the_state_timers_from_its_own_event(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    """The reminder loop: each nudge fires `remind`, which re-enters `waiting` and so arms
    the next nudge four hours after itself."""
    publish_workflow(REMINDERS)
    case_id = create_case(sessions, "tst_reminders").case.id
    with sessions() as session, session.begin():
        (first,) = timer_firing.case_timers(session, case_id)
    due = T0 + 4 * HOUR

    deliver(sessions, first.id, due)

    with sessions() as session, session.begin():
        case = cases.get_case(session, case_id)
        reminded = cases.history(session, case_id)[-1]
    assert (case.state, case.state_entered_at, case.data) == ("waiting", due, {"reminders": 1})
    assert case.state_entry_seq == reminded.seq
    assert (reminded.trigger, reminded.from_state, reminded.to_state) == (
        "remind",
        "waiting",
        "waiting",
    )
    assert reminded.context == {"reentered": True}
    assert _timers(sessions, case_id) == [
        (TimerStatus.FIRED.value, due, None),
        (TimerStatus.ARMED.value, due + 4 * HOUR, None),
    ]


def test_a_stay_in_a_state_without_timers_arms_none(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(REMINDERS)
    case_id = create_case(sessions, "tst_reminders").case.id
    fire(sessions, case_id, "pause", now=T0 + HOUR)

    outcome = fire(sessions, case_id, "note", now=T0 + 2 * HOUR)

    assert (outcome.case.state, outcome.case.data) == ("paused", {"notes": 1})
    assert [status for status, _, _ in _timers(sessions, case_id)] == [TimerStatus.CANCELLED.value]
