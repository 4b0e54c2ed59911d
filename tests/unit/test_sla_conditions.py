"""SLA clocks that apply to some cases only (``when``) and count from an earlier instant
(``counted_from``), on hand-built histories whose events carry their data ``changes``; the
same for an ``after`` timer's ``counted_from``; and what validation refuses in them.

The definition is a part request: ``requested`` starts the ``common`` clock (24 hours), which
applies only while the part is not custom; ``dispatch`` starts ``visit`` (1 working day on
cn-workdays), counted from the report instant in the data; ``on_hold`` pauses both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.core.calendar import calendar_24x7, cn_workdays
from engine.core.definition import parse_source
from engine.core.diff import diff_definitions
from engine.core.records import EventRecord
from engine.core.sla import (
    CaseFacts,
    CaseView,
    ClockState,
    ClockStatus,
    advance,
    compute_clocks,
    compute_rounds,
    next_round,
    plan_clock,
    plan_sla_timers,
    ruler_for,
    touches,
    walk_rounds,
)
from engine.core.timer_plans import plan_timer
from engine.core.validation import load_definition, validate
from engine.errors import ExpressionError

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDARS = {"24x7": calendar_24x7(), "cn-workdays": cn_workdays()}

SOURCE = """
name: part_request
title: {en: Part request, zh: 备件申请}
initial: requested
parameters:
  loaner_from_report: {type: boolean, default: true}
data_schema:
  type: object
  properties:
    custom: {type: boolean}
    reported_at: {type: string}
states:
  - name: requested
    title: {en: Requested, zh: 已申请}
  - name: dispatched
    title: {en: Dispatched, zh: 已派工}
    timers:
      - name: chase
        after: 1 working day
        calendar: cn-workdays
        counted_from: "params.loaner_from_report ? case.created_at : now"
        trigger: chase
  - {name: on_hold, title: {en: On hold, zh: 暂停}}
  - {name: delivered, title: {en: Delivered, zh: 已送达}, final: true}
transitions:
  - {trigger: mark_custom, source: [requested, dispatched], dest: dispatched}
  - {trigger: dispatch, source: requested, dest: dispatched}
  - {trigger: chase, source: dispatched}
  - {trigger: hold, source: [requested, dispatched], dest: on_hold}
  - {trigger: release, source: on_hold, dest: dispatched}
  - {trigger: deliver, source: [requested, dispatched], dest: delivered}
slas:
  - name: common
    target: 24h
    when: "!has(data.custom) || !data.custom"
    start: {states: [requested]}
    pause: {states: [on_hold]}
    stop: {states: [delivered]}
    warn_at: [0.5]
  - name: visit
    target: 1 working day
    calendar: cn-workdays
    counted_from: timestamp(data.reported_at)
    start: {triggers: [dispatch, hold]}
    pause: {states: [on_hold]}
    stop: {states: [delivered]}
"""
DEFINITION = load_definition(parse_source(SOURCE))
PARAMS = DEFINITION.default_params()
SLAS = {s.name: s for s in DEFINITION.slas}
DEST = {t.trigger: t.dest for t in DEFINITION.transitions}


def sh(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


FRIDAY = sh(3, 6, 16)  # Friday 6 March 2026, 16:00; Monday 9 March is the next working day


class History:
    """A case's history with its data changes, as the engine records it."""

    def __init__(self, at: datetime, **data: Any) -> None:
        self.state = "requested"
        self.events = [self._event("created", at, "requested", changes=data)]

    def _event(self, kind: str, at: datetime, after: str, **fields: Any) -> EventRecord:
        return EventRecord(
            case_id=7,
            seq=len(getattr(self, "events", [])) + 1,
            event_type=kind,
            trigger=fields.get("trigger"),
            from_state=fields.get("before"),
            to_state=after,
            actor="test",
            payload=fields.get("payload", {}),
            changes=fields.get("changes", {}),
            at=at,
        )

    def fire(self, trigger: str, at: datetime, **changes: Any) -> History:
        dest = DEST[trigger] or self.state
        self.events.append(
            self._event("transition", at, dest, before=self.state, trigger=trigger, changes=changes)
        )
        self.state = dest
        return self

    def record(self, kind: str, at: datetime, **payload: Any) -> History:
        self.events.append(self._event(kind, at, self.state, before=self.state, payload=payload))
        return self


def rounds(name: str, history: History, now: datetime) -> list[Any]:
    return compute_rounds(
        SLAS[name],
        history.events,
        data={},
        params=PARAMS,
        now=now,
        calendars=CALENDARS,
        finals=DEFINITION.final_states,
        decisions=DEFINITION.decisions,
    )


