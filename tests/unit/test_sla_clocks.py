"""SLA clocks derived from hand-built histories, and the warning and breach timers they plan.

The definition is a repair visit: ``dispatched`` starts three clocks, ``on_hold`` (waiting for
the customer or a part) pauses them, ``on_site`` stops the arrival clocks and ``close`` the
report clock. ``arrival`` counts wall time, ``arrival_worktime`` working time and ``report``
working days, the last two on cn-workdays. Instants are Asia/Shanghai local time via ``sh()``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.calendar import BusinessCalendar, calendar_24x7, cn_workdays
from engine.core.definition import SlaCondition, SlaRounds, SlaSpec, parse_source
from engine.core.durations import parse_duration
from engine.core.records import EventRecord
from engine.core.sla import (
    BREACH_AFTER,
    ClockState,
    ClockStatus,
    Ruler,
    SlaClock,
    advance,
    compute_clock,
    compute_clocks,
    compute_rounds,
    measure_of,
    next_round,
    plan_clock,
    plan_sla_timers,
    ruler_for,
    touches,
    walk_rounds,
)
from engine.core.timer_plans import TimerPlan, get_calendar
from engine.core.validation import load_definition

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = cn_workdays()
H24 = calendar_24x7()
CALENDARS = {"24x7": H24, "cn-workdays": CN}
US = timedelta(microseconds=1)

SOURCE = """
name: sla_clocks
title: {en: SLA clocks, zh: 服务时限}
initial: logged
parameters:
  contact_within: {type: duration, default: 1h}
states:
  - {name: logged, title: {en: Logged, zh: 已登记}}
  - {name: dispatched, title: {en: Dispatched, zh: 已派工}}
  - {name: on_hold, title: {en: On hold, zh: 暂停}}
  - {name: on_site, title: {en: On site, zh: 已到场}}
  - {name: closed, title: {en: Closed, zh: 已关闭}, final: true}
transitions:
  - {trigger: dispatch, source: logged, dest: dispatched}
  - {trigger: hold, source: [dispatched, on_site], dest: on_hold}
  - {trigger: release, source: on_hold, dest: dispatched}
  - {trigger: arrive, source: dispatched, dest: on_site}
  - {trigger: redispatch, source: on_site, dest: dispatched}
  - {trigger: escalate, source: dispatched, dest: dispatched}
  - {trigger: close, source: [logged, dispatched, on_hold, on_site], dest: closed}
slas:
  - name: contact
    target: {param: contact_within}
    start: {states: [logged]}
    stop: {triggers: [dispatch]}
  - name: arrival
    target: 2h
    start: {states: [dispatched]}
    pause: {states: [on_hold]}
    stop: {states: [on_site]}
    warn_at: [0.75, 0.5]
    on_breach: {trigger: escalate}
  - name: arrival_worktime
    target: 8h
    calendar: cn-workdays
    start: {states: [dispatched]}
    pause: {states: [on_hold]}
    stop: {states: [on_site]}
    warn_at: [0.5]
  - name: report
    target: 3d
    calendar: cn-workdays
    start: {states: [dispatched]}
    pause: {states: [on_hold]}
    stop: {triggers: [close]}
    warn_at: [0.5]
