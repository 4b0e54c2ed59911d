"""Validation of decision tables: each rule well formed, and the rules exclusive and complete.

Exclusive (hit policy ``unique``): no two rules match the same inputs. Complete (no
``default``): every combination of inputs the case can hold has a rule. Both are decided on a
partition of each input's values into *atoms*, pieces no condition of the table splits: each
value of an enum or boolean data field (and "not set" when the field is optional); for a
number, every bound a rule writes and the open stretches between them, cut to the field's
``minimum`` and ``maximum`` (stretches holding no whole number are dropped for an integer).
A condition matches an atom entirely or not at all, so one sample value per atom decides
exactly (found by value and by numeric order, as :meth:`Condition.matches` decides at run
time; tests/unit/test_decisions.py holds the verdicts to brute force). Rules and atoms are
then bit sets, so an overlap or a gap is a few ANDs.

An input the validator cannot enumerate (free text, a computed expression) gets an atom per
value the rules name and one for "any other value". Overlaps are found there too (two rules
both matching "any other value" do overlap), but a gap that needs such a value is not
reported: the validator does not know the input can take it.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.core.decisions import (
    ANY,
    OUTPUT_TYPES,
    RANGE_KEYS,
    VARIABLE,
    Condition,
    convert_output,
    describe_value,
    is_number,
    parse_condition,
    plain_field,
)
from engine.core.durations import parse_duration
from engine.core.expressions import Expression, field_references
from engine.core.limits import DECISION_COMBINATIONS_MAX
from engine.errors import DurationInvalid, ProblemList, written

GAPS_SHOWN = 3  # combinations a gap message lists
# Which parameter types give a value of each output type.
_PARAM_FOR_OUTPUT = {
    "duration": {"duration"},
    "number": {"number", "integer"},
    "integer": {"integer"},
    "string": {"string"},
    "boolean": {"boolean"},
}

ExpressionCheck = Callable[[str, str, Mapping[str, Any] | None], Expression | None]
Suggest = Callable[[str, Iterable[str]], str]


class _Other:
    """A value no rule names: only ``any`` matches it."""

    def __repr__(self) -> str:
        return "OTHER"


_OTHER = _Other()


@dataclass(frozen=True)
class _Atom:
    sample: Any  # a value standing for the whole atom
    text: str  # what follows the input's name in a message: "= normal", "not set"
    known: bool = True  # the input can take it (else it is only a place rules may overlap)


@dataclass(frozen=True)
class _Domain:
    """What the validator knows of the values an input takes."""

    values: tuple[Any, ...] | None = None  # an enum (or boolean): exactly these
    numbers: bool = False  # a number, within the bounds below
    integer: bool = False
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    nullable: bool | None = None  # None: not known


_OPEN = _Domain()


def input_domain(source: str, data_schema: Mapping[str, Any], params: Mapping[str, Any]) -> _Domain:
    """The values input ``source`` takes, as far as the data schema or parameters say."""
    plain = plain_field(source)
    if plain is None:
        return _OPEN
    root, name = plain
    if root == "params":
        spec = params.get(name)
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "boolean":
            return _Domain(values=(True, False), nullable=False)
        if kind in ("integer", "number"):
            return _Domain(numbers=True, integer=kind == "integer", nullable=False)
        return _Domain(nullable=False)
    if root != "data":
        return _OPEN
    properties = data_schema.get("properties")
    schema = properties.get(name) if isinstance(properties, dict) else None
    if not isinstance(schema, dict):
        return _OPEN
    required = data_schema.get("required")
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    nullable = not (isinstance(required, list) and name in required) or "null" in types
    if isinstance(schema.get("enum"), list):
        values = tuple(schema["enum"])
        return _Domain(values=tuple(v for v in values if v is not None), nullable=nullable)
    if "const" in schema:
        return _Domain(values=(schema["const"],), nullable=nullable)
    if "boolean" in types and len([t for t in types if t != "null"]) == 1:
        return _Domain(values=(True, False), nullable=nullable)
    if {"integer", "number"} & set(types) and set(types) <= {"integer", "number", "null"}:
        low, low_open = _bound(schema, "minimum", "exclusiveMinimum")
        high, high_open = _bound(schema, "maximum", "exclusiveMaximum")
        return _Domain(
            numbers=True,
            integer="number" not in types,
            low=low,
            low_open=low_open,
            high=high,
            high_open=high_open,
            nullable=nullable,
        )
    return _Domain(nullable=nullable)


def _bound(schema: Mapping[str, Any], closed: str, open_: str) -> tuple[float | None, bool]:
    if is_number(schema.get(open_)):
        return float(schema[open_]), True
    if is_number(schema.get(closed)):
        return float(schema[closed]), False
    return None, False


# --- atoms --------------------------------------------------------------------------------------


def _atoms(domain: _Domain, conditions: Sequence[Condition]) -> list[_Atom]:
    named = [v for c in conditions if c.values is not None for v in c.values]
    numbers = [float(v) for v in named if is_number(v)]
    bounds = [b for c in conditions for b in (c.low, c.high) if b is not None]
    if domain.values is not None:
        atoms = [_Atom(v, f"= {describe_value(v)}") for v in domain.values]
    elif domain.numbers:
        atoms = _number_atoms(domain, numbers + bounds, points_known=True, stretches_known=True)
    else:
        # Unknown values: the ones rules name can happen; what lies between the bounds
        # rules write, and any other value, are only places where rules may overlap.
        if bounds:
            atoms = _number_atoms(
                _Domain(numbers=True), numbers + bounds, points_known=True, stretches_known=False
            )
        else:
            atoms = [_Atom(v, f"= {_num(v)}") for v in dict.fromkeys(numbers)]
        texts = [v for v in dict.fromkeys(named) if v is not None and not is_number(v)]
        atoms += [_Atom(v, f"= {describe_value(v)}") for v in texts]
        atoms.append(_Atom(_OTHER, "= a value no rule names", known=False))
    if domain.nullable is not False:
        atoms.append(_Atom(None, "not set", known=domain.nullable is True))
    return atoms


def _number_atoms(
    domain: _Domain, points: Iterable[float], *, points_known: bool, stretches_known: bool
) -> list[_Atom]:
    """Each point a rule names and each open stretch between them, within the domain."""

    def inside(x: float) -> bool:
        low_ok = domain.low is None or x > domain.low or (x == domain.low and not domain.low_open)
        high_ok = (
            domain.high is None or x < domain.high or (x == domain.high and not domain.high_open)
        )
        return low_ok and high_ok and (not domain.integer or float(x).is_integer())

    cuts = {p for p in points if inside(p)}
    for bound, is_open in ((domain.low, domain.low_open), (domain.high, domain.high_open)):
        if bound is not None and not is_open and inside(bound):
            cuts.add(bound)
    ordered = sorted(cuts)
    atoms: list[_Atom] = []
    edges: list[float | None] = [domain.low, *ordered, domain.high]
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        sample = _sample_between(a, b, domain.integer)
        if sample is not None:
            atoms.append(_Atom(sample, _stretch_text(a, b), stretches_known))
        if i < len(ordered):
            atoms.append(_Atom(ordered[i], f"= {_num(ordered[i])}", points_known))
    return atoms


def _sample_between(a: float | None, b: float | None, integer: bool) -> float | None:
    """A number strictly between ``a`` and ``b`` (None: unbounded), or None if there is none
    (a whole number, for an integer)."""
    if a is not None and b is not None and a >= b:
        return None
    if integer:
        first = math.floor(a) + 1 if a is not None else None
        last = math.ceil(b) - 1 if b is not None else None
        if first is None:
            return float(last) if last is not None else 0.0
        return float(first) if last is None or first <= last else None
    if a is None:
        return b - 1 if b is not None else 0.0
    return a + 1 if b is None else (a + b) / 2


def _stretch_text(a: float | None, b: float | None) -> str:
    if a is None and b is None:
        return "= any number"
    if a is None:
        return f"below {_num(b)}"
    if b is None:
        return f"above {_num(a)}"
    return f"above {_num(a)} and below {_num(b)}"


def _num(value: float | None) -> str:
    assert value is not None
    return str(int(value)) if float(value).is_integer() else str(value)


# --- the checker --------------------------------------------------------------------------------


class DecisionChecker:
    """Checks the ``decisions`` section; reports to ``out`` with element paths."""

    def __init__(
        self,
        *,
        data_schema: Mapping[str, Any],
        params: Mapping[str, Any],
        out: ProblemList,
        check_expression: ExpressionCheck,
        suggest: Suggest,
    ) -> None:
        self.data_schema = data_schema
        self.params = params
        self.out = out
        self.check_expression = check_expression
        self.suggest = suggest

    def run(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            return
        for name, table in raw.items():
            if isinstance(table, dict):
                self._table(str(name), table)

    def _table(self, name: str, table: Mapping[str, Any]) -> None:
        base = f"{VARIABLE}.{name}"
        errors_before = len(self.out.errors)
        inputs = _mapping(table.get("inputs"))
        domains: dict[str, _Domain] = {}
        for column, source in inputs.items():
            if isinstance(source, str):
                self._input(source, f"{base}.inputs.{column}")
                domains[column] = input_domain(source, self.data_schema, self.params)
        output = table.get("output")
        raw_rules = table.get("rules")
        raw_rules = raw_rules if isinstance(raw_rules, list) else []
        rules = [r for r in raw_rules if isinstance(r, dict)]
        if output in OUTPUT_TYPES:
            for i, rule in enumerate(rules):
                if "then" in rule:
                    self._output(rule["then"], f"{base}.rules[{i}].then", output)
            if "default" in table:
                self._output(table["default"], f"{base}.default", output)
        conditions: list[dict[str, Condition]] = []
        for i, rule in enumerate(rules):
            when = _mapping(rule.get("when"))
            conditions.append({})
            for column, cell in when.items():
                path = f"{base}.rules[{i}].when.{column}"
                if column not in domains:
                    self.out.error(
                        path,
                        "decision-unknown-input",
                        f"Rule names input {column!r}, which the table does not have.",
                        self.suggest(str(column), domains)
                        or f"Inputs of this table: {', '.join(domains) or 'none'}.",
                    )
                elif self._cell(cell, path, column, domains[column]):
                    conditions[-1][column] = parse_condition(cell)
        malformed = (
            len(self.out.errors) > errors_before
            or not raw_rules
            or len(conditions) != len(raw_rules)
            or not domains
            or len(domains) != len(inputs)
        )
        if malformed:  # its coverage would only repeat the errors reported
            return
        self._coverage(base, table, domains, conditions)

    def _input(self, source: str, path: str) -> None:
        payload: dict[str, Any] = {
            r.field: {} for r in field_references(source) if r.root == "payload"
        }
        expr = self.check_expression(source, path, payload)  # payload: reported just below
        if expr is None:
            return
        if "payload" in expr.variables:
            self.out.error(
                path,
                "decision-reads-payload",
                "A decision table's input reads payload; a table belongs to the whole "
                "definition, and no trigger's payload is there when a timer or SLA reads it.",
                "Copy the field into the case data with a set action, and read data.<field>.",
            )
        if VARIABLE in expr.variables:
            self.out.error(
                path,
                "decision-reads-decision",
                "A decision table's input reads another table (decisions.*).",
                "Read the inputs of that table here instead, or merge the two tables.",
            )

    def _output(self, raw: Any, path: str, output: str) -> None:
        if isinstance(raw, dict):
            name = raw.get("param")
            param = self.params.get(name) if isinstance(name, str) else None
            if not isinstance(name, str):
                return  # the structural pass reports it
            if not isinstance(param, dict):
                self.out.error(
                    f"{path}.param",
                    "undeclared-parameter",
                    f"Parameter {name!r} is not declared.",
                    self.suggest(name, self.params) or f"Declare {name!r} under parameters.",
                )
            elif param.get("type") not in _PARAM_FOR_OUTPUT[output]:
                self.out.error(
                    f"{path}.param",
                    "decision-output-type",
                    f"Parameter {name!r} has type {param.get('type')!r}; this table gives a "
                    f"{output}.",
                    f"Name a {output} parameter, or change the table's output.",
                )
            return
        if output == "duration" and isinstance(raw, str):
            try:
                parse_duration(raw)
            except DurationInvalid as exc:
                self.out.error(path, "bad-duration", exc.message, exc.hint or "")
            return
        if convert_output(output, raw) is None:
            self.out.error(
                path,
                "decision-output-type",
                f"{written(raw)} is not a {output}, the type of this table's output.",
                _OUTPUT_HINTS[output],
            )

    def _cell(self, cell: Any, path: str, column: str, domain: _Domain) -> bool:
        """Whether ``cell`` is a condition the input can meet; reports why not."""
        if cell == ANY:
            return True
        if isinstance(cell, dict):
            return self._range(cell, path, column, domain)
        values = cell if isinstance(cell, list) else [cell]
        if not values or any(isinstance(v, list | dict) for v in values):
            return False  # the structural pass reports it
        good = True
        for value in values:
            if value is None:
                if domain.nullable is False:
                    self.out.error(
                        path,
                        "decision-unknown-value",
                        f"Input {column!r} is always set (a required field or a parameter), so "
                        "null (not set) never matches.",
                        "Remove null from this condition.",
                    )
                    good = False
            elif domain.values is not None and not any(_equal(value, v) for v in domain.values):
                shown = ", ".join(describe_value(v) for v in domain.values)
                close = self.suggest(str(value), [str(v) for v in domain.values])
                self.out.error(
                    path,
                    "decision-unknown-value",
                    f"{written(value)} is not a value input {column!r} takes ({shown}).",
                    close or "Use one of the values of the field's enum.",
                )
                good = False
            elif domain.numbers and not is_number(value):
                self.out.error(
                    path,
                    "decision-value-type",
                    f"{written(value)} is not a number; input {column!r} is one.",
                    "Write a number, or a range such as {min: 50, below: 100}.",
                )
                good = False
        return good

    def _range(self, cell: Mapping[str, Any], path: str, column: str, domain: _Domain) -> bool:
        if domain.values is not None and not all(is_number(v) for v in domain.values):
            self.out.error(
                path,
                "decision-value-type",
                f"A range on input {column!r}, whose values are not numbers.",
                "Name the values instead: a value, or a list of them.",
            )
            return False
        if ("min" in cell and "above" in cell) or ("max" in cell and "below" in cell):
            self.out.error(
                path,
                "decision-bad-range",
                "A range has one lower bound (min or above) and one upper bound (max or below).",
                "Keep min (inclusive) or above (exclusive), max (inclusive) or below (exclusive).",
            )
            return False
        if not cell or set(cell) - set(RANGE_KEYS) or not all(map(is_number, cell.values())):
            return False  # the structural pass reports it
        condition = parse_condition(cell)
        if (
            condition.low is not None
            and condition.high is not None
            and (
                condition.low > condition.high
                or (condition.low == condition.high and (condition.low_open or condition.high_open))
            )
        ):
            self.out.error(
                path,
                "decision-bad-range",
                f"The range {condition.describe()} holds no number.",
                "Check the bounds: min/above is the lower one, max/below the upper one.",
            )
            return False
        return True

    # coverage -----------------------------------------------------------------------------

    def _coverage(
        self,
        base: str,
        table: Mapping[str, Any],
        domains: Mapping[str, _Domain],
        conditions: Sequence[Mapping[str, Condition]],
    ) -> None:
        grid = _Grid(list(domains), domains, conditions)
        if table.get("hit_policy", "unique") == "unique":
            self._overlaps(base, grid)
        else:
            self._unreachable(base, grid)
        if "default" not in table:
            self._gaps(base, grid)

    def _overlaps(self, base: str, grid: _Grid) -> None:
        for j in range(len(grid.rules)):
            for i in range(j):
                shared = grid.shared(i, j)
                if shared is not None:
                    self.out.error(
                        f"{base}.rules[{j}]",
                        "decision-overlap",
                        f"rules[{j}] and rules[{i}] both match {grid.describe(shared)}; hit "
                        "policy unique wants exactly one rule to match.",
                        "Narrow one of the two rules, or set hit_policy: first to let the "
                        "earlier rule win.",
                    )
                    break  # one overlap per rule is enough to act on

    def _unreachable(self, base: str, grid: _Grid) -> None:
        budget = DECISION_COMBINATIONS_MAX
        for j in range(1, len(grid.rules)):
            mine = [grid.atoms_of(j, k) for k in range(len(grid.columns))]
            size = math.prod(len(m) for m in mine)
            if size > budget:
                continue  # advice only: not worth the time on a table this large
            budget -= size
            earlier = (1 << j) - 1
            if all(grid.rules_matching(combo) & earlier for combo in itertools.product(*mine)):
                self.out.warning(
                    f"{base}.rules[{j}]",
                    "decision-rule-unreachable",
                    f"rules[{j}] never applies: under hit policy first, earlier rules match "
                    "every input it matches.",
                    "Move it above the rules that hide it, or remove it.",
                )

    def _gaps(self, base: str, grid: _Grid) -> None:
        known = [[a for a, atom in enumerate(column) if atom.known] for column in grid.atoms]
        total = math.prod(len(k) for k in known)
        if total > DECISION_COMBINATIONS_MAX:
            self.out.warning(
                f"{base}.rules",
                "decision-not-checked",
                f"The inputs have {total:,} combinations; tables are checked for gaps up to "
                f"{DECISION_COMBINATIONS_MAX:,}.",
                "Add a default, or split the table.",
            )
            return
        missing = [combo for combo in itertools.product(*known) if not grid.rules_matching(combo)]
        if not missing:
            return
        shown = "; ".join(grid.describe(combo) for combo in missing[:GAPS_SHOWN])
        more = len(missing) - GAPS_SHOWN
        self.out.error(
            f"{base}.rules",
            "decision-gap",
            f"No rule matches {shown}"
            + (f" (and {more} more combination{'s' if more > 1 else ''})" if more > 0 else "")
            + ".",
            "Add rules for these inputs, or a default; a case with them could not take the "
            "step that reads the table.",
        )


class _Grid:
    """The rules against the atoms, as bit sets: which atoms of each input a rule matches,
    and which rules match each atom. Every question of coverage is then a few ANDs, so a
    table of 200 rules over 8 inputs is checked in about a second."""

    def __init__(
        self,
        columns: list[str],
        domains: Mapping[str, _Domain],
        conditions: Sequence[Mapping[str, Condition]],
    ) -> None:
        everything = Condition()
        self.columns = columns
        self.rules = [[rule.get(c, everything) for c in columns] for rule in conditions]
        self.atoms = [
            _atoms(domains[c], [row[k] for row in self.rules]) for k, c in enumerate(columns)
        ]
        # atoms_matched[r][k]: the atoms of input k rule r matches (bit a: atom a)
        indexes = [_AtomIndex(column) for column in self.atoms]
        self.atoms_matched = [
            [indexes[k].matched_by(condition) for k, condition in enumerate(row)]
            for row in self.rules
        ]
        # rules_at[k][a]: the rules that match atom a of input k (bit r: rule r)
        self.rules_at = [[0] * len(column) for column in self.atoms]
        for r, row in enumerate(self.atoms_matched):
            for k, bits in enumerate(row):
                for a in _bits(bits):
                    self.rules_at[k][a] |= 1 << r

    def atoms_of(self, rule: int, column: int) -> list[int]:
        return list(_bits(self.atoms_matched[rule][column]))

    def rules_matching(self, combo: Sequence[int]) -> int:
        """The rules that match one atom of each input (bit r: rule r)."""
        found = -1  # every bit set
        for k, a in enumerate(combo):
            found &= self.rules_at[k][a]
            if not found:
                break
        return found

    def shared(self, i: int, j: int) -> list[int] | None:
        """An input both rules match (an atom per input), or None."""
        example = []
        for k in range(len(self.columns)):
            both = self.atoms_matched[i][k] & self.atoms_matched[j][k]
            if not both:
                return None
            example.append((both & -both).bit_length() - 1)  # the lowest atom in common
        return example

    def describe(self, combo: Sequence[int]) -> str:
        return ", ".join(
            f"{c} {self.atoms[k][a].text}"
            for k, (c, a) in enumerate(zip(self.columns, combo, strict=True))
        )


def _bits(mask: int) -> Iterator[int]:
    """The positions of the bits set in ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class _AtomIndex:
    """One input's atoms, found by value and by numeric order: which atoms a condition
    matches, without trying each (a table of 200 ranges cuts a number into 800 atoms)."""

    def __init__(self, atoms: Sequence[_Atom]) -> None:
        self.size = len(atoms)
        self.by_value: dict[tuple[str, Any], int] = {}
        numbers = []
        for a, atom in enumerate(atoms):
            key = _value_key(atom.sample)
            if key is not None:
                self.by_value[key] = self.by_value.get(key, 0) | 1 << a
            if is_number(atom.sample):
                numbers.append((float(atom.sample), a))
        numbers.sort()
        self.samples = [n for n, _ in numbers]
        self.positions = [a for _, a in numbers]

    def matched_by(self, condition: Condition) -> int:
        """The atoms ``condition`` matches, as :meth:`Condition.matches` decides (bit a)."""
        if condition.values is not None:
            bits = 0
            for value in condition.values:
                key = _value_key(value)
                bits |= self.by_value.get(key, 0) if key is not None else 0
            return bits
        if not condition.is_range:
            return (1 << self.size) - 1
        first, last = 0, len(self.samples)
        if condition.low is not None:
            find = bisect.bisect_right if condition.low_open else bisect.bisect_left
            first = find(self.samples, condition.low)
        if condition.high is not None:
            find = bisect.bisect_left if condition.high_open else bisect.bisect_right
            last = find(self.samples, condition.high)
        return sum(1 << a for a in self.positions[first:last])


def _value_key(value: Any) -> tuple[str, Any] | None:
    """Equal keys for the values :func:`same_value` holds equal: true is not 1, 2 is 2.0."""
    if isinstance(value, bool):
        return ("boolean", value)
    if is_number(value):
        return ("number", float(value))
    if value is None or isinstance(value, str):
        return (type(value).__name__, value)
    return None  # a value no rule can name (the "other values" atom)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _equal(a: Any, b: Any) -> bool:
    return Condition(values=(b,)).matches(a)


_OUTPUT_HINTS = {
    "duration": "Write a duration such as '2h' or '30m', or {param: <a duration parameter>}.",
    "number": "Write a number, or {param: <a number parameter>}.",
    "integer": "Write a whole number, or {param: <an integer parameter>}.",
    "string": "Quote it as text, or name a string parameter ({param: ...}).",
    "boolean": "Write true or false, or {param: <a boolean parameter>}.",
}