# --- when -------------------------------------------------------------------------------------


def test_a_round_that_turns_out_not_to_apply_ends_not_applicable_where_it_turned() -> None:
    history = History(FRIDAY).fire("mark_custom", FRIDAY + timedelta(hours=2), custom=True)

    (common,) = rounds("common", history, FRIDAY + timedelta(days=3))

    # Not met (the part was never delivered) and not breached (three days later): it was no
    # common part, and the clock stopped measuring when that became known.
    assert common.status is ClockStatus.NOT_APPLICABLE
    assert (common.started_at, common.stopped_at) == (FRIDAY, FRIDAY + timedelta(hours=2))
    assert common.elapsed == timedelta(hours=2)


def test_a_case_the_condition_excludes_from_the_start_never_runs_the_clock() -> None:
    history = History(FRIDAY, custom=True)

    (common,) = rounds("common", history, FRIDAY + timedelta(days=3))

    assert (common.status, common.elapsed) == (ClockStatus.NOT_APPLICABLE, timedelta(0))


def test_a_case_the_condition_keeps_is_met_or_breached_as_usual() -> None:
    met = History(FRIDAY, custom=False).fire("deliver", FRIDAY + timedelta(hours=23))
    late = History(FRIDAY)

    assert rounds("common", met, FRIDAY + timedelta(days=3))[0].status is ClockStatus.MET
    assert rounds("common", late, FRIDAY + timedelta(hours=25))[0].status is (ClockStatus.BREACHED)


def test_a_recorded_breach_stays_a_breach_when_the_condition_turns_false_later() -> None:
    """The breach event is history (it may have escalated): the round keeps it."""
    breach_at = FRIDAY + timedelta(hours=24, seconds=1)
    history = (
        History(FRIDAY)
        .record("sla_breached", breach_at, sla="common")
        .fire("mark_custom", FRIDAY + timedelta(hours=30), custom=True)
    )

    (common,) = rounds("common", history, FRIDAY + timedelta(days=3))

    assert common.status is ClockStatus.BREACHED


def test_a_round_not_applicable_plans_no_warning_or_breach() -> None:
    history = History(FRIDAY).fire("mark_custom", FRIDAY + timedelta(hours=1), custom=True)
    sla = SLAS["common"]
    ruler = ruler_for(sla, data={}, params=PARAMS, now=FRIDAY, calendars=CALENDARS)
    facts = CaseFacts(params=PARAMS, case_id=7, created_at=FRIDAY)

    (state,) = walk_rounds(sla, history.events, ruler, DEFINITION.final_states, facts)

    assert plan_clock(sla, state, ruler) == []
    running = walk_rounds(sla, history.events[:1], ruler, DEFINITION.final_states, facts)[0]
    assert [p.kind for p in plan_clock(sla, running, ruler)] == ["sla_warning", "sla_breached"]


def test_an_event_that_changes_the_data_touches_a_clock_with_a_condition() -> None:
    history = History(FRIDAY).fire("mark_custom", FRIDAY + timedelta(hours=1), custom=True)
    still = History(FRIDAY).record("note", FRIDAY + timedelta(hours=1), text="called")
    finals = DEFINITION.final_states

    assert touches(ClockStatus.RUNNING, False, SLAS["common"], history.events[1], finals)
    assert not touches(ClockStatus.RUNNING, False, SLAS["common"], still.events[1], finals)


def test_advancing_event_by_event_agrees_with_walking_the_history() -> None:
    """The engine advances kept clocks one event at a time with the case as the event left
    it; a recomputation folds the data out of the history. Both must give the same rounds."""
    history = (
        History(FRIDAY, reported_at="2026-03-06T07:00:00Z")
        .fire("hold", FRIDAY + timedelta(hours=1))
        .fire("release", FRIDAY + timedelta(hours=3))
        .fire("mark_custom", FRIDAY + timedelta(hours=5), custom=True)
        .fire("deliver", FRIDAY + timedelta(hours=9))
    )
    facts = CaseFacts(params=PARAMS, case_id=7, created_at=FRIDAY)
    for sla in DEFINITION.slas:
        ruler = ruler_for(sla, data={}, params=PARAMS, now=FRIDAY, calendars=CALENDARS)
        walked = walk_rounds(sla, history.events, ruler, DEFINITION.final_states, facts)
        kept = [ClockState()]
        data: dict[str, Any] = {}
        for event in history.events:
            data = {**data, **event.changes}
            view = CaseView(facts, data)
            kept[-1] = advance(kept[-1], sla, event, ruler, DEFINITION.final_states, view=view)
            started = next_round(kept[-1], sla, event, ruler, DEFINITION.final_states, view=view)
            if started is not None:
                kept.append(started)
        assert kept == walked, sla.name
    assert walked[-1].phase is ClockStatus.MET  # visit: no condition, delivered