"""
DEFINITION = load_definition(parse_source(SOURCE))
PARAMS = DEFINITION.default_params()
DEST = {t.trigger: t.dest for t in DEFINITION.transitions}
# Clocks with rounds (not in DEFINITION, whose clocks the tests above list): ``visit`` is the
# arrival promise made again at every re-dispatch; ``leg`` restarts at the very event that
# stops it (``hold`` ends one leg and begins the next), and ``close`` meets its start too but
# ends the case, so it starts none.
ROUNDS = {
    "visit": dataclasses.replace(
        DEFINITION.slas[1], name="visit", path="slas[4]", rounds=SlaRounds.REPEAT
    ),
    "leg": SlaSpec(
        path="slas[5]",
        name="leg",
        target=DEFINITION.slas[1].target,
        start=SlaCondition(triggers=("dispatch", "hold", "close")),
        stop=SlaCondition(triggers=("hold",)),
        warn_at=(0.5,),
        rounds=SlaRounds.REPEAT,
    ),
}
SLAS: dict[str, SlaSpec] = {s.name: s for s in DEFINITION.slas} | ROUNDS


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Asia/Shanghai wall-clock time as an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


T0 = sh(2025, 9, 30, 10)  # Tue 30 Sep 2025 10:00, the eve of the National Day holidays
MONDAY = sh(2025, 3, 17, 9)  # an ordinary working Monday, 09:00


class History:
    """A case's history, built the way the engine records it."""

    def __init__(self, at: datetime, state: str = "logged") -> None:
        self.state: str | None = None
        self.events: list[EventRecord] = []
        self._add("created", at, dest=state)

    def fire(self, trigger: str, at: datetime) -> History:
        self._add("transition", at, trigger=trigger, dest=DEST[trigger])
        return self

    def record(self, event_type: str, at: datetime, **payload: Any) -> History:
        """An event that does not move the case: sla_paused, sla_warning, cancelled, ..."""
        assert self.state is not None
        self._add(event_type, at, dest=self.state, payload=payload)
        return self

    def _add(
        self,
        event_type: str,
        at: datetime,
        *,
        dest: str,
        trigger: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(
            EventRecord(
                case_id=1,
                seq=len(self.events) + 1,
                event_type=event_type,
                trigger=trigger,
                from_state=self.state,
                to_state=dest,
                actor="test",
                payload=payload or {},
                changes={},
                at=at,
            )
        )
        self.state = dest


def dispatched(at: datetime = T0) -> History:
    return History(at - timedelta(minutes=5)).fire("dispatch", at)


def clock(name: str, history: History | Sequence[EventRecord], now: datetime) -> SlaClock:
    events = history.events if isinstance(history, History) else history
    return compute_clock(
        SLAS[name],
        events,
        data={},
        params=PARAMS,
        now=now,
        calendars=CALENDARS,
        finals=DEFINITION.final_states,
    )


def plans(history: History, now: datetime) -> dict[str, datetime]:
    found = plan_sla_timers(
        DEFINITION, history.events, data={}, params=PARAMS, now=now, calendars=CALENDARS
    )
    return {p.name: p.due_at for p in found}


# --- the life of a clock ------------------------------------------------------------------------


def test_clock_is_pending_until_its_start_condition_happens() -> None:
    history = History(T0)
    pending = clock("arrival", history, T0 + timedelta(hours=5))
    assert pending.status is ClockStatus.PENDING
    assert (pending.elapsed, pending.remaining) == (timedelta(0), timedelta(hours=2))
    assert (pending.started_at, pending.due_at, pending.warnings_reached) == (None, None, ())
    # The contact clock starts on creation into ``logged`` and stops on ``dispatch``.
    assert clock("contact", history, T0 + timedelta(minutes=20)).status is ClockStatus.RUNNING


def test_running_clock_reports_elapsed_remaining_and_due() -> None:
    running = clock("arrival", dispatched(), T0 + timedelta(minutes=30))
    assert running.status is ClockStatus.RUNNING
    assert running.started_at == T0
    assert running.elapsed == timedelta(minutes=30)
    assert running.remaining == timedelta(minutes=90)
    assert running.due_at == T0 + timedelta(hours=2)
    assert running.fraction == 0.25
    shown = running.to_dict()
    assert (shown["status"], shown["target_seconds"], shown["elapsed_seconds"]) == (
        "running",
        7200.0,
        1800.0,
    )
    assert (shown["started_at"], shown["due_at"]) == (
        "2025-09-30T02:00:00Z",
        "2025-09-30T04:00:00Z",
    )
    assert (running.calendar, running.unit) == ("24x7", "time")


def test_clock_stopped_in_time_is_met_and_stays_put() -> None:
    history = dispatched().fire("arrive", T0 + timedelta(minutes=50))
    for now in (T0 + timedelta(minutes=50), T0 + timedelta(days=30)):
        met = clock("arrival", history, now)
        assert met.status is ClockStatus.MET
        assert met.elapsed == timedelta(minutes=50)
        assert met.stopped_at == T0 + timedelta(minutes=50)
        assert met.due_at is None
    # Arriving at the last instant of the two hours is still within them.
    assert clock("arrival", dispatched().fire("arrive", T0 + timedelta(hours=2)), T0).status is (
        ClockStatus.MET
    )


def test_clock_stopped_late_is_breached() -> None:
    late = T0 + timedelta(hours=2, minutes=1)
    breached = clock("arrival", dispatched().fire("arrive", late), late)
    assert breached.status is ClockStatus.BREACHED
    assert breached.elapsed == timedelta(hours=2, minutes=1)
    assert breached.remaining == timedelta(0)
    assert breached.stopped_at == late


def test_running_clock_breaches_just_after_its_due_instant() -> None:
    """'Within two hours': the due instant itself is still in time (docs/timers.md)."""
    history = dispatched()
    due = clock("arrival", history, T0).due_at
    assert due == T0 + timedelta(hours=2)
    assert clock("arrival", history, due - US).status is ClockStatus.RUNNING
    at_due = clock("arrival", history, due)
    assert (at_due.status, at_due.remaining) == (ClockStatus.RUNNING, timedelta(0))
    just_after = clock("arrival", history, due + US)
    assert just_after.status is ClockStatus.BREACHED
    later = clock("arrival", history, due + timedelta(hours=3))
    assert later.status is ClockStatus.BREACHED
    assert later.elapsed == timedelta(hours=5)
    assert later.due_at == due  # the breach instant stays visible


# --- pauses -------------------------------------------------------------------------------------


def test_pause_state_stops_the_clock_for_exactly_the_paused_span() -> None:
    history = dispatched().fire("hold", T0 + timedelta(minutes=30))
    paused = clock("arrival", history, T0 + timedelta(hours=1))
    assert paused.status is ClockStatus.PAUSED
    assert (paused.elapsed, paused.remaining, paused.due_at) == (
        timedelta(minutes=30),
        timedelta(minutes=90),
        None,
    )
    history.fire("release", T0 + timedelta(hours=1, minutes=30))
    resumed = clock("arrival", history, T0 + timedelta(hours=2))
    assert resumed.status is ClockStatus.RUNNING
    assert resumed.elapsed == timedelta(hours=1)  # 10:00-10:30 and 11:30-12:00
    assert resumed.due_at == clock("arrival", dispatched(), T0).due_at + timedelta(hours=1)


def test_clock_started_in_a_pause_state_waits_for_its_end() -> None:
    sla = dataclasses.replace(
        SLAS["arrival"], start=dataclasses.replace(SLAS["arrival"].start, states=("on_hold",))
    )
    history = dispatched().fire("hold", T0 + timedelta(minutes=10))
    held = T0 + timedelta(minutes=10)
    now = T0 + timedelta(minutes=40)
    paused = compute_clock(
        sla, history.events, data={}, params=PARAMS, now=now, calendars=CALENDARS
    )
    assert (paused.status, paused.started_at, paused.elapsed) == (
        ClockStatus.PAUSED,
        held,
        timedelta(0),
    )
    history.fire("release", T0 + timedelta(minutes=70))
    now = T0 + timedelta(minutes=100)
    running = compute_clock(
        sla, history.events, data={}, params=PARAMS, now=now, calendars=CALENDARS
    )
    assert running.elapsed == timedelta(minutes=30)
    assert running.due_at == T0 + timedelta(minutes=70 + 120)


def test_manual_pause_and_resume_apply_to_the_named_sla_only() -> None:
    history = (
        dispatched(MONDAY)
        .record("sla_paused", MONDAY + timedelta(minutes=30), sla="arrival", reason="site closed")
        .record("sla_paused", MONDAY + timedelta(minutes=40), sla="report")
        .record("sla_resumed", MONDAY + timedelta(minutes=90), sla="arrival")
    )
    now = MONDAY + timedelta(hours=2)
    arrival = clock("arrival", history, now)
    assert arrival.status is ClockStatus.RUNNING
    assert arrival.elapsed == timedelta(hours=1)  # 09:00-09:30 and 10:30-11:00
    assert arrival.due_at == MONDAY + timedelta(hours=3)
    # Neither event names arrival_worktime: it ran all along.
    assert clock("arrival_worktime", history, now).elapsed == timedelta(hours=2)
    report = clock("report", history, now)
    assert report.status is ClockStatus.PAUSED
    assert report.elapsed == timedelta(minutes=40)


def test_leaving_a_pause_state_does_not_lift_a_manual_pause() -> None:
    history = (
        dispatched()
        .fire("hold", T0 + timedelta(minutes=30))
        .record("sla_paused", T0 + timedelta(minutes=40), sla="arrival")
        .fire("release", T0 + timedelta(minutes=60))
    )
    assert clock("arrival", history, T0 + timedelta(hours=3)).status is ClockStatus.PAUSED
    history.record("sla_resumed", T0 + timedelta(minutes=90), sla="arrival")
    resumed = clock("arrival", history, T0 + timedelta(hours=2))
    assert resumed.status is ClockStatus.RUNNING
    assert resumed.elapsed == timedelta(hours=1)


# --- stopping ------------------------------------------------------------------------------------


def test_reaching_a_final_state_stops_every_running_clock() -> None:
    history = dispatched().fire("close", T0 + timedelta(hours=1))
    later = T0 + timedelta(days=20)
    arrival = clock("arrival", history, later)  # its stop state on_site was never reached
    assert (arrival.status, arrival.stopped_at) == (ClockStatus.MET, T0 + timedelta(hours=1))
    assert arrival.elapsed == timedelta(hours=1)
    assert clock("report", history, later).status is ClockStatus.MET


def test_cancelling_the_case_stops_its_clocks() -> None:
    history = dispatched().record("cancelled", T0 + timedelta(minutes=45), reason="duplicate")
    stopped = clock("arrival", history, T0 + timedelta(days=1))
    assert stopped.status is ClockStatus.CANCELLED
    assert (stopped.elapsed, stopped.stopped_at) == (
        timedelta(minutes=45),
        T0 + timedelta(minutes=45),
    )
    late = dispatched().record("cancelled", T0 + timedelta(hours=3))
    assert clock("arrival", late, T0 + timedelta(days=1)).status is ClockStatus.BREACHED


def test_a_clock_runs_once_even_when_the_start_state_is_entered_again() -> None:
    history = (
        dispatched()
        .fire("arrive", T0 + timedelta(minutes=30))
        .fire("redispatch", T0 + timedelta(hours=1))
        .fire("arrive", T0 + timedelta(hours=4))
    )
    again = clock("arrival", history, T0 + timedelta(hours=9))
    assert again.status is ClockStatus.MET
    assert (again.started_at, again.stopped_at) == (T0, T0 + timedelta(minutes=30))
    assert again.elapsed == timedelta(minutes=30)


# --- rounds --------------------------------------------------------------------------------------


def rounds(name: str, history: History, now: datetime) -> list[SlaClock]:
    return compute_rounds(
        SLAS[name],
        history.events,
        data={},
        params=PARAMS,
        now=now,
        calendars=CALENDARS,
        finals=DEFINITION.final_states,
    )


def test_a_repeating_clock_starts_a_round_of_its_own_at_each_re_dispatch() -> None:
    history = (
        dispatched()
        .fire("arrive", T0 + timedelta(minutes=30))
        .fire("redispatch", T0 + timedelta(hours=1))
    )
    first, second = rounds("visit", history, T0 + timedelta(hours=1, minutes=20))
    assert (first.round, first.status, first.started_at, first.stopped_at, first.elapsed) == (
        1,
        ClockStatus.MET,
        T0,
        T0 + timedelta(minutes=30),
        timedelta(minutes=30),
    )
    assert (second.round, second.status, second.started_at, second.stopped_at) == (
        2,
        ClockStatus.RUNNING,
        T0 + timedelta(hours=1),
        None,
    )
    # The second promise is two hours from the re-dispatch, not what the first left over.
    assert (second.elapsed, second.due_at) == (timedelta(minutes=20), T0 + timedelta(hours=3))
    assert second.to_dict()["round"] == 2
    # The same history on a clock that runs once: one round, stopped at the first arrival.
    assert [(c.round, c.status) for c in rounds("arrival", history, T0)] == [(1, ClockStatus.MET)]
    # compute_clock gives the latest round.
    assert clock("visit", history, T0 + timedelta(hours=1, minutes=20)) == second


def test_each_round_pauses_warns_and_breaches_on_its_own() -> None:
    history = (
        dispatched()
        .fire("arrive", T0 + timedelta(hours=3))  # round 1: late
        .fire("redispatch", T0 + timedelta(hours=4))
        .fire("hold", T0 + timedelta(hours=4, minutes=30))
        .fire("release", T0 + timedelta(hours=5, minutes=30))
        .fire("arrive", T0 + timedelta(hours=6))  # round 2: 1 h counted of 2
    )
    first, second = rounds("visit", history, T0 + timedelta(hours=7))
    assert (first.status, first.elapsed) == (ClockStatus.BREACHED, timedelta(hours=3))
    assert (second.status, second.elapsed) == (ClockStatus.MET, timedelta(hours=1))
    # A third dispatch is a third round.
    history.fire("redispatch", T0 + timedelta(hours=8))
    assert [c.status for c in rounds("visit", history, T0 + timedelta(hours=8))] == [
        ClockStatus.BREACHED,
        ClockStatus.MET,
        ClockStatus.RUNNING,
    ]


def test_a_round_s_warnings_and_breach_are_its_own() -> None:
    """Events name their round: the first round's breach does not make the second breached,
    nor its warning keep the second from warning."""
    history = (
        dispatched()
        .record("sla_warning", T0 + timedelta(hours=1), sla="visit", fraction=0.5, round=1)
        .record("sla_breached", T0 + timedelta(hours=2, seconds=1), sla="visit", round=1)
        .fire("arrive", T0 + timedelta(hours=2, minutes=30))
        .fire("redispatch", T0 + timedelta(hours=3))
    )
    now = T0 + timedelta(hours=3, minutes=10)
    first, second = rounds("visit", history, now)
    assert first.status is ClockStatus.BREACHED
    assert second.status is ClockStatus.RUNNING
    sla = SLAS["visit"]
    ruler = ruler_for(sla, data={}, params=PARAMS, now=now, calendars=CALENDARS)
    state = walk_rounds(sla, history.events, ruler, DEFINITION.final_states)[-1]
    assert (state.round, state.warned, state.breach_recorded) == (2, frozenset(), False)
    planned = {p.name: p for p in plan_clock(sla, state, ruler)}
    breach = planned["sla:visit:sla_breached:1.0"]
    assert breach.payload == {"sla": "visit", "round": 2}
    assert breach.due_at == T0 + timedelta(hours=5) + BREACH_AFTER
    assert planned["sla:visit:sla_warning:0.5"].payload == {
        "sla": "visit",
        "round": 2,
        "fraction": 0.5,
    }
    # Its own breach, recorded, breaches the second round (and plans no breach again).
    history.record("sla_breached", T0 + timedelta(hours=5, seconds=1), sla="visit", round=2)
    later = T0 + timedelta(hours=5, seconds=1)
    assert [c.status for c in rounds("visit", history, later)] == [ClockStatus.BREACHED] * 2


def test_an_event_that_stops_a_round_and_meets_the_start_starts_the_next_at_once() -> None:
    history = (
        dispatched()
        .fire("hold", T0 + timedelta(minutes=40))  # ends leg 1, begins leg 2
        .fire("release", T0 + timedelta(hours=1))
    )
    first, second = rounds("leg", history, T0 + timedelta(hours=2))
    assert (first.status, first.stopped_at, first.elapsed) == (
        ClockStatus.MET,
        T0 + timedelta(minutes=40),
        timedelta(minutes=40),
    )
    assert (second.started_at, second.status, second.elapsed) == (
        T0 + timedelta(minutes=40),
        ClockStatus.RUNNING,
        timedelta(minutes=80),
    )
    # ``close`` meets the start too, but ends the case: it stops leg 2 and starts nothing.
    history.fire("close", T0 + timedelta(hours=2))
    assert [(c.round, c.status) for c in rounds("leg", history, T0 + timedelta(hours=3))] == [
        (1, ClockStatus.MET),
        (2, ClockStatus.MET),
    ]


def test_a_start_condition_met_while_a_round_runs_changes_nothing() -> None:
    # Released from hold, the case enters ``dispatched`` again: round 1 resumes, no round 2.
    history = (
        dispatched()
        .fire("hold", T0 + timedelta(minutes=10))
        .fire("release", T0 + timedelta(minutes=20))
    )
    (only,) = rounds("visit", history, T0 + timedelta(minutes=30))
    assert (only.round, only.status, only.elapsed) == (
        1,
        ClockStatus.RUNNING,
        timedelta(minutes=20),
    )


def test_an_operator_s_pause_belongs_to_its_round() -> None:
    history = (
        dispatched()
        .record("sla_paused", T0 + timedelta(minutes=10), sla="visit", reason="site closed")
        .fire("arrive", T0 + timedelta(minutes=30))
        .fire("redispatch", T0 + timedelta(hours=1))
    )
    first, second = rounds("visit", history, T0 + timedelta(hours=1, minutes=30))
    assert (first.elapsed, first.manual_pause) == (timedelta(minutes=10), True)
    assert (second.status, second.manual_pause) == (ClockStatus.RUNNING, False)
    assert second.elapsed == timedelta(minutes=30)


def test_compute_clocks_lists_every_round_of_each_sla() -> None:
    definition = dataclasses.replace(DEFINITION, slas=(*DEFINITION.slas, ROUNDS["visit"]))
    history = (
        dispatched()
        .fire("arrive", T0 + timedelta(minutes=30))
        .fire("redispatch", T0 + timedelta(hours=1))
    )
    clocks = compute_clocks(
        definition, history.events, data={}, params=PARAMS, now=T0, calendars=CALENDARS
    )
    assert [(c.name, c.round) for c in clocks] == [
        ("contact", 1),
        ("arrival", 1),
        ("arrival_worktime", 1),
        ("report", 1),
        ("visit", 1),
        ("visit", 2),
    ]


# --- business calendars ------------------------------------------------------------------------


def test_working_day_target_across_national_day_2025() -> None:
    # Tue 30 Sep 10:00 + 3 working days: Thu 9, Fri 10, Sat 11 Oct (调休) -> Sat 11 Oct 10:00.
    history = dispatched()
    running = clock("report", history, sh(2025, 10, 9, 10))
    assert (running.status, running.unit, running.calendar) == (
        ClockStatus.RUNNING,
        "days",
        "cn-workdays",
    )
    assert (running.target, running.elapsed) == (timedelta(days=3), timedelta(days=1))
    assert running.due_at == sh(2025, 10, 11, 10)
    assert not running.provisional
    # 30 Sep 10:00-24:00, 9 Oct, 10 Oct, 11 Oct 00:00-09:00.
    assert clock("report", history, sh(2025, 10, 11, 9)).elapsed == timedelta(hours=14 + 48 + 9)
    # The holidays count for nothing: the clock did not move from 1 to 8 October.
    assert clock("report", history, sh(2025, 10, 8, 23)).elapsed == timedelta(hours=14)
    closed_in_time = dispatched().fire("close", sh(2025, 10, 11, 9, 59))
    assert clock("report", closed_in_time, T0).status is ClockStatus.MET
    closed_late = dispatched().fire("close", sh(2025, 10, 11, 10, 1))
    assert clock("report", closed_late, T0).status is ClockStatus.BREACHED


def test_a_working_day_paused_shifts_the_due_by_a_working_day() -> None:
    # 1 working day elapsed by Thu 9 Oct 10:00; held until Fri 10 Oct 10:00; 2 left: Sat 11
    # Oct (调休) and, past Sunday, Mon 13 Oct 10:00.
    history = dispatched().fire("hold", sh(2025, 10, 9, 10)).fire("release", sh(2025, 10, 10, 10))
    shifted = clock("report", history, sh(2025, 10, 10, 12))
    assert shifted.elapsed == timedelta(days=1, hours=2)
    assert shifted.due_at == sh(2025, 10, 13, 10)


def test_working_time_target_skips_the_lunch_break_and_the_holidays() -> None:
    history = dispatched()
    running = clock("arrival_worktime", history, sh(2025, 10, 9, 9, 30))
    assert running.elapsed == timedelta(hours=7, minutes=30)  # 10-12, 13-18, then 9:00-9:30
    assert running.due_at == sh(2025, 10, 9, 10)
    assert running.unit == "time"


def test_warnings_reached_follow_the_elapsed_fraction() -> None:
    history = dispatched()
    reached = {
        minutes: clock("arrival", history, T0 + timedelta(minutes=minutes)).warnings_reached
        for minutes in (59, 60, 89, 90, 150)
    }
    assert reached == {59: (), 60: (0.5,), 89: (0.5,), 90: (0.5, 0.75), 150: (0.5, 0.75)}


def test_compute_clocks_gives_every_sla_of_the_definition_in_order() -> None:
    history = dispatched().fire("arrive", T0 + timedelta(minutes=30))
    clocks = compute_clocks(
        DEFINITION,
        history.events,
        data={},
        params={"contact_within": "3m"},
        now=T0 + timedelta(hours=1),
        calendars=CALENDARS,
    )
    assert [(c.name, c.status) for c in clocks] == [
        ("contact", ClockStatus.BREACHED),  # 5 minutes from creation to dispatch
        ("arrival", ClockStatus.MET),
        ("arrival_worktime", ClockStatus.MET),
        ("report", ClockStatus.RUNNING),
    ]


# --- planning warning and breach timers ----------------------------------------------------------


def test_running_clocks_plan_their_warnings_and_breach() -> None:
    found = plan_sla_timers(
        DEFINITION, dispatched().events, data={}, params=PARAMS, now=T0, calendars=CALENDARS
    )
    by_name = {p.name: p for p in found}
    assert by_name["sla:arrival:sla_breached:1.0"] == TimerPlan(
        name="sla:arrival:sla_breached:1.0",
        kind="sla_breached",
        trigger="escalate",
        due_at=T0 + timedelta(hours=2) + BREACH_AFTER,  # the deadline instant is in time
        payload={"sla": "arrival"},
        calendar="24x7",
        provisional=False,
        sla="arrival",
    )
    warning = by_name["sla:arrival:sla_warning:0.5"]
    assert (warning.kind, warning.trigger, warning.payload) == (
        "sla_warning",
        None,
        {"sla": "arrival", "fraction": 0.5},
    )
    assert {p.name: p.due_at for p in found} == {
        "sla:arrival:sla_warning:0.5": T0 + timedelta(hours=1),
        "sla:arrival:sla_warning:0.75": T0 + timedelta(minutes=90),
        "sla:arrival:sla_breached:1.0": T0 + timedelta(hours=2) + BREACH_AFTER,
        # 4 working hours: 10-12, 13-15; 8: the rest of the day, then 9 Oct 09:00-10:00.
        "sla:arrival_worktime:sla_warning:0.5": sh(2025, 9, 30, 15),
        "sla:arrival_worktime:sla_breached:1.0": sh(2025, 10, 9, 10) + BREACH_AFTER,
        # 1.5 working days: 14 h to the end of 30 Sep, then 22 h of Thu 9 Oct.
        "sla:report:sla_warning:0.5": sh(2025, 10, 9, 22),
        "sla:report:sla_breached:1.0": sh(2025, 10, 11, 10) + BREACH_AFTER,
    }
    assert all(p.sla == p.payload["sla"] for p in found)


def test_pending_clocks_plan_nothing() -> None:
    assert set(plans(History(T0), T0)) == {"sla:contact:sla_breached:1.0"}


def test_warnings_and_breaches_already_recorded_are_not_planned_again() -> None:
    history = (
        dispatched()
        .record("sla_warning", T0 + timedelta(hours=1), sla="arrival", fraction=0.5)
        .record("sla_warning", T0 + timedelta(hours=1), sla="report", fraction=0.75)
    )
    now = T0 + timedelta(hours=1)
    arrival = {k: v for k, v in plans(history, now).items() if ":arrival:" in k}
    assert arrival == {
        "sla:arrival:sla_warning:0.75": T0 + timedelta(minutes=90),
        "sla:arrival:sla_breached:1.0": T0 + timedelta(hours=2) + BREACH_AFTER,
    }
    # A warning recorded for arrival, or for a fraction report does not warn at, does not
    # count as report's own.
    assert "sla:report:sla_warning:0.5" in plans(history, now)
    history.record("sla_warning", T0 + timedelta(minutes=90), sla="arrival", fraction=0.75)
    history.record("sla_breached", T0 + timedelta(hours=2) + BREACH_AFTER, sla="arrival")
    late = T0 + timedelta(hours=2) + BREACH_AFTER
    assert not [k for k in plans(history, late) if ":arrival:" in k]
    assert clock("arrival", history, late).status is ClockStatus.BREACHED


def test_paused_and_stopped_clocks_plan_nothing() -> None:
    held = dispatched().fire("hold", T0 + timedelta(minutes=30))
    assert plans(held, T0 + timedelta(minutes=30)) == {}
    arrived = dispatched().fire("arrive", T0 + timedelta(minutes=30))
    assert set(plans(arrived, T0 + timedelta(minutes=30))) == {
        "sla:report:sla_warning:0.5",
        "sla:report:sla_breached:1.0",
    }
    closed = dispatched().fire("close", T0 + timedelta(minutes=30))
    assert plans(closed, T0 + timedelta(minutes=30)) == {}


def test_replanning_after_a_pause_shifts_every_timer_by_the_paused_span() -> None:
    before = plans(dispatched(MONDAY), MONDAY)
    history = (
        dispatched(MONDAY)
        .fire("hold", MONDAY + timedelta(minutes=30))
        .fire("release", MONDAY + timedelta(hours=1, minutes=30))
    )
    after = plans(history, MONDAY + timedelta(hours=1, minutes=30))
    arrival = [k for k in before if ":arrival:" in k]
    assert {k: after[k] for k in arrival} == {k: before[k] + timedelta(hours=1) for k in arrival}
    # On cn-workdays the shift is an hour of working time: 4 working hours from Mon 09:00 is
    # 13:00 without the pause (the lunch break is skipped) and 15:00 with it.
    assert before["sla:arrival_worktime:sla_warning:0.5"] == sh(2025, 3, 17, 14)
    assert after["sla:arrival_worktime:sla_warning:0.5"] == sh(2025, 3, 17, 15)
    assert after["sla:report:sla_breached:1.0"] == sh(2025, 3, 20, 10) + BREACH_AFTER


def test_a_passed_warning_never_recorded_is_planned_at_once_not_lost() -> None:
    # Its timer did not fire before the hold (a worker was down): re-planned at the release,
    # the warning is due right away; the breach keeps its shifted instant.
    history = dispatched().fire("hold", T0 + timedelta(hours=1, minutes=40))
    history.fire("release", T0 + timedelta(hours=3))
    due = plans(history, T0 + timedelta(hours=3))
    assert due["sla:arrival:sla_warning:0.5"] == T0 + timedelta(hours=3)
    assert due["sla:arrival:sla_breached:1.0"] == T0 + timedelta(hours=3, minutes=20) + BREACH_AFTER


# --- properties ----------------------------------------------------------------------------------

STARTS = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 6, 30)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=SHANGHAI).astimezone(UTC)
)
GAPS = st.one_of(st.integers(1, 180), st.integers(1, 6 * 24 * 60)).map(
    lambda m: timedelta(minutes=m)
)
# toggle: enter or leave the pause state; pause/resume: an operator's sla_paused/sla_resumed
# for the SLA under test; other: an sla_paused for a different SLA, which must change nothing.
STEPS = st.lists(
    st.tuples(st.sampled_from(["toggle", "pause", "resume", "other"]), GAPS), max_size=8
)


