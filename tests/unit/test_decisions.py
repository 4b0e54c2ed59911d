"""Decision tables: what they decide at run time, what the validator proves about them, and
that repair_ticket's tables decide exactly what its nested ternaries did."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.core.decisions import Condition, Decisions, build_decisions
from engine.core.definition import parse_source
from engine.core.diagram import to_dot
from engine.core.diff import diff_definitions
from engine.core.expressions import Expression, compiled, make_context
from engine.core.machine import ADMIN_ROLE, Actor, compile_workflow
from engine.core.timer_plans import resolve_duration
from engine.core.validation import load_definition, validate, validate_text
from engine.errors import DecisionError, GuardRejected

NOW = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
REPAIR = load_definition(parse_source((WORKFLOWS / "repair_ticket.yaml").read_text("utf-8")))

# The arrival and resolution targets as repair_ticket.yaml wrote them before its tables.
ARRIVAL_TERNARY = """
    data.priority == 'emergency' ? duration(params.arrival_emergency)
    : !has(data.distance_class) ? duration(params.arrival_normal)
    : data.distance_class == 'same_city' ? duration(params.arrival_same_city)
    : data.distance_class == 'other_city' ? duration(params.arrival_other_city)
    : duration(params.arrival_remote)"""
RESOLUTION_TERNARY = """
    !has(data.severity) ? duration(params.resolution_within)
    : data.severity == 'major' ? duration(params.resolution_major)
    : data.severity == 'complex' ? duration(params.resolution_complex)
    : duration(params.resolution_general)"""

durations = st.builds(
    lambda h, m: f"{h}h{m}m" if m else f"{h}h", st.integers(1, 96), st.sampled_from([0, 15, 30])
)


def _decide(decisions: Decisions, name: str, data: dict[str, Any], **params: Any) -> Any:
    context = make_context(data, {}, params, NOW, decisions=decisions)
    return Expression(f"decisions.{name}", "slas[0].target.expr").evaluate(context)


def _with(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


# --- repair_ticket: the tables replace the ternaries exactly ------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    params=st.fixed_dictionaries(
        {
            name: durations
            for name in (
                "arrival_emergency",
                "arrival_normal",
                "arrival_same_city",
                "arrival_other_city",
                "arrival_remote",
                "resolution_within",
                "resolution_general",
                "resolution_complex",
                "resolution_major",
            )
        }
    )
)
def test_repair_ticket_tables_choose_what_its_ternaries_chose(params: dict[str, str]) -> None:
    """R-REP-04 (arrival by priority and distance), R-REP-05 (resolution by severity): for
    every combination and any parameter values, the same target as before the tables."""
    arrival, resolution = (compiled(t, "reference") for t in (ARRIVAL_TERNARY, RESOLUTION_TERNARY))
    for priority, distance, severity in itertools.product(
        ["emergency", "normal"],
        [None, "same_city", "other_city", "remote"],
        [None, "general", "complex", "major"],
    ):
        data = _with(priority=priority, distance_class=distance, severity=severity)
        old = make_context(data, {}, params, NOW)
        assert _decide(REPAIR.decisions, "arrival_target", data, **params) == arrival.evaluate(old)
        assert _decide(REPAIR.decisions, "resolution_target", data, **params) == (
            resolution.evaluate(old)
        )


def test_the_arrival_sla_target_is_the_table_value_on_the_bundled_workflow() -> None:
    (sla,) = [s for s in REPAIR.slas if s.name == "arrival"]
    params = REPAIR.default_params() | {"arrival_other_city": "24h"}
    data = {"priority": "normal", "distance_class": "other_city"}

    target = resolve_duration(
        sla.target, data=data, params=params, now=NOW, path=sla.path, decisions=REPAIR.decisions
    )

    assert target == timedelta(hours=24)


# --- run time ------------------------------------------------------------------------------------


def _tables(text: str) -> Decisions:
    return build_decisions(yaml.safe_load(text))


OPEN_INPUTS = _tables(
    """
    route:
      inputs: {team: data.team, km: data.km}
      output: number
      rules:
        - when: {team: north, km: {max: 10}}
          then: 1
        - when: {team: north, km: {above: 10, below: 50}}
          then: {param: far}
        - when: {team: [south, east]}
          then: 3
        - when: {team: east, km: 0}
          then: 4
    flag:
      inputs: {lit: data.lit}
      output: string
      hit_policy: first
      rules:
        - when: {lit: true}
          then: "true"
        - when: {lit: 1}
          then: one
        - when: {lit: [any]}
          then: the word
        - when: {lit: null}
          then: unset
      default: other
    """
)


def test_ranges_lists_and_parameters_choose_a_number_as_a_cel_double() -> None:
    assert _decide(OPEN_INPUTS, "route", {"team": "north", "km": 10}, far=2) == 1.0
    assert _decide(OPEN_INPUTS, "route", {"team": "north", "km": 10.5}, far=2) == 2.0
    value = _decide(OPEN_INPUTS, "route", {"team": "south", "km": 99}, far=2)
    assert value == 3.0 and isinstance(value, float)  # CEL does not compare int with double


def test_no_matching_rule_fails_naming_the_table_and_its_inputs() -> None:
    with pytest.raises(DecisionError) as caught:
        _decide(OPEN_INPUTS, "route", {"team": "north", "km": 50}, far=2)

    assert caught.value.fields["path"] == "decisions.route"
    assert "team = north, km = 50" in caught.value.message
    assert "default" in (caught.value.hint or "")


def test_two_rules_matching_under_unique_fail_naming_both() -> None:
    with pytest.raises(DecisionError) as caught:
        _decide(OPEN_INPUTS, "route", {"team": "east", "km": 0}, far=2)

    assert "decisions.route.rules[2] and decisions.route.rules[3]" in caught.value.message


def test_first_policy_null_for_an_unset_field_the_word_any_and_the_default() -> None:
    assert _decide(OPEN_INPUTS, "flag", {"lit": True}) == "true"
    assert _decide(OPEN_INPUTS, "flag", {"lit": 1}) == "one"  # true is not 1, 1 is not true
    assert _decide(OPEN_INPUTS, "flag", {"lit": "any"}) == "the word"
    assert _decide(OPEN_INPUTS, "flag", {}) == "unset"
    assert _decide(OPEN_INPUTS, "flag", {"lit": "something"}) == "other"


def test_a_parameter_of_the_wrong_type_at_run_time_is_a_decision_error() -> None:
    with pytest.raises(DecisionError, match="parameter 'far' is \"two\", not a number"):
        _decide(OPEN_INPUTS, "route", {"team": "north", "km": 20}, far="two")


def test_a_table_is_decided_only_when_an_expression_reads_it() -> None:
    context = make_context({"team": "nowhere"}, {}, {}, NOW, decisions=OPEN_INPUTS)

    assert Expression("data.team == 'nowhere'", "guard").evaluate(context) is True
    with pytest.raises(DecisionError):
        Expression("decisions.route > 0.0", "guard").evaluate(context)


def test_what_an_expression_reads_includes_what_its_tables_read() -> None:
    tables = _tables(
        """
        late:
          inputs:
            since: "now - timestamp(data.opened_at) > duration('1h')"
            repairs: counters.repairs
          output: boolean
          rules: [{then: true}]
        """
    )
    guard = Expression("decisions.late && data.x > 0", "guard")

    assert tables.data_fields_read(guard) == {"opened_at", "x"}
    assert {"now", "counters", "data"} <= tables.variables_read(guard)
    assert tables.data_fields_read(Expression("data.y > 0", "guard")) == {"y"}


def test_a_guard_reading_a_table_of_counters_gets_the_counters_read() -> None:
    compiled_workflow = compile_workflow(REPAIR)
    assert not compiled_workflow.reads_counters("arrive", "dispatched")
    document = parse_source((WORKFLOWS / "repair_ticket.yaml").read_text("utf-8"))
    document["decisions"]["many"] = {
        "inputs": {"repairs": "counters.device_repairs"},
        "output": "boolean",
        "rules": [{"when": {"repairs": {"min": 5}}, "then": True}, {"then": False}],
        "hit_policy": "first",
    }
    document["transitions"][4]["guard"] = "!decisions.many"
    assert "on arrive" in document["transitions"][4]  # its head: on arrive: dispatched -> on_site
    with_counters = compile_workflow(load_definition(document, version=2))

    assert with_counters.reads_counters("arrive", "dispatched")
    actor = Actor("t", frozenset({ADMIN_ROLE}))
    data = {"customer": "c", "device_serial": "s", "fault": "f", "priority": "normal"}

    def arrive(repairs: int) -> str:
        return with_counters.step(
            state="dispatched",
            data=data,
            trigger="arrive",
            payload={},
            params=with_counters.definition.default_params(),
            now=NOW,
            actor=actor,
            counters={"device_repairs": repairs},
        ).to_state

    assert arrive(4) == "on_site"
    with pytest.raises(GuardRejected):
        arrive(5)


# --- validation: the verdict on overlaps and gaps is exact ---------------------------------------

MINI = """\
name: mini
title: {en: Mini, zh: 迷你}
initial: open
data_schema:
  type: object
  required: [kind, n]
  properties:
    kind: {enum: [a, b, c]}
    n: {type: integer, minimum: 0, maximum: 12}
    out: {type: string}
