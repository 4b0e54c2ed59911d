"""One policy for fields a definition does not declare (docs/definitions.md, unknown_fields):
refused by default, with the error naming the field and the fields expected; kept when the
definition says ``unknown_fields: keep``; never applied to what the engine sends itself."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.core.machine import Actor
from engine.errors import DataInvalid, PayloadInvalid
from engine.services import cases, operations
from tests.conftest import ADMIN, T0
from tests.factories import create_case, fire

SOURCE = """\
name: visit
title: {{en: Visit, zh: 上门}}
initial: open
{policy}assignee: engineer
data_schema:
  type: object
  properties:
    customer: {{type: string}}
    engineer: {{type: string}}
states:
  - {{name: open, title: {{en: Open, zh: 待处理}}}}
  - {{name: done, title: {{en: Done, zh: 完成}}, final: true}}
transitions:
  - trigger: log_call
    source: open
    dest: open
    payload_schema:
      type: object
      properties:
        note: {{type: string}}
        at: {{type: string}}
  - trigger: close
    source: open
    dest: done
"""
INTEGRATOR = Actor("token:hotline", frozenset({"integrator"}))


@pytest.fixture
def strict(publish_workflow: Any) -> None:
    publish_workflow(SOURCE.format(policy=""))


def test_a_misspelt_payload_field_is_refused_naming_it_and_the_expected_ones(
    sessions: sessionmaker[Session], strict: None
) -> None:
    case_id = create_case(sessions, "visit", {"customer": "市人民医院"}).case.id
    with pytest.raises(PayloadInvalid) as refused:
        fire(sessions, case_id, "log_call", {"note": "ok", "nite": "typo"}, actor=INTEGRATOR)

    assert refused.value.message == (
        "Payload field nite is not expected by trigger 'log_call'. Expected: at, note."
    )
    assert (refused.value.fields["unexpected"], refused.value.fields["expected"]) == (
        ["nite"],
        ["at", "note"],
    )
    assert fire(sessions, case_id, "log_call", {"note": "ok"}, actor=INTEGRATOR).event.seq == 2


def test_an_undeclared_data_field_is_refused_at_creation_and_in_an_operator_change(
    sessions: sessionmaker[Session], strict: None
) -> None:
    with pytest.raises(DataInvalid) as refused:
        create_case(sessions, "visit", {"customer": "市人民医院", "hacker": "1"})
    assert refused.value.message == (
        "Data field hacker is not declared by 'visit'. Declared: customer, engineer."
    )
    case_id = create_case(sessions, "visit", {"customer": "市人民医院"}).case.id
    with sessions() as session, session.begin():
        outcome = operations.reassign(
            session, case_id, "张工", actor=ADMIN, reason="on duty", now=T0
        )
    assert outcome.case.data["engineer"] == "张工"  # a declared field is fine


def test_a_definition_may_keep_unknown_fields(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(SOURCE.format(policy="unknown_fields: keep\n"))
    case_id = create_case(sessions, "visit", {"customer": "x", "extra": 1}).case.id
    outcome = fire(sessions, case_id, "log_call", {"note": "ok", "more": 2}, actor=INTEGRATOR)

    assert outcome.case.data["extra"] == 1
    assert outcome.event.payload == {"note": "ok", "more": 2}


def test_what_the_engine_sends_is_not_checked(
    sessions: sessionmaker[Session], strict: None
) -> None:
    """A timer, an SLA breach or a child's news passes the definition's own payload."""
    case_id = create_case(sessions, "visit", {"customer": "x"}).case.id
    with sessions() as session, session.begin():
        outcome = cases.fire(
            session,
            case_id,
            "log_call",
            {"sla": "arrival"},
            actor=Actor.system("timer"),
            now=T0,
        )
    assert outcome.event.payload == {"sla": "arrival"}