def test_an_sla_that_reads_the_case_refuses_to_advance_without_it() -> None:
    history = History(FRIDAY)
    sla = SLAS["common"]
    ruler = ruler_for(sla, data={}, params=PARAMS, now=FRIDAY, calendars=CALENDARS)

    with pytest.raises(ValueError, match="needs its view"):
        advance(ClockState(), sla, history.events[0], ruler, DEFINITION.final_states)


def test_a_condition_that_gives_no_boolean_is_an_error_naming_it() -> None:
    sla = SLAS["common"]
    odd = type(sla)(**{**sla.__dict__, "when": "size(data)"})
    history = History(FRIDAY)
    ruler = ruler_for(odd, data={}, params=PARAMS, now=FRIDAY, calendars=CALENDARS)
    facts = CaseFacts(params=PARAMS, case_id=7, created_at=FRIDAY)

    with pytest.raises(ExpressionError) as caught:
        walk_rounds(odd, history.events, ruler, DEFINITION.final_states, facts)

    assert caught.value.message == "Expression at slas[0].when gave 0, not true or false."


def test_recomputed_clocks_and_timers_read_the_definitions_name() -> None:
    """The whole-history clocks and their timers read ``case.definition`` as the incremental
    path does: the definition's name, not an empty string."""
    own_only = load_definition(
        parse_source(
            SOURCE.replace(
                'when: "!has(data.custom) || !data.custom"',
                "when: case.definition == 'part_request'",
            )
        )
    )
    history = History(FRIDAY)
    kwargs: dict[str, Any] = {"data": {}, "params": PARAMS, "calendars": CALENDARS}
    now = FRIDAY + timedelta(hours=1)

    clocks = {c.name: c for c in compute_clocks(own_only, history.events, now=now, **kwargs)}
    timers = plan_sla_timers(own_only, history.events, now=now, **kwargs)

    assert clocks["common"].status is ClockStatus.RUNNING
    assert {t.name for t in timers if t.sla == "common"} == {
        "sla:common:sla_warning:0.5",
        "sla:common:sla_breached:1.0",
    }


# --- counted_from -------------------------------------------------------------------------------


def test_a_clock_counted_from_the_report_is_due_one_working_day_after_it() -> None:
    """Reported Friday 16:00, dispatched Monday 10:00: one working day from the report ends
    Monday 16:00 (counted from the dispatch it would be Tuesday 10:00)."""
    history = History(FRIDAY, reported_at=FRIDAY.isoformat()).fire("dispatch", sh(3, 9, 10))

    (visit,) = rounds("visit", history, sh(3, 9, 10))

    assert visit.started_at == FRIDAY
    assert visit.due_at == sh(3, 9, 16)
    assert rounds("visit", history, sh(3, 9, 16))[0].status is ClockStatus.RUNNING
    late = sh(3, 9, 16) + timedelta(seconds=1)
    assert rounds("visit", history, late)[0].status is ClockStatus.BREACHED


def test_a_clock_that_starts_paused_keeps_the_time_before_its_start() -> None:
    """Started by ``hold`` (a pause state) on Monday 10:00, counted from Friday 16:00: the
    working time up to the start is banked, and the clock waits paused."""
    history = History(FRIDAY, reported_at=FRIDAY.isoformat()).fire("hold", sh(3, 9, 10))

    (visit,) = rounds("visit", history, sh(3, 9, 12))

    assert visit.status is ClockStatus.PAUSED
    assert visit.started_at == FRIDAY
    assert visit.elapsed == CALENDARS["cn-workdays"].working_days_between(FRIDAY, sh(3, 9, 10))
    assert timedelta(0) < visit.elapsed < timedelta(days=1)


@pytest.mark.parametrize(
    ("reported_at", "message"),
    [
        (
            "2026-03-09T03:00:00Z",
            "Expression at slas[1].counted_from gave 2026-03-09T03:00:00Z, after the instant "
            "the clock starts at (2026-03-09T02:00:00Z): a clock can count from an earlier "
            "instant only.",
        ),
        ("soon", None),
    ],
)
def test_an_instant_after_the_start_or_no_instant_is_refused(
    reported_at: str, message: str | None
) -> None:
    history = History(FRIDAY, reported_at=reported_at).fire("dispatch", sh(3, 9, 10))

    with pytest.raises(ExpressionError) as caught:
        rounds("visit", history, sh(3, 9, 10))

    assert caught.value.fields["path"] == "slas[1].counted_from"
    if message is not None:
        assert caught.value.message == message
        assert caught.value.hint is not None and "future" in caught.value.hint


