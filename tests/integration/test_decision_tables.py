"""Decision tables on a real database: an SLA target and a timer chosen by a table follow the
case data the table reads, on the incremental path that skips clocks an event cannot move,
and a case whose inputs no rule covers fails its step cleanly, leaving nothing half done."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.sla import compute_clocks
from engine.errors import DecisionError, DefinitionInvalid
from engine.services import cases, sla_clocks
from engine.services.definitions import get_definition, publish
from engine.store import case_store
from engine.store.calendar_store import LazyCalendars
from engine.store.models import Timer
from tests.conftest import ADMIN, T0

NAME = "tabled"
DEFINITION = f"""\
name: {NAME}
title: {{en: Tabled, zh: 决策表}}
initial: new
parameters:
  urgent_fix: {{type: duration, default: 1h}}
data_schema:
  type: object
  properties:
    band: {{enum: [small, large, unknown]}}
    hours: {{type: integer, minimum: 0}}
decisions:
  fix_target:
    inputs: {{band: data.band}}
    output: duration
    rules:
      - when: {{band: null}}
        then: 4h
      - when: {{band: small}}
        then: {{param: urgent_fix}}
      - when: {{band: large}}
        then: 10h
  # "unknown" has no rule: a gap, refused at publish (the tests add it where they need it).
states:
  - name: new
    title: {{en: New, zh: 新}}
  - name: working
    title: {{en: Working, zh: 处理中}}
    timers: [{{after: {{expr: decisions.fix_target}}, trigger: overdue}}]
  - name: done
    title: {{en: Done, zh: 完成}}
    final: true
transitions:
  - {{trigger: start, source: new, dest: working}}
  - trigger: classify
    source: [new, working]
    dest: working
    payload_schema:
      type: object
      required: [band]
      properties: {{band: {{enum: [small, large, unknown]}}}}
    actions:
      - set: {{band: payload.band}}
  - {{trigger: overdue, source: working, dest: working}}
  - {{trigger: finish, source: working, dest: done}}
slas:
  - name: fix
    title: {{en: Fix, zh: 修复}}
    target: {{expr: decisions.fix_target}}
    start: {{states: [working]}}
    stop: {{states: [done]}}
"""


def _definition_with_unknown_band_covered() -> str:
    return DEFINITION.replace(
        "      - when: {band: large}\n        then: 10h\n",
        "      - when: {band: large}\n        then: 10h\n"
        "      - when: {band: unknown}\n        then: 8h\n",
    )


def _fix_clock(session: Session, case_id: int) -> tuple[timedelta, timedelta]:
    """The fix clock's target as kept event by event, and as recomputed from the history."""
    case = case_store.get_case(session, case_id)
    definition = get_definition(session, NAME, case.definition_version)
    history = case_store.events_of(session.connection(), case_id)
    (kept,) = sla_clocks.clocks(session, definition, case, now=T0 + timedelta(hours=1))
    (recomputed,) = compute_clocks(
        definition,
        history,
        data=case.data,
        params=case.params,
        now=T0 + timedelta(hours=1),
        calendars=LazyCalendars(session),
    )
    return kept.target, recomputed.target


def test_an_sla_target_from_a_table_follows_the_data_the_table_reads(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session, session.begin():
        publish(session, _definition_with_unknown_band_covered(), actor="test", now=T0)
        case_id = cases.create_case(session, NAME, {}, actor=ADMIN, now=T0).case.id
        cases.fire(session, case_id, "start", actor=ADMIN, now=T0)
    with sessions() as session:
        assert _fix_clock(session, case_id) == (timedelta(hours=4), timedelta(hours=4))

    # classify keeps the case in working (no clock's state moves): only the table's input
    # does, and with it the target.
    with sessions() as session, session.begin():
        cases.fire(session, case_id, "classify", {"band": "large"}, actor=ADMIN, now=T0)
    with sessions() as session:
        assert _fix_clock(session, case_id) == (timedelta(hours=10), timedelta(hours=10))

    with sessions() as session, session.begin():
        cases.fire(session, case_id, "classify", {"band": "small"}, actor=ADMIN, now=T0)
    with sessions() as session:
        assert _fix_clock(session, case_id) == (timedelta(hours=1), timedelta(hours=1))
        due = session.scalars(
            select(Timer.due_at).where(
                Timer.case_id == case_id, Timer.status == "armed", Timer.sla == "fix"
            )
        ).all()
        # the breach is armed a second past the target: a clock breaches once it runs past it
        assert due and max(due) == T0 + timedelta(hours=1, seconds=1)


def test_a_timer_after_from_a_table_is_armed_at_the_chosen_duration(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session, session.begin():
        publish(session, _definition_with_unknown_band_covered(), actor="test", now=T0)
        case_id = cases.create_case(session, NAME, {"band": "large"}, actor=ADMIN, now=T0).case.id
        cases.fire(session, case_id, "start", actor=ADMIN, now=T0)
    with sessions() as session:
        (due,) = session.scalars(
            select(Timer.due_at).where(
                Timer.case_id == case_id, Timer.status == "armed", Timer.name == "overdue_0"
            )
        ).all()

    assert due == T0 + timedelta(hours=10)


def test_a_definition_whose_table_has_a_gap_is_not_published(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session, session.begin(), pytest.raises(DefinitionInvalid) as caught:
        publish(session, DEFINITION, actor="test", now=T0)

    (problem,) = caught.value.problems
    assert problem.code == "decision-gap"
    assert problem.path == "decisions.fix_target.rules"
    assert "band = unknown" in problem.message
    assert problem.line is not None


def test_inputs_no_rule_covers_at_run_time_fail_the_step_and_change_nothing(
    sessions: sessionmaker[Session],
) -> None:
    # A default-less table over free text: the validator cannot enumerate its inputs.
    source = DEFINITION.replace("band: {enum: [small, large, unknown]}", "band: {type: string}")
    with sessions() as session, session.begin():
        publish(session, source, actor="test", now=T0)
        case_id = cases.create_case(session, NAME, {}, actor=ADMIN, now=T0).case.id
        cases.fire(session, case_id, "start", actor=ADMIN, now=T0)
        version = case_store.get_case(session, case_id).version

    with pytest.raises(DecisionError) as caught, sessions() as session, session.begin():
        cases.fire(session, case_id, "classify", {"band": "huge"}, actor=ADMIN, now=T0)

    assert "band = huge" in caught.value.message
    assert caught.value.fields["path"] == "decisions.fix_target"
    with sessions() as session:
        case = case_store.get_case(session, case_id)
        assert case.version == version
        assert case.data == {}
