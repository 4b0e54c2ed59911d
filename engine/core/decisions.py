"""Decision tables: a value chosen by a table of conditions, where a definition would
otherwise nest CEL ternaries (the arrival target by priority and distance).

A definition's ``decisions`` section names tables. A table reads a few inputs (CEL, usually
one data field each: ``data.priority``) and its rules say, for conditions on those inputs,
which output applies. Expressions read the chosen value as ``decisions.<name>``, so a guard,
an action, a timer or an SLA target uses a table as it uses a parameter, and a process owner
reads the rules as a table, in the docs and under the diagram.

A table is decided only when an expression reads it, in that expression's context (``data``,
``params``, ``now``, ...). Its inputs cannot read ``payload`` or another table: a table
belongs to the whole definition, not to one trigger, and cannot chase itself in a loop.

Hit policies, as in DMN: ``unique`` (the default) wants exactly one rule to match; ``first``
takes the first rule that matches, in the written order. When none matches, the table's
``default`` applies, or the evaluation fails with a :class:`DecisionError` naming the inputs.
Where the validator can enumerate an input's values (an enum or boolean data field, a number),
it proves that neither can happen (:mod:`engine.core.decision_checks`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.durations import parse_duration
from engine.core.expressions import Expression, compiled, fields_read
from engine.core.labels import Label
from engine.errors import DecisionError, DurationInvalid, written

HIT_POLICIES = ("unique", "first")
OUTPUT_TYPES = ("duration", "number", "integer", "string", "boolean")
ANY = "any"  # a condition that matches every value, unset included
RANGE_KEYS = ("min", "max", "above", "below")
VARIABLE = "decisions"  # what expressions read a table's value as: decisions.<name>
# An input that is one field of a map: an unset field reads as null (so a rule can say
# "distance not recorded") instead of failing as CEL would.
_PLAIN_FIELD = re.compile(r"^\s*(data|params|counters|case)\s*\.\s*([A-Za-z_]\w*)\s*$")


def plain_field(source: str) -> tuple[str, str] | None:
    """``('data', 'priority')`` for the input ``data.priority``; None for any other CEL."""
    match = _PLAIN_FIELD.match(source)
    return (match[1], match[2]) if match else None


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same_value(a: Any, b: Any) -> bool:
    """Equality as a table means it: ``true`` is not ``1`` (Python says it is), ``2`` is
    ``2.0`` (CEL hands numbers as int or double), text is text."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


@dataclass(frozen=True)
class Condition:
    """What one rule asks of one input: any value (nothing set here), one of ``values``
    (``None`` among them: the input is not set), or a number within the bounds."""

    values: tuple[Any, ...] | None = None
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None or self.high is not None

    @property
    def is_any(self) -> bool:
        return self.values is None and not self.is_range

    def matches(self, value: Any) -> bool:
        if self.values is not None:
            return any(same_value(value, v) for v in self.values)
        if not self.is_range:
            return True
        if not is_number(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )

    def describe(self) -> str:
        """As a reader of the table says it: ``any``, ``emergency``, ``not set``,
        ``same_city or other_city``, ``at least 50 and below 100``."""
        if self.values is not None:
            return " or ".join(describe_value(v) for v in self.values)
        if not self.is_range:
            return ANY
        parts = []
        if self.low is not None:
            parts.append(f"{'above' if self.low_open else 'at least'} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'below' if self.high_open else 'at most'} {_number(self.high)}")
        return " and ".join(parts)