def oracle_time(calendar: BusinessCalendar, a: datetime, b: datetime, days: bool) -> timedelta:
    """Business time in [a, b), summed day by day from the calendar's plain day queries."""
    zone = ZoneInfo(calendar.timezone)
    total = timedelta(0)
    day = a.astimezone(zone).date() - timedelta(days=1)
    while day <= b.astimezone(zone).date():
        if days:
            midnight = datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)
            intervals = (
                [(midnight, midnight + timedelta(days=1))] if calendar.is_working_day(day) else []
            )
        else:
            intervals = calendar.working_intervals(day)
        for start, end in intervals:
            total += max(timedelta(0), min(end, b) - max(start, a))
        day += timedelta(days=1)
    return total


@settings(max_examples=120, deadline=None)
@given(
    name=st.sampled_from(["arrival", "arrival_worktime", "report"]),
    start=STARTS,
    steps=STEPS,
    tail=GAPS,
)
def test_elapsed_is_the_business_time_of_the_running_spans(
    name: str, start: datetime, steps: list[tuple[str, timedelta]], tail: timedelta
) -> None:
    sla = SLAS[name]
    calendar = CALENDARS[sla.calendar]
    days = SLAS[name].target.literal == "3d"
    history = dispatched(start)
    # Walk the steps, recording the spans in which the clock runs.
    at, held, manual, spans, since = start, False, False, [], start
    for kind, gap in steps:
        at += gap
        if kind == "toggle":
            history.fire("release" if held else "hold", at)
            held = not held
        elif kind == "other":
            history.record("sla_paused", at, sla="contact")
        else:
            history.record("sla_paused" if kind == "pause" else "sla_resumed", at, sla=name)
            manual = kind == "pause"
        running = not held and not manual
        if since is not None and not running:
            spans.append((since, at))
            since = None
        elif since is None and running:
            since = at
    now = at + tail
    if since is not None:
        spans.append((since, now))
    expected = sum((oracle_time(calendar, a, b, days) for a, b in spans), timedelta(0))

    result = clock(name, history, now)
    assert result.elapsed == expected
    assert (
        result.status
        is {
            True: ClockStatus.BREACHED if expected > result.target else ClockStatus.RUNNING,
            False: ClockStatus.BREACHED if expected > result.target else ClockStatus.PAUSED,
        }[since is not None]
    )
    assert clock(name, list(history.events), now) == result  # nothing changed, nothing moves

    if result.due_at is not None:
        # What the clock says at its own due instant, from the history known by then.
        known = [e for e in history.events if e.at <= result.due_at]
        assert clock(name, known, result.due_at).elapsed == result.target
        assert clock(name, known, result.due_at - US).elapsed < result.target
    else:
        assert since is None or expected >= result.target


