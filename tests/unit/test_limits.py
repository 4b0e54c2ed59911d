"""The safety limits (engine/core/limits.py): what a definition says, and what a case is given,
cannot make the server spend unbounded memory or time, and every refusal says what, where and
what to do, as an engine error (never a RecursionError, a MemoryError or a crash)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core import limits
from engine.core.definition import _StrictLoader, parse_source
from engine.core.expression_budget import check_budget, degree
from engine.core.expressions import Expression
from engine.core.machine import Actor, compile_workflow
from engine.core.schemas import SchemaCheck
from engine.core.validation import load_definition, validate
from engine.errors import (
    DataInvalid,
    DefinitionSourceError,
    DefinitionTooLarge,
    ExpressionTooCostly,
    PayloadInvalid,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def _bomb(levels: int = 9, fan: int = 9) -> str:
    """The "billion laughs": each anchor lists ``fan`` aliases of the one before."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * fan) + "]"]
    for level in range(1, levels):
        aliases = ", ".join([f"*a{level - 1}"] * fan)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


def _mini(**transition: Any) -> dict[str, Any]:
    return {
        "name": "mini",
        "title": {"en": "Mini", "zh": "迷你"},
        "initial": "open",
        "data_schema": {
            "type": "object",
            "properties": {"xs": {"type": "array"}, "n": {"type": "integer"}},
        },
        "states": [
            {"name": "open", "title": {"en": "Open", "zh": "打开"}},
            {"name": "done", "title": {"en": "Done", "zh": "完成"}, "final": True},
        ],
        "transitions": [{"trigger": "finish", "source": "open", "dest": "done", **transition}],
    }


def _codes(document: Any) -> set[tuple[str, str]]:
    return {(p.path, p.code) for p in validate(document).errors}


# --- YAML ---------------------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_while_composing_naming_its_line() -> None:
    text = _bomb()
    assert len(text) < 1000  # 387 million values once expanded
    with pytest.raises(DefinitionTooLarge) as refused:
        parse_source(text, "bomb.yaml")
    error = refused.value
    assert f"{limits.YAML_MAX_VALUES:,} values" in error.message
    assert error.fields["line"] == 6  # the first alias past the limit, where it is written
    assert "line 6, column" in error.message
    assert error.hint and "Limits" in error.hint


def test_the_bomb_is_refused_before_it_is_composed() -> None:
    """Memory stays bounded by structure: the loader builds only the nodes written, never
    the expansion, before it refuses."""
    composed = 0

    class Counting(_StrictLoader):
        def compose_scalar_node(self, anchor: Any) -> Any:
            nonlocal composed
            composed += 1
            return super().compose_scalar_node(anchor)

        def compose_sequence_node(self, anchor: Any) -> Any:
            nonlocal composed
            composed += 1
            return super().compose_sequence_node(anchor)

    with pytest.raises(DefinitionTooLarge):
        yaml.load(_bomb(levels=30), Loader=Counting)
    assert composed < 100


def test_too_many_aliases_are_refused() -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (limits.YAML_MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(DefinitionTooLarge, match="aliases"):
        parse_source(text)


def test_nesting_is_refused_at_its_line_without_recursion() -> None:
    with pytest.raises(DefinitionTooLarge, match=r"more than 64 deep: refused at line 1"):
        parse_source("x: " + "[" * 5000 + "]" * 5000)
    deep_schema = "data_schema:\n" + "".join("  " * (i + 1) + "items:\n" for i in range(500))
    with pytest.raises(DefinitionTooLarge) as refused:
        parse_source(deep_schema)
    assert refused.value.fields["line"] == limits.YAML_MAX_DEPTH + 1
    assert refused.value.fields["path"].startswith("data_schema.items.items")


def test_aliases_cannot_nest_deeper_than_written() -> None:
    """An alias of a deep anchor inside another deep structure is as deep as both."""
    half = limits.YAML_MAX_DEPTH // 2 + 1
    text = f"a: &a {'[' * half}1{']' * half}\nb: {'[' * half}*a{']' * half}\n"
    with pytest.raises(DefinitionTooLarge, match="deep"):
        parse_source(text)


@pytest.mark.parametrize(
    "text",
    [
        "x: " + "1" * 5000,
        "x: !!int abc",
        "x: !!float abc",
        "x: 2020-13-45",
        "{[1]: 2}",
        "? [a]\n: 1",
    ],
)
def test_a_value_pyyaml_cannot_convert_is_a_source_error_at_its_line(text: str) -> None:
    with pytest.raises(DefinitionSourceError, match="line 1, column"):
        parse_source(text)


def test_source_size_is_bounded() -> None:
    with pytest.raises(DefinitionTooLarge, match="characters"):
        parse_source("# " + "x" * limits.SOURCE_MAX_CHARS)


def test_the_bundled_workflows_are_well_within_the_limits() -> None:
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        load_definition(parse_source(path.read_text("utf-8"), str(path)))


_YAMLISH = st.lists(
    st.sampled_from(
        [
            *"&*ab19.[]{}:,- \n'\"!<|>#%@`?\\",
            *("&a ", "*a", "<<: *a", "\n  ", "- ", "? ", "!!int ", "!!float ", "!!timestamp "),
            *("!!binary ", "!!str ", "!!map ", "!!seq ", "!!set ", "2020-13-45", "0x", "1" * 5000),
        ]
    )
).map("".join)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_YAMLISH)
def test_yaml_abuse_raises_only_definition_errors(text: str) -> None:
    try:
        document = parse_source(text)
    except DefinitionSourceError:
        return
    validate(document)  # reports, never raises