states:
  - {name: open, title: {en: Open, zh: 打开}}
  - {name: done, title: {en: Done, zh: 完成}, final: true}
transitions:
  - {trigger: finish, source: open, dest: done, actions: [{set: {out: decisions.t}}]}
"""


def _mini(table: dict[str, Any]) -> dict[str, Any]:
    document = parse_source(MINI)
    document["decisions"] = {"t": table}
    return document


def _codes(table: dict[str, Any]) -> set[str]:
    return {p.code for p in validate(_mini(table)).problems}


kinds = st.one_of(
    st.just("any"),
    st.sampled_from(["a", "b", "c"]),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2, unique=True),
)
bounds = st.integers(-2, 14)
ranges = st.one_of(
    st.just("any"),
    bounds,
    st.builds(
        lambda lo, hi, k: {k[0]: lo, k[1]: hi},
        bounds,
        bounds,
        st.sampled_from([("min", "max"), ("above", "below"), ("min", "below"), ("above", "max")]),
    ),
    st.builds(lambda v, k: {k: v}, bounds, st.sampled_from(["min", "max", "above", "below"])),
)
rules = st.lists(st.fixed_dictionaries({"kind": kinds, "n": ranges}), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(rules=rules)
# a gap and an overlap that lie only between the bounds the rules write (4 to 7; 5)
@example(rules=[{"kind": "any", "n": {"max": 3}}, {"kind": "any", "n": {"min": 8}}])
@example(
    rules=[
        {"kind": "any", "n": {"above": 2, "below": 6}},
        {"kind": "any", "n": {"above": 4, "below": 9}},
        {"kind": "any", "n": {"max": 2}},
        {"kind": "any", "n": {"min": 9}},
    ]
)
def test_overlaps_and_gaps_reported_are_exactly_those_of_every_input(
    rules: list[dict[str, Any]],
) -> None:
    """Against brute force: every kind and every whole n the schema allows, each rule's
    conditions matched as the engine matches them."""
    table = {
        "inputs": {"kind": "data.kind", "n": "data.n"},
        "output": "string",
        "rules": [{"when": when, "then": f"r{i}"} for i, when in enumerate(rules)],
    }
    codes = _codes(table)
    if codes & {"decision-bad-range", "decision-unknown-value"}:
        return  # a range holding no number, a bound outside: refused before coverage
    conditions = build_decisions({"t": table}).tables["t"].rules
    matching = [
        [i for i, rule in enumerate(conditions) if rule.matches({"kind": kind, "n": n})]
        for kind, n in itertools.product("abc", range(13))
    ]

    assert ("decision-gap" in codes) == any(len(m) == 0 for m in matching)
    assert ("decision-overlap" in codes) == any(len(m) > 1 for m in matching)


def test_an_integer_hole_with_no_whole_number_in_it_is_no_gap() -> None:
    table = {
        "inputs": {"n": "data.n"},
        "output": "string",
        "rules": [
            {"when": {"n": {"max": 2}}, "then": "low"},
            {"when": {"n": {"min": 3}}, "then": "high"},
        ],
    }
    assert _codes(table) == set()


def test_a_default_answers_the_inputs_no_rule_names() -> None:
    table = {
        "inputs": {"kind": "data.kind"},
        "output": "string",
        "rules": [{"when": {"kind": "a"}, "then": "x"}],
    }
    assert _codes(table) == {"decision-gap"}
    assert _codes(table | {"default": "y"}) == set()


def test_too_many_combinations_are_not_checked_for_gaps_and_say_so() -> None:
    document = parse_source(MINI)
    properties = document["data_schema"]["properties"]
    for i in range(5):
        properties[f"f{i}"] = {"enum": list(range(8))}
    document["decisions"] = {
        "t": {
            "inputs": {f"f{i}": f"data.f{i}" for i in range(5)},
            "output": "string",
            "rules": [{"when": {"f0": 1}, "then": "x"}],
        }
    }
    (problem,) = validate(document).problems

    assert (problem.code, problem.severity.value) == ("decision-not-checked", "warning")
    assert "59,049 combinations" in problem.message  # 9 values each, "not set" included


def test_the_largest_table_allowed_is_checked_in_seconds() -> None:
    """200 rules of distinct ranges over 8 numbers cut each into 800 atoms: checked rule by
    rule and atom by atom this took two minutes (a publish request would time out)."""
    document = parse_source(MINI)
    for i in range(8):
        document["data_schema"]["properties"][f"x{i}"] = {"type": "number"}
    document["decisions"] = {
        "t": {
            "inputs": {f"x{i}": f"data.x{i}" for i in range(8)},
            "output": "string",
            "rules": [
                {"when": {f"x{i}": {"min": r * 10 + i, "below": r * 10 + i + 5} for i in range(8)}}
                | {"then": f"r{r}"}
                for r in range(200)
            ],
        }
    }
    started = time.perf_counter()
    problems = validate(document).problems

    assert time.perf_counter() - started < 10
    assert [p.code for p in problems] == ["decision-not-checked"]  # no overlap, gaps unchecked


def test_problems_carry_the_line_and_column_of_the_rule() -> None:
    text = (WORKFLOWS / "repair_ticket.yaml").read_text("utf-8")
    rule = "      - {when: {priority: normal, distance: %s}, then: {param: arrival_remote}}"
    broken = text.replace(rule % "remote", rule % "[remote, same_city]")
    assert broken != text
    _, report = validate_text(broken)
    (problem,) = report.problems
    line = broken.splitlines().index(rule % "[remote, same_city]")

    assert problem.code == "decision-overlap"
    assert problem.path == "decisions.arrival_target.rules[4]"
    assert (problem.line, problem.column) == (line + 1, 9)
    assert "distance = same_city" in problem.message


def test_conditions_describe_themselves_as_a_reader_says_them() -> None:
    assert Condition().describe() == "any"
    assert Condition(values=("a", None)).describe() == "a or not set"
    assert Condition(low=50, high=100, high_open=True).describe() == "at least 50 and below 100"


# --- the diagram ----------------------------------------------------------------------------------


def test_the_diagram_draws_each_table_with_its_rules_and_renders() -> None:
    dot = to_dot(REPAIR)

    assert '"decisions.arrival_target" [shape=plaintext' in dot
    assert "<td>normal</td><td>not set</td><td>params.arrival_normal</td>" in dot
    assert "<td>emergency</td><td>any</td><td>params.arrival_emergency</td>" in dot
    assert "决策表" in to_dot(REPAIR, lang="zh") and "到场时限" in to_dot(REPAIR, lang="zh")
    binary = shutil.which("graphviz-pure", path=str(Path(sys.executable).parent))
    assert binary is not None, "graphviz-pure is a dependency: the API renders with it"
    svg = subprocess.run(
        [binary, "-Tsvg"], input=dot.encode(), capture_output=True, check=True, timeout=20
    ).stdout.decode()
    assert ">params.arrival_same_city<" in svg
    assert ">Decision tables<" in svg


# --- versions -------------------------------------------------------------------------------------


def test_a_diff_between_versions_names_the_tables_added_removed_and_changed() -> None:
    text = (WORKFLOWS / "repair_ticket.yaml").read_text("utf-8")
    changed = (
        text.replace(
            "distance: remote}, then: {param: arrival_remote}",
            "distance: remote}, then: 48h",
        )
        .replace("  resolution_target:\n", "  repair_target:\n")
        .replace("decisions.resolution_target", "decisions.repair_target")
    )
    assert changed.count("then: 48h") == 1
    new = load_definition(parse_source(changed), version=2)

    changes = diff_definitions(REPAIR, new, text, changed).changes["decisions"]

    assert changes == {
        "added": ["repair_target"],
        "removed": ["resolution_target"],
        "changed": ["arrival_target"],
    }


# --- the documentation's example ----------------------------------------------------------------


def test_the_example_in_definitions_doc_validates_and_decides() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "definitions.md").read_text("utf-8")
    (example,) = [
        block.split("```")[0]
        for block in text.split("```yaml\n")[1:]
        if block.startswith("# Arrival target by priority")
    ]
    document = parse_source(example) | {
        "name": "doc_example",
        "title": {"en": "Doc example", "zh": "文档示例"},
        "initial": "dispatched",
        "parameters": {
            name: {"type": "duration", "default": default}
            for name, default in [
                ("arrival_emergency", "1h"),
                ("arrival_normal", "2h"),
                ("arrival_remote", "48h"),
            ]
        },
        "data_schema": {
            "type": "object",
            "required": ["priority"],
            "properties": {
                "priority": {"enum": ["emergency", "normal"]},
                "distance_class": {"enum": ["same_city", "other_city", "remote"]},
            },
        },
        "states": [
            {"name": "dispatched", "title": {"en": "Dispatched", "zh": "已派工"}},
            {"name": "on_site", "title": {"en": "On site", "zh": "到场"}, "final": True},
        ],
        "transitions": [{"trigger": "arrive", "source": "dispatched", "dest": "on_site"}],
    }
    assert validate(document).problems == []
    definition = load_definition(document)
    params = definition.default_params()

    def target(**data: Any) -> Any:
        return _decide(definition.decisions, "arrival_target", data, **params)

    assert target(priority="emergency", distance_class="remote") == timedelta(hours=1)
    assert target(priority="normal") == timedelta(hours=2)
    assert target(priority="normal", distance_class="other_city") == timedelta(hours=3)
    assert target(priority="normal", distance_class="remote") == timedelta(hours=48)