def test_oracle_agrees_with_the_worked_examples() -> None:
    # The property above is only as good as its oracle: pin it to the documented examples.
    assert oracle_time(CN, sh(2025, 9, 30, 16), sh(2025, 10, 9, 16), days=False) == timedelta(
        hours=8
    )
    assert oracle_time(CN, sh(2025, 9, 30, 10), sh(2025, 10, 11, 10), days=True) == timedelta(
        days=3
    )
    assert oracle_time(H24, T0, T0 + timedelta(hours=30), days=False) == timedelta(hours=30)
    assert oracle_time(CN, sh(2025, 10, 1, 9), sh(2025, 10, 8, 18), days=True) == timedelta(0)


def test_the_deadline_instant_is_in_time_and_the_instant_after_it_is_not() -> None:
    """'Within two hours' (the bids' word): arriving at 2:00:00 keeps the promise, at
    2:00:00.000001 breaks it; the breach timer records it a second after the deadline."""
    due = T0 + timedelta(hours=2)
    assert clock("arrival", dispatched().fire("arrive", due), due).status is ClockStatus.MET
    late = due + US
    assert clock("arrival", dispatched().fire("arrive", late), late).status is (
        ClockStatus.BREACHED
    )
    (breach,) = [
        p
        for p in plan_sla_timers(
            DEFINITION, dispatched().events, data={}, params=PARAMS, now=T0, calendars=CALENDARS
        )
        if p.name == "sla:arrival:sla_breached:1.0"
    ]
    assert breach.due_at == due + timedelta(seconds=1)