def describe_value(value: Any) -> str:
    """An input's value in a message: text as it is written in the table, null as
    ``not set``, anything else as JSON."""
    if value is None:
        return "not set"
    return value if isinstance(value, str) else written(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class Outcome:
    """What a rule gives: a value written in the table, or a parameter's value."""

    literal: Any = None
    param: str | None = None

    def describe(self) -> str:
        return f"params.{self.param}" if self.param is not None else describe_value(self.literal)


@dataclass(frozen=True)
class Rule:
    path: str
    when: Mapping[str, Condition]  # the inputs it names; any other input: any value
    then: Outcome

    def matches(self, inputs: Mapping[str, Any]) -> bool:
        return all(condition.matches(inputs[name]) for name, condition in self.when.items())


@dataclass(frozen=True)
class DecisionTable:
    name: str
    inputs: Mapping[str, str]  # input name -> CEL
    output: str  # one of OUTPUT_TYPES
    rules: tuple[Rule, ...]
    hit_policy: str = "unique"
    default: Outcome | None = None
    title: Label | None = None
    description: str = ""
    requirements: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"{VARIABLE}.{self.name}"

    def read_inputs(self, context: Mapping[str, Any]) -> dict[str, Any]:
        values = {}
        for name, source in self.inputs.items():
            plain = plain_field(source)
            if plain is not None:
                root = context.get(plain[0])
                values[name] = root.get(plain[1]) if isinstance(root, Mapping) else None
            else:
                values[name] = compiled(source, f"{self.path}.inputs.{name}").evaluate(context)
        return values

    def decide(self, context: Mapping[str, Any]) -> Any:
        """The table's value in ``context``, as CEL reads it (a duration is a timedelta)."""
        inputs = self.read_inputs(context)
        matched = [rule for rule in self.rules if rule.matches(inputs)]
        if len(matched) > 1 and self.hit_policy == "unique":
            raise DecisionError(
                f"Decision table {self.name!r}: {_and(r.path for r in matched)} all match "
                f"{_describe_inputs(inputs)}, and hit policy unique allows one.",
                hint="Make the rules exclusive, or set hit_policy: first to let the earlier "
                "rule win.",
                path=self.path,
                inputs=inputs,
            )
        outcome = matched[0].then if matched else self.default
        if outcome is None:
            raise DecisionError(
                f"Decision table {self.name!r} has no rule for {_describe_inputs(inputs)}.",
                hint="Add a rule for these inputs, or a default; until then the case cannot "
                "take this step.",
                path=self.path,
                inputs=inputs,
            )
        return self.output_value(outcome, context.get("params") or {})

    def output_value(self, outcome: Outcome, params: Mapping[str, Any]) -> Any:
        """``outcome`` as a value of the output type: a duration as a timedelta (days are 24
        hours, as CEL counts them), a number as a double, since CEL does not mix int and
        double."""
        if outcome.param is not None:
            value, where = params.get(outcome.param), f"parameter {outcome.param!r}"
        else:
            value, where = outcome.literal, "the value"
        converted = convert_output(self.output, value)
        if converted is None:
            raise DecisionError(
                f"Decision table {self.name!r}: {where} is {written(value)}, not a {self.output}.",
                hint=f"Give a {self.output} (docs/definitions.md, Decision tables).",
                path=self.path,
            )
        return converted


def convert_output(output: str, value: Any) -> Any:
    """``value`` as CEL reads a table's ``output`` type, or None when it is not one."""
    if output == "duration":
        try:
            return parse_duration(value).timedelta
        except DurationInvalid:
            return None
    if output == "number":
        return float(value) if is_number(value) else None
    if output == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if output == "string":
        return value if isinstance(value, str) else None
    return value if isinstance(value, bool) else None


def _describe_inputs(inputs: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} = {describe_value(value)}" for name, value in inputs.items())


def _and(items: Any) -> str:
    listed = list(items)
    return ", ".join(listed[:-1]) + f" and {listed[-1]}" if len(listed) > 1 else "".join(listed)


class _Decided(Mapping[str, Any]):
    """The tables' values in one context, each decided the first time an expression reads
    it (an expression is handed only the tables it names)."""

    def __init__(self, tables: Mapping[str, DecisionTable], context: Mapping[str, Any]) -> None:
        self._tables = tables
        self._context = context
        self._decided: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._decided:
            table = self._tables[name]
            # Inputs see the context without the tables: a table cannot read itself.
            inputs = {k: v for k, v in self._context.items() if k != VARIABLE}
            self._decided[name] = table.decide(inputs)
        return self._decided[name]

    def __contains__(self, name: object) -> bool:  # never decides a table to answer
        return name in self._tables

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)


