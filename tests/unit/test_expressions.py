"""CEL expressions: which fields they read, how they fail, and what they store in case data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import cel
import pytest

from engine.core import expressions
from engine.core.expressions import (
    Expression,
    FieldRef,
    compiled,
    field_references,
    fields_read,
    make_context,
    to_json_value,
)
from engine.errors import ExpressionError

NOW = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)


def _eval(source: str, data: dict[str, Any] | None = None, **params: Any) -> Any:
    context = make_context(data or {}, {"who": "eli"}, params, NOW)
    return Expression(source, "transitions[3].guard").evaluate(context)


# --- field references -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("data.priority == 'emergency'", {("data", "priority")}),
        ("data.x > 1 && payload.y == params.z", {("data", "x"), ("payload", "y"), ("params", "z")}),
        ("data . spaced > 1", {("data", "spaced")}),
        ("data['x'] > 1", {("data", "x")}),
        ('payload["note"] != ""', {("payload", "note")}),
        ("has(data.engineer)", {("data", "engineer")}),
        ("data.items.exists(i, i.ok)", {("data", "items")}),  # only the top-level field
        ("data.payload.x == 1", {("data", "payload")}),  # .payload is a field, not the root
        ("now > timestamp('2025-01-01T00:00:00Z')", set()),
    ],
)
def test_field_references_finds_the_top_level_fields_read(
    source: str, expected: set[tuple[str, str]]
) -> None:
    assert field_references(source) == {FieldRef(root, name) for root, name in expected}


@pytest.mark.parametrize(
    "source",
    [
        "data.note == 'data.x'",
        'data.note == "see payload.y"',
        "data.note == r'params.z'",
        "data.note == '''data.x\nmore'''",
        "data.note == 'it\\'s data.x'",
        "data.note == \"see data['x']\"",
    ],
)
def test_field_references_ignores_text_inside_string_literals(source: str) -> None:
    assert field_references(source) == {FieldRef("data", "note")}


def test_comprehension_variables_are_not_unknown_variables() -> None:
    expression = Expression(
        "data.parts.all(p, p.ok) && data.parts.map(q, q.n).exists(n, n > 1)", "p"
    )

    assert expression.unknown_variables() == set()
    assert expression.variables == {"data"}


def test_a_misspelled_root_is_an_unknown_variable() -> None:
    assert Expression("dta.x > 1 && data.y", "p").unknown_variables() == {"dta"}


# --- compile and evaluation errors ------------------------------------------------------------


def test_expression_that_does_not_compile_names_its_element() -> None:
    with pytest.raises(ExpressionError) as caught:
        Expression("data.x >", "transitions[4].guard")

    error = caught.value
    assert error.fields == {"path": "transitions[4].guard", "expression": "data.x >"}
    assert "transitions[4].guard" in error.message
    assert error.hint


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("data.missing > 1", {}),  # field not set
        ("data.n + 1.5 > 0", {"n": 1}),  # int + double: CEL does not coerce
        ("data.n / 0 > 1", {"n": 1}),  # division by zero
        ("data.s.size() > 1", {"s": 3}),  # no such overload
    ],
)
def test_evaluation_errors_become_expression_errors_with_the_element_path(
    source: str, data: dict[str, Any]
) -> None:
    with pytest.raises(ExpressionError) as caught:
        _eval(source, data)

    error = caught.value
    assert error.fields["path"] == "transitions[3].guard"
    assert error.fields["expression"] == source
    assert "transitions[3].guard" in error.message
    assert error.hint


def test_missing_field_error_suggests_has() -> None:
    with pytest.raises(ExpressionError) as caught:
        _eval("data.missing > 1")

    assert "'missing'" in caught.value.message
    assert "has(" in (caught.value.hint or "")


def test_expressions_see_data_payload_and_params() -> None:
    assert _eval("data.n < params.limit && payload.who == 'eli'", {"n": 1}, limit=2) is True


# --- now ------------------------------------------------------------------------------------


def test_now_is_a_timestamp_of_the_given_instant() -> None:
    assert _eval("now == timestamp('2025-09-30T02:00:00Z')") is True
    assert _eval("now + duration('90m')") == NOW + timedelta(minutes=90)
    assert _eval("now - timestamp(data.at)", {"at": "2025-09-29T02:00:00Z"}) == timedelta(days=1)
    assert _eval("now.getHours()") == 2  # UTC unless a zone is named


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ExpressionError):
        make_context({}, {}, {}, datetime(2025, 9, 30, 10, 0))


def test_context_copies_its_inputs() -> None:
    data = {"n": 1}
    context = make_context(data, {}, {}, NOW)
    context["data"]["n"] = 2

    assert data == {"n": 1}


# --- conversion to JSON values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NOW, "2025-09-30T02:00:00Z"),
        (datetime(2025, 9, 30, 10, 0, tzinfo=timezone(timedelta(hours=8))), "2025-09-30T02:00:00Z"),
        (datetime(2025, 9, 30, 2, 0, 0, 250000, tzinfo=UTC), "2025-09-30T02:00:00.250000Z"),
        (timedelta(hours=1, seconds=30), 3630),
        (timedelta(milliseconds=1500), 1.5),
        (None, None),
        (True, True),
        (7, 7),
        (2.5, 2.5),
        ("text", "text"),
        ([1, NOW, [timedelta(minutes=1)]], [1, "2025-09-30T02:00:00Z", [60]]),
        ({"at": NOW, 1: "x"}, {"at": "2025-09-30T02:00:00Z", "1": "x"}),
        ((1, 2), [1, 2]),
    ],
)
def test_to_json_value_converts_cel_results_to_plain_json(value: Any, expected: Any) -> None:
    assert to_json_value(value, "p") == expected


def test_cel_timestamp_and_duration_results_are_stored_as_iso_and_seconds() -> None:
    assert to_json_value(_eval("now + duration('2h')"), "p") == "2025-09-30T04:00:00Z"
    assert to_json_value(_eval("duration('1h30m')"), "p") == 5400


@pytest.mark.parametrize("source", ["b'raw'", "1.0 / 0.0", "0.0 / 0.0", "[1.0 / 0.0]"])
def test_results_json_cannot_hold_are_refused_with_the_element_path(source: str) -> None:
    value = _eval(source)

    with pytest.raises(ExpressionError) as caught:
        to_json_value(value, "transitions[2].actions[0].set.x")

    assert caught.value.fields["path"] == "transitions[2].actions[0].set.x"


# --- what an expression is handed, and compiling once -----------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("data.priority == 'emergency'", frozenset({"priority"})),
        ("has(data.x) && data['y'] > 1", frozenset({"x", "y"})),
        ("'data.z' == params.k", frozenset()),  # inside a string: no read
        ("size(data) > 1", None),  # the whole map
        ("data[params.k] == 1", None),  # a computed key names no field
        ("data.items.exists(i, i.ok)", frozenset({"items"})),
    ],
)
def test_the_data_fields_an_expression_reads(source: str, expected: frozenset[str] | None) -> None:
    assert fields_read(source, "data") == expected


@pytest.mark.parametrize(
    "source",
    [
        "data.a + 1",
        "has(data.missing)",
        "!has(data.missing) ? 'none' : data.missing",
        "data['b'] == 'x' && payload.who == 'eli'",
        "size(data) == 4",
        "data[params.key] == 1",
        "data.items.exists(i, i > 2) && params.n == 3",
        "now > timestamp('2025-01-01T00:00:00Z') && case.state == 'open'",
    ],
)
def test_handing_only_what_is_read_gives_what_the_whole_context_gives(source: str) -> None:
    """An expression is evaluated on the fields it reads only (CEL converts whatever it is
    handed); the value must be the one the whole context gives."""
    context = make_context(
        {"a": 1, "b": "x", "items": [1, 2, 3], "other": {"deep": list(range(50))}},
        {"who": "eli", "more": 1},
        {"key": "a", "n": 3, "unused": "2h"},
        NOW,
        case={"id": 7, "definition": "d", "state": "open"},
    )
    whole = cel.compile(source).execute(dict(context))
    assert Expression(source, "p").evaluate(context) == whole


def test_a_missing_field_fails_the_same_way_when_only_read_fields_are_handed() -> None:
    with pytest.raises(ExpressionError, match="reads 'missing', which is not set"):
        _eval("data.missing > 1", {"present": 1})


def test_an_expression_outside_a_machine_is_compiled_once_per_source_and_path() -> None:
    first = compiled("duration(params.x)", "slas[0].target.expr")
    assert compiled("duration(params.x)", "slas[0].target.expr") is first
    assert compiled("duration(params.x)", "slas[1].target.expr") is not first  # errors name it
    with pytest.raises(ExpressionError, match=r"slas\[0\]"):
        compiled("duration(", "slas[0].target.expr")


def test_the_compile_cache_is_bounded_and_keeps_the_recent_ones() -> None:
    """Expressions compiled outside a machine are kept in a bounded cache (a process serving
    many definitions must not grow without end): the oldest go first."""
    limit = expressions._COMPILED.maxsize
    first = compiled("data.n + 0", "bounded")
    for n in range(1, limit + 10):
        latest = compiled(f"data.n + {n}", "bounded")
    assert len(expressions._COMPILED) == limit
    assert compiled(f"data.n + {limit + 9}", "bounded") is latest
    assert compiled("data.n + 0", "bounded") is not first  # evicted, compiled again