# --- which events can touch a clock -------------------------------------------------------------

STATE_NAMES = [s.name for s in DEFINITION.states]
EVENT_TYPES = [
    "created",
    "transition",
    "forced",
    "cancelled",
    "sla_warning",
    "sla_breached",
    "sla_paused",
    "sla_resumed",
    "note",
    "child_spawned",
]


@st.composite
def kept_states(draw: st.DrawFn) -> ClockState:
    phase = draw(st.sampled_from([p for p in ClockStatus if p is not ClockStatus.BREACHED]))
    started = T0 if phase is not ClockStatus.PENDING else None
    return ClockState(
        phase=phase,
        started_at=started,
        stopped_at=T0 + timedelta(hours=1)
        if phase in (ClockStatus.MET, ClockStatus.CANCELLED)
        else None,
        running_since=draw(st.sampled_from([None, T0])) if phase is ClockStatus.RUNNING else None,
        banked=timedelta(minutes=draw(st.integers(0, 600))),
        manual_pause=draw(st.booleans()),
        warned=frozenset(draw(st.sets(st.sampled_from([0.5, 0.75])))),
        warned_at=draw(st.sampled_from([None, T0])),
        breach_recorded=draw(st.booleans()),
        paused_at=draw(st.sampled_from([None, T0 + timedelta(minutes=30)])),
        resume_at=draw(st.sampled_from([None, T0 + timedelta(hours=3)])),
        round=draw(st.integers(1, 3)),
    )