@dataclass(frozen=True)
class Decisions:
    """A definition's decision tables, by name."""

    tables: Mapping[str, DecisionTable] = field(default_factory=dict)
    # What an expression reads through the tables, by its source: the tables never change, and
    # every fire asks it of each SLA target written as an expression (sla_clocks._untouched).
    _reads: dict[tuple[str, str], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def values_in(self, context: Mapping[str, Any]) -> Mapping[str, Any]:
        return _Decided(self.tables, context)

    def _memo(self, kind: str, expression: Expression, compute: Any) -> Any:
        key = (kind, expression.source)
        if key not in self._reads:
            self._reads[key] = compute(expression)
        return self._reads[key]

    def _read_by(self, expression: Expression) -> list[Expression]:
        named = fields_read(expression.source, VARIABLE)
        tables = [
            t
            for name, t in self.tables.items()
            if VARIABLE in expression.variables and (named is None or name in named)
        ]
        return [
            compiled(source, f"{t.path}.inputs.{name}")
            for t in tables
            for name, source in t.inputs.items()
        ]

    def variables_read(self, expression: Expression) -> frozenset[str]:
        """The variables ``expression`` reads, through the tables it reads too."""
        found: frozenset[str] = self._memo("variables", expression, self._variables_read)
        return found

    def data_fields_read(self, expression: Expression) -> frozenset[str] | None:
        """The ``data`` fields ``expression`` reads, through the tables it reads too (None:
        some read names no field)."""
        fields: frozenset[str] | None = self._memo("data", expression, self._data_fields_read)
        return fields

    def _variables_read(self, expression: Expression) -> frozenset[str]:
        found = set(expression.variables)
        for inp in self._read_by(expression):
            found |= inp.variables
        return frozenset(found)

    def _data_fields_read(self, expression: Expression) -> frozenset[str] | None:
        fields = expression.data_fields
        for inp in self._read_by(expression):
            if fields is None or inp.data_fields is None:
                return None
            fields = fields | inp.data_fields
        return fields


# --- building from a validated document --------------------------------------------------------


def parse_condition(raw: Any) -> Condition:
    if raw == ANY:
        return Condition()
    if isinstance(raw, list):
        return Condition(values=tuple(raw))
    if isinstance(raw, Mapping):
        return Condition(
            low=raw.get("min", raw.get("above")),
            low_open="above" in raw,
            high=raw.get("max", raw.get("below")),
            high_open="below" in raw,
        )
    return Condition(values=(raw,))


def parse_outcome(raw: Any) -> Outcome:
    if isinstance(raw, Mapping):
        return Outcome(param=str(raw["param"]))
    return Outcome(literal=raw)


def build_decisions(raw: Mapping[str, Any] | None) -> Decisions:
    """The tables of a document that passed validation."""
    tables = {}
    for name, spec in (raw or {}).items():
        path = f"{VARIABLE}.{name}"
        tables[name] = DecisionTable(
            name=name,
            inputs=dict(spec["inputs"]),
            output=spec["output"],
            rules=tuple(
                Rule(
                    path=f"{path}.rules[{i}]",
                    when={k: parse_condition(v) for k, v in (rule.get("when") or {}).items()},
                    then=parse_outcome(rule["then"]),
                )
                for i, rule in enumerate(spec["rules"])
            ),
            hit_policy=spec.get("hit_policy", "unique"),
            default=parse_outcome(spec["default"]) if "default" in spec else None,
            title=Label(**spec["title"]) if spec.get("title") else None,
            description=spec.get("description", ""),
            requirements=tuple(spec.get("requirements", ())),
        )
    return Decisions(tables)