def test_a_timer_counted_from_the_report_is_due_from_it() -> None:
    (timer,) = DEFINITION.state("dispatched").timers
    case = {"id": 7, "definition": "part_request", "state": "dispatched", "created_at": FRIDAY}
    entered = sh(3, 9, 10)

    def due(params: Mapping[str, Any]) -> datetime:
        return plan_timer(
            timer,
            entered_at=entered,
            after=entered,
            data={},
            params=params,
            calendars=CALENDARS,
            case=case,
        ).due_at

    assert due(PARAMS) == sh(3, 9, 16)  # one working day from the report
    assert due({**PARAMS, "loaner_from_report": False}) == sh(3, 10, 10)  # from the entry
    with pytest.raises(ExpressionError, match="after the instant the clock starts at"):
        plan_timer(
            timer,
            entered_at=entered,
            after=entered,
            data={},
            params=PARAMS,
            calendars=CALENDARS,
            case={**case, "created_at": entered + timedelta(hours=1)},
        )


# --- validation -------------------------------------------------------------------------------


def _codes(source: str) -> dict[str, str]:
    report = validate(parse_source(source))
    return {p.path: p.code for p in report.errors}


def test_validation_refuses_what_a_recomputation_could_not_read_again() -> None:
    source = SOURCE.replace(
        'when: "!has(data.custom) || !data.custom"', "when: payload.custom == true"
    ).replace("counted_from: timestamp(data.reported_at)", "counted_from: now")

    assert _codes(source) == {
        "slas[0].when": "expression-reads-transient",
        "slas[1].counted_from": "expression-reads-transient",
    }


def test_validation_checks_the_fields_a_condition_reads() -> None:
    source = SOURCE.replace("!has(data.custom) || !data.custom", "data.kind == 'common'")

    assert _codes(source) == {"slas[0].when": "undeclared-data-field"}


def test_counted_from_belongs_to_after_timers_only() -> None:
    source = SOURCE.replace("        after: 1 working day\n", "        at: case.created_at\n")

    assert _codes(source) == {"states[1].timers[0].counted_from": "counted-from-without-after"}


def test_the_bundled_shape_validates() -> None:
    assert validate(parse_source(SOURCE)).errors == []


def test_a_stored_field_as_counted_from_is_refused_with_the_conversion_to_write() -> None:
    """Case data keeps instants as text: a bare field would fail on every case at run time."""
    source = SOURCE.replace(
        "counted_from: timestamp(data.reported_at)", "counted_from: data.reported_at"
    )
    report = validate(parse_source(source))

    (problem,) = report.errors
    assert (problem.path, problem.code) == ("slas[1].counted_from", "counted-from-not-timestamp")
    assert problem.hint == "Convert it: timestamp(data.reported_at)."


def test_a_version_diff_shows_a_changed_condition_and_instant() -> None:
    changed = SOURCE.replace("|| !data.custom", "|| data.custom == false").replace(
        'counted_from: "params.loaner_from_report ? case.created_at : now"',
        "counted_from: case.created_at",
    )
    old = load_definition(parse_source(SOURCE), version=1)
    new = load_definition(parse_source(changed), version=2)

    diff = diff_definitions(old, new, SOURCE, changed)

    assert diff.changes["slas"]["changed"]["common"]["when"] == {
        "from": "!has(data.custom) || !data.custom",
        "to": "!has(data.custom) || data.custom == false",
    }
    (timer,) = diff.changes["timers"]["changed"].values()
    assert timer["counted_from"]["to"] == "case.created_at"


def test_only_an_event_that_may_flip_the_condition_touches_a_running_clock() -> None:
    """A conditional clock is re-evaluated on the events that change what its condition
    reads (here ``data.custom``), not on every change of the data."""
    finals = DEFINITION.final_states
    common = SLAS["common"]
    history = History(FRIDAY).fire("dispatch", FRIDAY + timedelta(hours=1))
    history.fire("chase", FRIDAY + timedelta(hours=2), reported_at="2026-03-06T08:00:00Z")
    history.fire("chase", FRIDAY + timedelta(hours=3), custom=True)
    moved, unrelated, flipped = history.events[1:]

    assert not touches(ClockStatus.RUNNING, False, common, unrelated, finals)
    assert touches(ClockStatus.RUNNING, False, common, flipped, finals)
    assert not touches(ClockStatus.RUNNING, False, common, moved, finals)
    # A condition that reads case.state is touched by any move.
    by_state = dataclasses.replace(common, when="case.state != 'delivered'")
    assert touches(ClockStatus.RUNNING, False, by_state, moved, finals)