@st.composite
def events(draw: st.DrawFn) -> EventRecord:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    source = None if event_type == "created" else draw(st.sampled_from(STATE_NAMES))
    moves = event_type in ("created", "transition", "forced")
    dest = draw(st.sampled_from(STATE_NAMES)) if moves else source
    payload: dict[str, Any] = {}
    if event_type.startswith("sla_"):
        payload["sla"] = draw(st.sampled_from([*SLAS, "other"]))
        payload["fraction"] = draw(st.sampled_from([0.5, 0.75, "x"]))
        payload["resume_at"] = draw(st.sampled_from([None, (T0 + timedelta(hours=5)).isoformat()]))
        round_ = draw(st.sampled_from([None, 1, 2, 3]))
        if round_ is not None:
            payload["round"] = round_
    return EventRecord(
        case_id=1,
        seq=2,
        event_type=event_type,
        trigger=draw(st.sampled_from([*DEST, None])) if event_type == "transition" else None,
        from_state=source,
        to_state=dest or "logged",
        actor="test",
        payload=payload,
        changes={},
        at=T0 + timedelta(hours=2),
    )


@settings(max_examples=600, deadline=None)
@given(state=kept_states(), name=st.sampled_from(sorted(SLAS)), event=events())
def test_an_event_that_does_not_touch_a_clock_leaves_its_state_as_it_is(
    state: ClockState, name: str, event: EventRecord
) -> None:
    """The engine skips a clock an event cannot touch (no ruler, no write): for any kept
    state and any event, touches() False must mean advance() gives the same state and no
    new round starts."""
    sla = SLAS[name]
    ruler = ruler_for(sla, data={}, params=PARAMS, now=T0, calendars=CALENDARS)
    finals = DEFINITION.final_states
    if not touches(state.phase, state.manual_pause, sla, event, finals):
        after = advance(state, sla, event, ruler, finals)
        assert after == state
        assert next_round(after, sla, event, ruler, finals) is None


