"""Messages quote values as the person wrote them, never as Python spells them: ``null`` for
an absent value, ``{"code": 7}`` for an object, ISO 8601 for a time (docs/api.md, "Errors").

Walks representative error paths: the services on both databases (what the API, the CLI and
the dashboard show), a definition's validation and the CLI. The HTTP side is
in tests/api/test_messages.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from engine.cli import main
from engine.core.definition import parse_source
from engine.core.durations import parse_duration
from engine.core.validation import validate
from engine.errors import SvcflowError, written
from engine.services import cases
from engine.services.calendars import save_calendar
from engine.services.definitions import set_parameter
from tests.conftest import ADMIN, T0
from tests.messages import assert_reads_as_written
from tests.workflows import COUNTER

DATA = {"customer": "市人民医院", "device_serial": "SN-1", "fault": "黑屏", "priority": "normal"}


def _create(data: dict[str, Any], definition: str = "repair_ticket") -> Callable[[Session], Any]:
    return lambda s: cases.create_case(s, definition, data, actor=ADMIN, now=T0)


def _contact(at: Any) -> Callable[[Session], Any]:
    def act(s: Session) -> Any:
        case = cases.create_case(s, "repair_ticket", DATA, actor=ADMIN, now=T0).case
        return cases.fire(s, case.id, "contact", {"at": at}, actor=ADMIN, now=T0)

    return act


def _param(value: Any) -> Callable[[Session], Any]:
    return lambda s: set_parameter(s, "repair_ticket", "arrival_normal", value, actor="t", now=T0)


def _calendar(**overrides: Any) -> Callable[[Session], Any]:
    return lambda s: save_calendar(s, "hospital", actor="t", now=T0, overrides=overrides)


SERVICE_PATHS = {
    "a null in case data": (
        _create({**DATA, "customer": None}),
        ['customer: null is not of type "string"'],
    ),
    "an object and a wrong choice in case data": (
        _create({**DATA, "fault": {"code": 7}, "priority": "urgent"}),
        [
            'fault: {"code": 7} is not of type "string"',
            'priority: "urgent" is not one of ["emergency", "normal"]',
        ],
    ),
    "true where a number belongs": (
        _create({"count": 0, "ratio": True}, "it_counter"),
        ['ratio: true is not of type "number"'],
    ),
    "a null in a payload": (_contact(None), ['at: null is not of type "string"']),
    "a list in a payload": (_contact(["a"]), ['at: ["a"] is not of type "string"']),
    "a parameter set to null": (_param(None), ["takes a duration, not null."]),
    "a parameter set to an object": (_param({"h": 2}), ['takes a duration, not {"h": 2}.']),
    "a holiday that is null": (_calendar(holidays_add=[None]), ["null is not a date"]),
    "a year that is an object": (_calendar(covered_years_add=[{}]), ["{} is not a year"]),
}


@pytest.mark.parametrize("path", SERVICE_PATHS)
def test_service_errors_spell_values_as_json(
    path: str, sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow("repair_ticket.yaml")
    publish_workflow(COUNTER)
    act, expected = SERVICE_PATHS[path]

    with pytest.raises(SvcflowError) as caught, sessions() as session, session.begin():
        act(session)

    error = caught.value
    for text in expected:
        assert text in error.message
    assert_reads_as_written(error.message, error.hint, *map(str, error.fields.get("errors", [])))


def test_a_definitions_problems_spell_values_as_json() -> None:
    document = parse_source(
        COUNTER.replace("title: {en: Counter, zh: 计数}", "title:").replace(
            "limit: {type: integer, default: 3}", "limit: {type: integer, default: null}"
        )
    )

    messages = [p.message for p in validate(document).problems]

    assert 'null is not of type "object"' in messages  # title: with nothing after it
    assert "Default null is not of type integer." in messages
    assert_reads_as_written(*messages)
    with pytest.raises(SvcflowError) as caught:
        parse_duration(None)
    assert caught.value.message == "Duration must be a string like '2h' or '3d', got null."


def test_the_cli_prints_the_values_it_was_given(db_url: str, publish_workflow: Any) -> None:
    publish_workflow("repair_ticket.yaml")

    def svcflow(*args: str) -> str:
        result = CliRunner().invoke(main, ["--database-url", db_url, *args])
        assert result.exit_code == 1, result.output
        return result.stderr

    created = svcflow(
        "cases", "create", "repair_ticket", "--data", written({**DATA, "fault": None})
    )
    param = svcflow("definitions", "set-param", "repair_ticket", "arrival_normal", "true")

    assert 'fault: null is not of type "string"' in created
    assert "takes a duration, not true." in param and 'hint: Default is "2h".' in param
    assert_reads_as_written(created, param)


@pytest.mark.parametrize(
    ("value", "spelled"),
    [
        (None, "null"),
        (True, "true"),
        ({"a": [1, "二"]}, '{"a": [1, "二"]}'),
        (parse_source("at: 2026-02-24 10:00:00")["at"], '"2026-02-24T10:00:00"'),
        (parse_source("at: 2026-02-24T02:00:00Z")["at"], '"2026-02-24T02:00:00+00:00"'),
        (parse_source("day: 2026-02-24")["day"], '"2026-02-24"'),
    ],
)
def test_a_value_is_spelled_as_json(value: Any, spelled: str) -> None:
    assert written(value) == spelled
