"""Validation reports a process owner can act on: each problem at its YAML line and column,
errors before warnings, unknown calendars refused where the calendars are known, and parameter
defaults held to the rules of the literals they stand for (docs/definitions.md)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from engine.core.source_map import Position, locate
from engine.core.validation import load_definition, parameter_problems, validate, validate_text
from engine.errors import Severity

SOURCE = """\
name: unit_lines
title: {en: Lines, zh: 行}
initial: open
parameters:
  answer_within: {type: duration, default: 1d4h}
states:
  - name: open
    title: {en: Open, zh: 打开}
    timers:
      - after: {param: answer_within}
        calendar: cn-workdays
        trigger: expire
  - name: lonely
    title: {en: Lonely, zh: 孤}
  - name: closed
    title: {en: Closed, zh: 关闭}
    final: true
transitions:
  - trigger: expire
    source: open
    dest: closed
  - trigger: answer
    source: [open, lonely]
    dest: clossed
"""


def test_every_element_is_found_at_its_line_and_column() -> None:
    source = locate(SOURCE)

    assert source.find("parameters.answer_within.default") == Position(5, 35)
    assert source.find("states[0].timers[0].calendar") == Position(11, 9)
    assert source.find("transitions[1].source[1]") == Position(23, 20)
    # not written: its nearest written ancestor
    assert source.find("transitions[1].guard") == source.find("transitions[1]") == Position(22, 5)
    assert locate("states: [\n").find("states") is None  # not YAML: its reader says where


def test_an_aliased_node_is_walked_once() -> None:
    # ten levels of ten aliases: expanded, 10**10 values; walked as written, a hundred
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]

    source = locate("\n".join(lines))

    assert source.find("a9") == Position(10, 1)
    assert len(source.positions) < 200


def test_problems_carry_their_line_errors_first_each_in_the_order_written() -> None:
    _document, report = validate_text(SOURCE, "unit_lines.yaml")

    found = [(p.severity, p.code, p.path, p.line) for p in report.problems]
    assert found == [
        (Severity.ERROR, "mixed-business-duration", "parameters.answer_within.default", 5),
        (Severity.ERROR, "unknown-state", "transitions[1].dest", 24),
        (Severity.WARNING, "unreachable-state", "states[1]", 13),
    ]
    error = report.problems[0]
    assert "'1d4h'" in error.message and "states[0].timers[0].after" in error.message
    assert error.to_dict()["line"] == 5 and error.to_dict()["column"] == 35
    assert str(error).startswith("error: line 5, column 35, parameters.answer_within.default: ")


def test_a_default_on_the_wall_clock_may_mix_days_and_hours() -> None:
    document = yaml.safe_load(SOURCE.replace("calendar: cn-workdays", "calendar: 24x7"))

    codes = {p.code for p in validate(document).problems}

    assert "mixed-business-duration" not in codes


def test_an_unknown_calendar_warns_offline_and_is_an_error_where_calendars_are_known() -> None:
    document: dict[str, Any] = yaml.safe_load(SOURCE.replace("cn-workdays", "cn_workdays"))
    document["parameters"]["answer_within"]["default"] = "4h"

    offline = [p for p in validate(document).problems if p.code == "unknown-calendar"]
    known = [
        p
        for p in validate(
            document, known_calendars={"cn-workdays", "hospital"}, calendars_complete=True
        ).problems
        if p.code == "unknown-calendar"
    ]

    assert [p.severity for p in offline] == [Severity.WARNING]
    assert [p.severity for p in known] == [Severity.ERROR]
    assert known[0].hint == "Did you mean 'cn-workdays'?"
    assert "does not exist in this database" in known[0].message


def test_parameter_problems_name_where_an_override_is_measured_on_a_business_calendar() -> None:
    document = yaml.safe_load(SOURCE.replace("1d4h", "4h").replace("dest: clossed", "dest: closed"))
    document["states"].pop(1)  # lonely
    document["transitions"][1]["source"] = ["open"]
    plain = copy.deepcopy(document)
    plain["states"][0]["timers"][0].pop("calendar")

    found = parameter_problems(
        load_definition(document), {"answer_within": "1d4h"}, "answer_within"
    )
    assert [(use.path, problem.code) for use, problem in found] == [
        ("states[0].timers[0].after", "mixed-business-duration")
    ]
    assert (
        parameter_problems(load_definition(plain), {"answer_within": "1d4h"}, "answer_within") == []
    )
    assert (
        parameter_problems(load_definition(document), {"answer_within": "4h"}, "answer_within")
        == []
    )