def test_the_events_that_touch_a_dispatched_ticket_s_clocks() -> None:
    history = dispatched()
    running = ClockState(phase=ClockStatus.RUNNING, started_at=T0, running_since=T0)
    finals = DEFINITION.final_states
    escalate = history.fire("escalate", T0 + timedelta(minutes=1)).events[-1]
    hold = history.fire("hold", T0 + timedelta(minutes=2)).events[-1]
    assert not touches(running.phase, False, SLAS["arrival"], escalate, finals)  # a self-loop
    assert touches(running.phase, False, SLAS["arrival"], hold, finals)  # enters a pause state
    assert not touches(ClockStatus.MET, False, SLAS["contact"], hold, finals)  # runs once
    redispatch = (
        history.fire("release", T0 + timedelta(minutes=3))
        .fire("arrive", T0 + timedelta(minutes=4))
        .fire("redispatch", T0 + timedelta(minutes=5))
        .events[-1]
    )
    assert not touches(ClockStatus.MET, False, SLAS["arrival"], redispatch, finals)
    assert touches(ClockStatus.MET, False, SLAS["visit"], redispatch, finals)  # a new round


@pytest.mark.parametrize("calendar", [None, "24x7", "cn-workdays"])
@pytest.mark.parametrize("text", ["90m", "2h", "1d", "3d", "1d12h", "36h"])
def test_a_target_is_measured_without_its_calendar_as_its_ruler_measures_it(
    calendar: str | None, text: str
) -> None:
    """The fast path compares a kept clock's target and unit with measure_of(), which needs
    no calendar; it must agree with the Ruler the full path builds."""
    ruler = Ruler(get_calendar(CALENDARS, calendar, "slas[0].calendar"), parse_duration(text))
    assert measure_of(calendar, parse_duration(text)) == (ruler.target.total_seconds(), ruler.unit)