# --- JSON Schemas -------------------------------------------------------------------------------


def _deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def test_a_deep_data_schema_is_an_error_with_its_path_not_a_recursion_error() -> None:
    document = _mini()
    document["data_schema"] = _deep_schema(5000)
    problems = [p for p in validate(document).errors if p.code == "schema-too-deep"]
    assert len(problems) == 1
    assert problems[0].path.startswith("data_schema.properties.a.properties.a")
    assert str(limits.SCHEMA_MAX_DEPTH) in problems[0].message


def test_a_deep_payload_schema_is_an_error() -> None:
    document = _mini(payload_schema=_deep_schema(100))
    assert any(code == "schema-too-deep" for _, code in _codes(document))


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        (
            {"type": "object", "properties": {"s": {"type": "string", "pattern": r"(a)\1"}}},
            "transitions[0].payload_schema.properties.s.pattern",
        ),
        (
            {"type": "object", "patternProperties": {"(?=x)": {"type": "string"}}},
            "transitions[0].payload_schema.patternProperties",
        ),
    ],
)
def test_a_pattern_re2_cannot_run_is_refused_at_validation(
    schema: dict[str, Any], path: str
) -> None:
    report = validate(_mini(payload_schema=schema))
    [problem] = [p for p in report.errors if p.code == "pattern-not-linear"]
    assert problem.path == path
    assert "RE2" in problem.message
    assert "lookaround" in problem.hint


def test_unevaluated_properties_beside_pattern_properties_is_refused() -> None:
    schema = {
        "type": "object",
        "patternProperties": {"^x_": {"type": "string"}},
        "unevaluatedProperties": False,
    }
    assert (
        "transitions[0].payload_schema",
        "schema-keywords-unsupported",
    ) in _codes(_mini(payload_schema=schema))


def test_patterns_run_on_re2() -> None:
    """RE2's ``$`` matches only at the very end; Python's re also before a final newline.
    Both paths of SchemaCheck (fastjsonschema first, jsonschema after) give RE2's answer."""
    check = SchemaCheck({"type": "string", "pattern": "^a$"})
    assert check.errors("a") == []
    assert check.errors("a\n")
    keys = SchemaCheck(
        {
            "type": "object",
            "patternProperties": {"^k$": {"type": "integer"}},
            "additionalProperties": False,
        }
    )
    assert keys.errors({"k": 1}) == []
    assert keys.errors({"k\n": 1})  # not one of the patterns under RE2: an extra property


def test_a_catastrophic_pattern_answers_at_once() -> None:
    """``^(a+)+$`` doubles Python's time per character (17.5 s for one fire in issue 12); on
    RE2 a text far longer than that is answered in linear time."""
    check = SchemaCheck({"type": "string", "pattern": "^(a+)+$"})
    assert check.errors("a" * 100_000 + "!")
    assert check.errors("a" * 100_000) == []


# --- CEL ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("data.n > 1", (0, 0)),
        ("data.xs.all(x, x > 0)", (1, 1)),
        ("data.xs.all(x, data.xs.exists(y, x == y))", (2, 2)),
        ("data.xs.all(x, data.xs.all(y, data.xs.all(z, true)))", (3, 3)),
        ("data.xs.map(x, x * 2)", (1, 2)),
        ("data.xs.filter(x, x > 0).map(x, x * 2)", (2, 2)),  # one after the other: adds
        ("data.xs.map(x, data.xs.exists(y, y == x))", (2, 2)),
        ("data.xs.all(x, data.xs.map(y, y).size() > 0)", (2, 3)),  # map inside: n x n²
        ("data.xs.all(x, x in data.xs)", (1, 2)),
        ("data.xs.all(x, ')' != '' && data.xs.all(y, data.xs.all(z, true)))", (3, 3)),
        ("data.xs.all(x, // ) in a comment\n data.xs.all(y, data.xs.all(z, true)))", (3, 3)),
        (r"r'\' + string(data.xs.all(x, data.xs.all(y, data.xs.all(z, true))))", (3, 3)),
        ("'.all(' + 'x'", (0, 0)),  # in a string: not a comprehension
    ],
)
def test_the_cost_degree_of_an_expression(source: str, expected: tuple[int, int]) -> None:
    assert degree(source) == expected


