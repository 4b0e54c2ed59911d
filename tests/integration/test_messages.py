"""Messages quote values as the person wrote them, never as Python spells them: ``null`` for
an absent value, ``{"code": 7}`` for an object, ISO 8601 for a time (docs/api.md, "Errors").

Walks representative error paths: the services on both databases (what the API, the CLI and
the dashboard show), a definition's validation, the simulator and the CLI. The HTTP side is
in tests/api/test_messages.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from engine.cli import main
from engine.core.definition import parse_source
from engine.core.durations import parse_duration
from engine.core.validation import validate
from engine.errors import ScenarioError, SvcflowError, written
from engine.services import cases
from engine.services.calendars import save_calendar
from engine.services.definitions import set_parameter
from engine.simulation import run_scenario_file
from tests.conftest import ADMIN, T0, WORKFLOWS
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


SCENARIO = f"""\
name: messages
definitions: [{WORKFLOWS / "repair_ticket.yaml"}]
start: 2026-02-24T10:00:00+08:00
steps:
  - create:
      case: t1
      definition: repair_ticket
      data: {{customer: 市人民医院, device_serial: SN-1, fault: 黑屏, priority: emergency}}
  - fire: {{case: t1, trigger: contact, payload: {{at: 2026-02-24T02:00:00Z}}}}
  - expect: {{case: t1, data: {{contacted_at: 2026-02-24T02:00:00Z}}}}
  - expect:
      case: t1
      state: logged
      data: {{engineer: 王工, customer: null, visits: [1]}}
      triggers: [dispatch]
      sla: {{first_contact: breached, nope: met}}
"""


def test_failed_expectations_name_values_as_the_scenario_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO, "utf-8")

    report = run_scenario_file(path)

    assert [s.ok for s in report.steps] == [True, True, True, False]  # the timestamp, as text
    (failed,) = report.failures
    for part in (
        'state is "remote_diagnosis", expected "logged"',
        'data.engineer is absent, expected "王工"',
        'data.customer is "市人民医院", expected null',
        "data.visits is absent, expected [1]",
        'triggers fired ["contact"], expected ["dispatch"]',
        'SLA first_contact is "met", expected "breached"',
        'SLA nope does not exist in the definition; expected "met"',
    ):
        assert part in failed.message
    assert_reads_as_written(*(s.message for s in report.steps))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("start: 2026-02-24T10:00:00+08:00", "start: 2026-02-24 10:00:00"),
            "start: 2026-02-24T10:00:00 has no UTC offset.",
        ),
        (
            ("{at: 2026-02-24T02:00:00Z}", "{at: 2026-02-24T02:00:00}"),
            "steps[1].fire.payload.at: 2026-02-24T02:00:00 has no UTC offset.",
        ),
        (("  - expect: {case: t1, data:", "  - expect:\n  - x: {case: t1, data:"), "not null."),
        (("start: 2026-02-24T10:00:00+08:00", "start: [monday]"), 'start: ["monday"] is not'),
    ],
    ids=["naive start", "naive payload time", "empty step", "a list for a time"],
)
def test_scenario_mistakes_quote_what_was_written(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO.replace(*change), "utf-8")

    with pytest.raises(ScenarioError) as caught:
        run_scenario_file(path)

    assert message in caught.value.message
    assert_reads_as_written(caught.value.message, caught.value.hint)


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