def test_seven_nested_comprehensions_are_refused_at_validation() -> None:
    """Issue 12: seven nested .all() took 11.9 s per fire."""
    guard = "data.xs" + "".join(f".all(x{i}, data.xs" for i in range(7)) + ".size() > 0"
    guard += ")" * 7
    report = validate(_mini(guard=guard))
    [problem] = [p for p in report.errors if p.path == "transitions[0].guard"]
    assert problem.code == "expression-too-costly"
    assert "second" in problem.message


def test_too_many_comprehensions_are_refused() -> None:
    guard = " && ".join(["data.xs.exists(x, x > 0)"] * (limits.EXPRESSION_MAX_COMPREHENSIONS + 1))
    with pytest.raises(ExpressionTooCostly, match="comprehensions"):
        Expression(guard, "transitions[0].guard")


def test_a_long_expression_is_refused_before_the_compiler_can_overflow_its_stack() -> None:
    """A chain of 30,000 ``+`` crashes the CEL compiler's process (a stack overflow in Rust):
    the length limit refuses it first."""
    with pytest.raises(ExpressionTooCostly) as refused:
        check_budget("+".join(["1"] * 30_000), "transitions[0].guard")
    assert refused.value.fields == {"path": "transitions[0].guard", "limit": 4096}
    longest = "+".join(["1"] * (limits.EXPRESSION_MAX_CHARS // 2))
    assert Expression(longest, "x").evaluate({}) == limits.EXPRESSION_MAX_CHARS // 2


def test_a_string_parameter_default_is_bounded_like_case_data() -> None:
    document = _mini()
    document["parameters"] = {
        "note": {"type": "string", "default": "x" * (limits.VALUE_MAX_CHARS + 1)}
    }
    assert ("parameters.note.default", "parameter-default-too-long") in _codes(document)


# --- values at run time -------------------------------------------------------------------------


def _compiled(**transition: Any) -> Any:
    return compile_workflow(load_definition(_mini(**transition)))


def _fire(compiled: Any, payload: Any, data: Any = None) -> Any:
    return compiled.step(
        state="open",
        data=data or {},
        trigger="finish",
        payload=payload,
        params={},
        now=NOW,
        actor=Actor("t", frozenset({"admin"})),
    )


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("payload", "limit"),
    [
        ({"xs": list(range(limits.VALUE_MAX_ITEMS + 1))}, "items"),
        ({"xs": _nested(limits.VALUE_MAX_DEPTH)}, "depth"),
        ({"xs": [[0] * 200] * 60}, "values"),
        ({"xs": "x" * (limits.VALUE_MAX_CHARS + 1)}, "chars"),
    ],
)
def test_a_payload_beyond_the_limits_is_refused_before_any_guard(
    payload: dict[str, Any], limit: str
) -> None:
    compiled = _compiled(
        guard="payload.xs.all(x, true)",
        payload_schema={"type": "object", "properties": {"xs": {}}},
    )
    with pytest.raises(PayloadInvalid) as refused:
        _fire(compiled, payload)
    assert refused.value.fields["limit"] == limit
    assert "Limits" in (refused.value.hint or "")


def test_a_payload_within_the_limits_is_taken() -> None:
    compiled = _compiled(
        guard="payload.xs.all(x, payload.xs.exists(y, y == x))",
        payload_schema={"type": "object", "properties": {"xs": {}}},
    )
    assert _fire(compiled, {"xs": list(range(limits.VALUE_MAX_ITEMS))}).to_state == "done"


def test_actions_cannot_grow_case_data_beyond_the_limits() -> None:
    compiled = _compiled(actions=[{"set": {"xs": "[data.xs, data.xs, data.xs, data.xs]"}}])
    with pytest.raises(DataInvalid) as refused:
        _fire(compiled, {}, data={"xs": _nested(limits.VALUE_MAX_DEPTH - 1)})
    assert refused.value.fields["limit"] == "depth"
