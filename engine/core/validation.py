"""Validation of workflow definitions: every problem at once, each with its element path.

Two passes. The structural pass checks the document against
``engine/core/schemas/definition.schema.json`` (unknown keys, wrong types, missing fields). The
semantic pass checks what a schema cannot: references between states, transitions, timers and
SLAs; reachability; stuck states; ambiguous transitions; CEL that does not compile or reads
undeclared fields; JSON Schemas; durations and cron schedules. Semantic checks run on the
parts that are structurally sound, so one bad transition does not hide problems elsewhere.

Errors stop a definition from being published; warnings are reported and allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from croniter import croniter

from engine.core.business_time import SIGNATURES, USAGE, Call, calls_in, literal_text
from engine.core.compact import expand
from engine.core.decision_checks import DecisionChecker
from engine.core.definition import (
    ANY_SOURCE,
    KNOWN_ROLES,
    CalendarValue,
    DurationValue,
    WorkflowDefinition,
    build_definition,
    format_path,
    parse_source,
)
from engine.core.durations import CalendarMismatch, Duration, calendar_problem, parse_duration
from engine.core.expressions import ROOT_VARIABLES, Expression, field_references, fields_read
from engine.core.limits import SCHEMA_MAX_DEPTH, VALUE_MAX_CHARS, nesting_depth
from engine.core.schemas import error_text
from engine.core.schemas.patterns import REGEX_FORMAT, pattern_problem, unmatchable_keywords
from engine.core.source_map import SourceMap, locate
from engine.core.timer_plans import WALL_CLOCK
from engine.errors import (
    DefinitionInvalid,
    DurationInvalid,
    ExpressionError,
    ExpressionTooCostly,
    Problem,
    ProblemList,
    Severity,
    written,
)

BUILTIN_CALENDARS = frozenset({"24x7", "cn-workdays"})
_DECISION_READ = re.compile(r"^\s*decisions\s*\.\s*([A-Za-z_]\w*)\s*$")
_PARAM_ARGUMENT = re.compile(r"^params\s*\.\s*([A-Za-z_]\w*)$")
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "duration": (str,),
    "calendar": (str,),
}


@cache
def definition_schema() -> dict[str, Any]:
    text = (
        resources.files("engine").joinpath("core/schemas/definition.schema.json").read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"Did you mean {close[0]!r}?" if close else ""


def _record_fields(schema: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """The fields of an object schema, and those of the records any of them holds or lists
    (``team: {manager, expert}``, ``[{part!: text}]``), which pages show by label too."""
    props = schema.get("properties")
    for name, spec in (props if isinstance(props, dict) else {}).items():
        yield name, spec
        if not isinstance(spec, dict):
            continue
        yield from _record_fields(spec)
        if isinstance(spec.get("items"), dict):
            yield from _record_fields(spec["items"])


@dataclass
class ValidationReport:
    problems: list[Problem]

    def __post_init__(self) -> None:
        # Errors first (they block publishing), then warnings; each kind in the order found.
        self.problems = sorted(self.problems, key=lambda p: p.severity is not Severity.ERROR)

    def located(self, source: SourceMap) -> ValidationReport:
        """The same problems, each with the line and column its element is written at, in the
        order they are written (errors still first)."""
        located = []
        for problem in self.problems:
            position = source.find(problem.path)
            located.append(
                problem
                if position is None
                else dataclasses.replace(problem, line=position.line, column=position.column)
            )
        located.sort(key=lambda p: (p.line is None, p.line or 0, p.column or 0))
        return ValidationReport(located)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity.value == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity.value == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


# --- structural pass ---------------------------------------------------------------------------


def _structural(document: Any, out: ProblemList) -> None:
    validator = jsonschema.Draft202012Validator(definition_schema())
    for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path))):
        _report_schema_error(error, out)


def _report_schema_error(error: jsonschema.ValidationError, out: ProblemList) -> None:
    path = format_path(error.absolute_path)
    # The schema object that holds the failing keyword: a mapping for every keyword read below
    # (the stubs also allow a boolean schema, and "unset" for an error built by hand).
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = schema.get("properties", {}).keys()
        extras = [k for k in error.instance if k not in allowed]
        for key in extras:
            key_path = f"{path}.{key}" if path else str(key)
            hint = (
                _suggest(str(key), allowed) or f"Allowed keys here: {', '.join(sorted(allowed))}."
            )
            out.error(key_path, "unknown-key", f"Unknown key {key!r}.", hint)
        return
    if error.validator == "required":
        out.error(path, "missing-key", error.message, "Add the missing key.")
        return
    if error.validator == "pattern" and schema.get("pattern", "").startswith("^[a-z]"):
        out.error(
            path,
            "bad-identifier",
            f"{error.instance!r} is not a valid name.",
            "Use lowercase letters, digits and underscores, starting with a letter (e.g. on_site).",
        )
        return
    if error.validator == "pattern" and schema.get("pattern", "").startswith("^R-"):
        out.error(
            path,
            "bad-requirement-id",
            f"{error.instance!r} is not a requirement ID.",
            "Use IDs from the requirements catalog, e.g. R-REP-04.",
        )
        return
    if error.validator in ("oneOf", "anyOf") and error.context:
        # Report the most specific branch failure, not "is not valid under any of the schemas".
        best = jsonschema.exceptions.best_match(error.context)
        _report_schema_error(best, out)
        return
    if error.validator == "enum":
        choices = ", ".join(json.dumps(v, ensure_ascii=False) for v in schema.get("enum", ()))
        out.error(path, "schema-enum", error_text(error), f"Write one of: {choices}.")
        return
    out.error(path, f"schema-{error.validator}", error_text(error), "")


# --- semantic pass -----------------------------------------------------------------------------


class _Checker:
    def __init__(
        self,
        document: Mapping[str, Any],
        known_calendars: frozenset[str],
        *,
        calendars_complete: bool = False,
    ) -> None:
        self.doc = document
        self.out = ProblemList()
        self.calendars = known_calendars
        self.calendars_complete = calendars_complete
        self.states: dict[str, Mapping[str, Any]] = {}
        self.state_paths: dict[str, str] = {}
        self.params: Mapping[str, Any] = (
            document.get("parameters") if isinstance(document.get("parameters"), dict) else {}
        ) or {}
        data_schema = document.get("data_schema")
        self.data_schema: Mapping[str, Any] = data_schema if isinstance(data_schema, dict) else {}
        counters = document.get("counters")
        self.counters: Mapping[str, Any] = counters if isinstance(counters, dict) else {}
        decisions = document.get("decisions")
        self.decisions: Mapping[str, Any] = decisions if isinstance(decisions, dict) else {}

    # helpers -------------------------------------------------------------------------------

    def _list(self, key: str) -> list[tuple[int, Mapping[str, Any]]]:
        items = self.doc.get(key)
        if not isinstance(items, list):
            return []
        return [(i, item) for i, item in enumerate(items) if isinstance(item, dict)]

    def _data_fields(self) -> Mapping[str, Any]:
        props = self.data_schema.get("properties", {})
        return props if isinstance(props, dict) else {}

    def _check_json_schema(self, schema: Any, path: str) -> bool:
        """A valid draft 2020-12 schema, within the limits, whose patterns RE2 can run."""
        deep = nesting_depth(schema, SCHEMA_MAX_DEPTH)
        if deep is not None:
            self.out.error(
                format_path([path, *deep[1]]),
                "schema-too-deep",
                f"The schema nests mappings and lists more than {SCHEMA_MAX_DEPTH} deep.",
                "Flatten it: declare nested objects as fields of their own, or leave deep "
                "parts unchecked (type: object). docs/definitions.md (Limits).",
            )
            return False
        if unmatchable_keywords(schema):
            self.out.error(
                path,
                "schema-keywords-unsupported",
                "The schema uses unevaluatedProperties and patternProperties together, whose "
                "patterns svcflow cannot check on its linear-time regex engine.",
                "Use additionalProperties instead of unevaluatedProperties.",
            )
            return False
        checker = jsonschema.Draft202012Validator(
            jsonschema.Draft202012Validator.META_SCHEMA, format_checker=REGEX_FORMAT
        )
        errors = list(checker.iter_errors(schema))
        regex_errors = [
            e for e in errors if e.validator == "format" and e.validator_value == "regex"
        ]
        for error in regex_errors:
            self.out.error(
                format_path([path, *error.absolute_path]),
                "pattern-not-linear",
                f"Pattern {written(error.instance)} cannot run on the linear-time regular "
                f"expression engine (RE2): {pattern_problem(str(error.instance))}.",
                "Rewrite it without backreferences (\\1) or lookaround ((?=, (?!, (?<=); RE2's "
                "syntax: https://github.com/google/re2/wiki/Syntax.",
            )
        others = [e for e in errors if e not in regex_errors]
        if others:
            exc = jsonschema.exceptions.best_match(others)
            where = format_path([path, *exc.absolute_path]) if exc.absolute_path else path
            self.out.error(
                where,
                "bad-json-schema",
                f"Not a valid JSON Schema: {exc.message}",
                "See https://json-schema.org/understanding-json-schema/ (draft 2020-12).",
            )
        return not errors

    def _check_expression(
        self, source: str, path: str, payload_fields: Mapping[str, Any] | None
    ) -> Expression | None:
        try:
            expr = Expression(source, path)
        except ExpressionTooCostly as exc:
            self.out.error(path, "expression-too-costly", exc.message, exc.hint or "")
            return None
        except ExpressionError as exc:
            self.out.error(path, "expression-syntax", exc.message, exc.hint or "")
            return None
        for name in sorted(expr.unknown_variables()):
            self.out.error(
                path,
                "expression-unknown-variable",
                f"Expression reads {name!r}, which is not a variable.",
                "Expressions see data, payload, params, now, counters, case and decisions. "
                + _suggest(name, sorted(ROOT_VARIABLES)),
            )
        if "decisions" in expr.variables and fields_read(source, "decisions") is None:
            self.out.error(
                path,
                "decision-not-named",
                "Expression reads decisions without naming a table.",
                "Read one table's value: decisions.<name>, e.g. decisions.arrival_target.",
            )
        for ref in sorted(field_references(source), key=lambda r: (r.root, r.field)):
            self._check_field_ref(ref.root, ref.field, path, payload_fields)
        if expr.business_functions:
            for call in calls_in(source):
                self._check_business_call(call, path)
        return expr

    def _check_business_call(self, call: Call, path: str) -> None:
        """A business-time call's arity, and a calendar or amount it names literally or by a
        parameter: checked here as where they are written in a timer or an SLA."""
        fewest, most, _ = SIGNATURES[call.name]
        if not fewest <= len(call.arguments) <= most:
            self.out.error(
                path,
                "business-function-arguments",
                f"{call.name}() is given {len(call.arguments)} argument(s).",
                f"Call it as {USAGE[call.name]}.",
            )
            return
        if call.calendar is not None:
            name = literal_text(call.calendar)
            if name is not None:
                self._check_calendar(name, path)
            self._check_param_type(call.calendar, "calendar", path, "'cn-workdays'")
        if call.amount is not None:
            text = literal_text(call.amount)
            if text is not None:
                try:
                    if parse_duration(text).months:
                        self.out.error(
                            path,
                            "bad-duration",
                            f"add_working() counts business time; {text!r} is calendar months.",
                            "Use add_months(ts, n) for calendar months.",
                        )
                except DurationInvalid as exc:
                    self.out.error(path, "bad-duration", exc.message, exc.hint or "")
            self._check_param_type(call.amount, "duration", path, "'5 working days'")

    def _check_param_type(self, argument: str, kind: str, path: str, example: str) -> None:
        """An argument that is just ``params.x`` reads a parameter of type ``kind``."""
        match = _PARAM_ARGUMENT.match(argument)
        spec = self.params.get(match.group(1)) if match else None
        if match and isinstance(spec, dict) and spec.get("type") != kind:
            self.out.error(
                path,
                f"parameter-not-{kind}",
                f"Parameter {match.group(1)!r} has type {spec.get('type')!r}, not {kind}.",
                f"Declare it with type: {kind} and a default like {example}.",
            )

    def _check_field_ref(
        self, root: str, name: str, path: str, payload_fields: Mapping[str, Any] | None
    ) -> None:
        if root == "data" and name not in self._data_fields():
            self.out.error(
                path,
                "undeclared-data-field",
                f"Expression reads data.{name}, which data_schema does not declare.",
                _suggest(name, self._data_fields())
                or f"Declare {name!r} under data_schema.properties.",
            )
        elif root == "params" and name not in self.params:
            self.out.error(
                path,
                "undeclared-parameter",
                f"Expression reads params.{name}, which is not a declared parameter.",
                _suggest(name, self.params) or f"Declare {name!r} under parameters.",
            )
        elif root == "counters" and name not in self.counters:
            self.out.error(
                path,
                "undeclared-counter",
                f"Expression reads counters.{name}, which is not a declared counter.",
                _suggest(name, self.counters) or f"Declare {name!r} under counters.",
            )
        elif root == "decisions" and name not in self.decisions:
            self.out.error(
                path,
                "undeclared-decision",
                f"Expression reads decisions.{name}, which is not a declared decision table.",
                _suggest(name, self.decisions) or f"Declare {name!r} under decisions.",
            )
        elif root == "payload" and payload_fields is not None and name not in payload_fields:
            self.out.error(
                path,
                "undeclared-payload-field",
                f"Expression reads payload.{name}, which the payload_schema does not declare.",
                _suggest(name, payload_fields)
                or f"Declare {name!r} under this transition's payload_schema.properties.",
            )
        elif root == "payload" and payload_fields is None:
            self.out.error(
                path,
                "undeclared-payload-field",
                f"Expression reads payload.{name}, but this element declares no payload_schema.",
                "Add a payload_schema with the fields the trigger carries.",
            )

    def _calendars_of(self, calendar: Any) -> list[str | None]:
        """The calendars a duration is measured on where ``calendar`` is written: the literal,
        or the default of the calendar parameter it names (overrides are checked by
        ``set-param``). Empty when the calendar is itself in error (reported there)."""
        if isinstance(calendar, dict):
            spec = self.params.get(str(calendar.get("param")))
            if isinstance(spec, dict) and spec.get("type") == "calendar":
                default = spec.get("default")
                return [default] if isinstance(default, str) else []
            return []
        return [calendar] if calendar is None or isinstance(calendar, str) else []

    def _check_duration(self, raw: Any, path: str, calendar: Any) -> None:
        where = " or ".join(repr(c or WALL_CLOCK) for c in self._calendars_of(calendar))
        if isinstance(raw, str):
            try:
                duration = parse_duration(raw)
            except DurationInvalid as exc:
                self.out.error(path, "bad-duration", exc.message, exc.hint or "")
                return
            for name in self._calendars_of(calendar):
                problem = calendar_problem(duration, name)
                if problem is not None:
                    self.out.error(path, problem.code, problem.message, problem.hint)
        elif isinstance(raw, dict) and isinstance(raw.get("param"), str):
            param = self.params.get(raw["param"])
            if param is None:
                self.out.error(
                    f"{path}.param",
                    "undeclared-parameter",
                    f"Parameter {raw['param']!r} is not declared.",
                    _suggest(raw["param"], self.params) or "Declare it under parameters.",
                )
            elif isinstance(param, dict) and param.get("type") != "duration":
                self.out.error(
                    f"{path}.param",
                    "parameter-not-duration",
                    f"Parameter {raw['param']!r} has type {param.get('type')!r}, not duration.",
                    "Declare it with type: duration and a default like '2h' or '5 working days'.",
                )
            elif isinstance(param, dict) and isinstance(param.get("default"), str):
                # The default is a literal used here: the same rules as one written here.
                name = raw["param"]
                try:
                    duration = parse_duration(param["default"])
                except DurationInvalid:
                    return  # reported at the parameter's default
                for calendar_name in self._calendars_of(calendar):
                    problem = calendar_problem(duration, calendar_name)
                    if problem is not None:
                        self.out.error(
                            f"parameters.{name}.default",
                            problem.code,
                            f"Parameter {name!r} defaults to {param['default']!r}, used at "
                            f"{path} on calendar {where}: {problem.message}",
                            problem.hint,
                        )
        elif isinstance(raw, dict) and "expr" in raw:
            self._check_expression(raw["expr"], f"{path}.expr", None)
            self._check_decision_type(raw["expr"], f"{path}.expr", "duration")

    def _check_decision_type(self, source: Any, path: str, wanted: str) -> None:
        """An expression that is one table's value (decisions.x) gives the table's type."""
        plain = _DECISION_READ.match(source) if isinstance(source, str) else None
        table = self.decisions.get(plain[1]) if plain else None
        output = table.get("output") if isinstance(table, dict) else None
        if plain and isinstance(output, str) and output != wanted:
            self.out.error(
                path,
                "decision-output-type",
                f"Decision table {plain[1]!r} gives a {output}; a {wanted} is needed here.",
                f"Read a table whose output is {wanted}, or change this table's output.",
            )

    def _check_calendar_value(self, value: Any, path: str) -> None:
        """A calendar written literally, or ``{param: name}`` naming a calendar parameter."""
        if not isinstance(value, dict):
            self._check_calendar(value, path)
            return
        name = value.get("param")
        if not isinstance(name, str):
            return  # the structural pass reports it
        spec = self.params.get(name)
        if spec is None:
            self.out.error(
                f"{path}.param",
                "undeclared-parameter",
                f"Parameter {name!r} is not declared.",
                _suggest(name, self.params) or "Declare it under parameters with type: calendar.",
            )
        elif isinstance(spec, dict) and spec.get("type") != "calendar":
            self.out.error(
                f"{path}.param",
                "parameter-not-calendar",
                f"Parameter {name!r} has type {spec.get('type')!r}, not calendar.",
                "Declare it with type: calendar and a default like 'cn-workdays'.",
            )

    def _check_calendar(self, name: Any, path: str) -> None:
        if not isinstance(name, str) or name in self.calendars:
            return
        if self.calendars_complete:  # at publish: every case entering the state would fail
            self.out.error(
                path,
                "unknown-calendar",
                f"Calendar {name!r} does not exist in this database.",
                _suggest(name, self.calendars)
                or f"Calendars here: {', '.join(sorted(self.calendars))}. Create it first "
                "(`svcflow calendars set`, or POST /api/v1/calendars), or fix the name.",
            )
            return
        self.out.warning(
            path,
            "unknown-calendar",
            f"Calendar {name!r} is not built in; publishing checks it against the database's "
            "calendars and refuses it if it is not there.",
            _suggest(name, self.calendars)
            or "Built-in calendars: 24x7, cn-workdays. Create it before publishing, or fix "
            "the name.",
        )

    # passes ---------------------------------------------------------------------------------

    def run(self) -> ProblemList:
        self.check_schemas()
        self.check_parameters()
        self.check_counters_and_parent()
        self.check_decisions()
        self.check_assignee()
        self.check_supervision()
        self.check_field_labels()
        self.check_states()
        transitions = self.check_transitions()
        self.check_graph(transitions)
        self.check_timers(transitions)
        self.check_slas(transitions)
        return self.out

    def check_schemas(self) -> None:
        if (
            "data_schema" in self.doc
            and isinstance(self.doc["data_schema"], dict)
            and self._check_json_schema(self.data_schema, "data_schema")
            and self.data_schema.get("type", "object") != "object"
        ):
            self.out.error(
                "data_schema.type",
                "data-schema-not-object",
                "Case data is a map, so data_schema must have type: object.",
                "Set type: object and list the fields under properties.",
            )

    def check_decisions(self) -> None:
        DecisionChecker(
            data_schema=self.data_schema,
            params=self.params,
            out=self.out,
            check_expression=self._check_expression,
            suggest=_suggest,
        ).run(self.doc.get("decisions"))

    def check_assignee(self) -> None:
        field = self.doc.get("assignee")
        if isinstance(field, str) and field not in self._data_fields():
            self.out.error(
                "assignee",
                "undeclared-data-field",
                f"assignee names data.{field}, which data_schema does not declare.",
                _suggest(field, self._data_fields()) or f"Declare {field!r} with type: string.",
            )

    def check_supervision(self) -> None:
        """Each named field is a declared data field holding one value (a text, a number, an
        enum), and each expected wait a state a case can rest in."""
        section = self.doc.get("supervision")
        if not isinstance(section, dict):
            return
        named = [(key, section.get(key)) for key in ("customer", "team", "priority")]
        filters = section.get("filters")
        if isinstance(filters, list):
            named += [(f"filters[{i}]", path) for i, path in enumerate(filters)]
        for key, path in named:
            if isinstance(path, str):
                self._check_supervised_field(f"supervision.{key}", path)
        states = {s.get("name"): s for _, s in self._list("states")}
        waits = section.get("expected_waits")
        seen: set[str] = set()
        for i, wait in enumerate(waits if isinstance(waits, list) else ()):
            state = wait.get("state") if isinstance(wait, dict) else None
            if not isinstance(state, str):
                continue
            where = f"supervision.expected_waits[{i}].state"
            if state not in states:
                self.out.error(
                    where,
                    "unknown-state",
                    f"Expected wait names state {state!r}, which is not declared.",
                    _suggest(state, [str(s) for s in states]) or "Declare it under states.",
                )
            elif states[state].get("final"):
                self.out.error(
                    where,
                    "expected-wait-final",
                    f"State {state!r} is final: a closed case waits for nothing.",
                    "List only states an open case rests in.",
                )
            elif state in seen:
                self.out.error(
                    where,
                    "duplicate-expected-wait",
                    f"State {state!r} is listed twice.",
                    "Keep one entry with one reason.",
                )
            seen.add(state)

    def _declared_fields(self) -> dict[str, set[str] | None]:
        """Every data and payload field name, the fields of their lists of records included,
        with the string values its enums allow (the union over the schemas declaring it), or
        None where no schema gives it an enum. A string ``const`` is an enum of one value (a
        checklist item that must be ``done``), which pages show by its label too."""
        declared: dict[str, set[str] | None] = {}
        schemas = [self.data_schema] + [
            t["payload_schema"]
            for _, t in self._list("transitions")
            if isinstance(t.get("payload_schema"), dict)
        ]
        for schema in schemas:
            for name, spec in _record_fields(schema):
                enum = spec.get("enum") if isinstance(spec, dict) else None
                if isinstance(spec, dict) and isinstance(spec.get("const"), str):
                    enum = [spec["const"]]
                values = {v for v in enum if isinstance(v, str)} if isinstance(enum, list) else None
                known = declared.get(name)
                if values is None:
                    declared.setdefault(name, None)
                else:
                    declared[name] = values if known is None else known | values
        return declared

    def check_field_labels(self) -> None:
        """Each ``fields`` entry names a declared field, and its ``values`` that field's enum
        values; an enum value left without a label is a warning (the page shows it raw)."""
        glossary = self.doc.get("fields")
        if not isinstance(glossary, dict):
            return
        declared = self._declared_fields()
        for name, entry in glossary.items():
            where = f"fields.{name}"
            if name not in declared:
                self.out.error(
                    where,
                    "unknown-field-label",
                    f"fields names {name!r}, which no data_schema or payload_schema declares.",
                    _suggest(str(name), declared)
                    or "Label only the fields the definition declares, or remove the entry.",
                )
                continue
            values = entry.get("values") if isinstance(entry, dict) else None
            if not isinstance(values, dict):
                continue
            allowed = declared[name]
            if allowed is None:
                self.out.error(
                    f"{where}.values",
                    "field-label-values-without-enum",
                    f"Field {name!r} has no enum, so it has no values to label.",
                    "Remove values, or give the field a list of allowed values.",
                )
                continue
            for value in values:
                if value not in allowed:
                    self.out.error(
                        f"{where}.values.{value}",
                        "unknown-enum-value",
                        f"{value!r} is not one of the values of {name!r}: "
                        f"{', '.join(sorted(allowed))}.",
                        _suggest(str(value), allowed) or "Label only the values the enum allows.",
                    )
            missing = sorted(allowed - set(values))
            if missing:
                self.out.warning(
                    f"{where}.values",
                    "enum-value-unlabelled",
                    f"Values of {name!r} without a label: {', '.join(missing)}; "
                    "pages show them as written.",
                    "Add an entry with en and zh for each.",
                )

    def _check_supervised_field(self, where: str, path: str) -> None:
        root, _, leaf = path.partition(".")
        fields = self._data_fields()
        if root not in fields:
            self.out.error(
                where,
                "undeclared-data-field",
                f"{where} names data.{root}, which data_schema does not declare.",
                _suggest(root, fields) or f"Declare {root!r} in data_schema.",
            )
            return
        schema = fields[root] if isinstance(fields[root], dict) else {}
        if leaf:
            inner = schema.get("properties")
            inner = inner if isinstance(inner, dict) else {}
            if leaf not in inner:
                self.out.error(
                    where,
                    "undeclared-data-field",
                    f"{where} names data.{path}, but data.{root} declares no field {leaf!r}.",
                    _suggest(leaf, inner) or f"Declare {leaf!r} under data.{root}.properties.",
                )
                return
            schema = inner[leaf] if isinstance(inner[leaf], dict) else {}
        if schema.get("type") in ("object", "array"):
            self.out.error(
                where,
                "supervised-field-not-scalar",
                f"{where} names data.{path}, which holds a {schema['type']}, not one value.",
                "Name a field holding a text, a number or an enum "
                "(for an object, one of its fields: team.regional_lead).",
            )

    def check_counters_and_parent(self) -> None:
        for name, spec in self.counters.items():
            if isinstance(spec, dict) and isinstance(spec.get("key"), str):
                self._check_expression(spec["key"], f"counters.{name}.key", None)
        parent = self.doc.get("parent")
        if not isinstance(parent, dict):
            return
        if isinstance(parent.get("attach_by_key"), str):
            self._check_expression(parent["attach_by_key"], "parent.attach_by_key", None)
        notify = parent.get("notify")
        states = notify.get("states") if isinstance(notify, dict) else None
        declared = {s.get("name") for _, s in self._list("states")}
        for state in states if isinstance(states, dict) else {}:
            if state not in declared:
                self.out.error(
                    f"parent.notify.states.{state}",
                    "unknown-state",
                    f"Notification names state {state!r}, which is not declared.",
                    _suggest(str(state), [str(d) for d in declared]) or "Declare it under states.",
                )

    def check_parameters(self) -> None:
        for name, spec in self.params.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
                continue
            if spec["type"] not in _PARAM_TYPES:
                continue
            default, kind = spec.get("default"), spec["type"]
            path = f"parameters.{name}.default"
            wrong_type = not isinstance(default, _PARAM_TYPES[kind]) or (
                kind in ("integer", "number") and isinstance(default, bool)
            )
            if wrong_type:
                self.out.error(
                    path,
                    "parameter-default-type",
                    f"Default {written(default)} is not of type {kind}.",
                    f"Give a {kind} default.",
                )
            elif isinstance(default, str) and len(default) > VALUE_MAX_CHARS:
                self.out.error(
                    path,
                    "parameter-default-too-long",
                    f"Default has {len(default):,} characters; a string parameter holds at "
                    f"most {VALUE_MAX_CHARS:,}, as a string in case data.",
                    "Keep long text elsewhere. docs/definitions.md (Limits).",
                )
            elif kind == "duration":
                try:
                    parse_duration(default)
                except DurationInvalid as exc:
                    self.out.error(path, "bad-duration", exc.message, exc.hint or "")
            elif kind == "calendar":
                self._check_calendar(default, path)

    def check_states(self) -> None:
        for i, state in self._list("states"):
            name = state.get("name")
            if not isinstance(name, str):
                continue
            path = f"states[{i}].name"
            if name in self.states:
                self.out.error(
                    path,
                    "duplicate-state",
                    f"State {name!r} is declared twice (first at {self.state_paths[name]}).",
                    "Give each state a unique name.",
                )
                continue
            self.states[name] = state
            self.state_paths[name] = f"states[{i}]"
        initial = self.doc.get("initial")
        if isinstance(initial, str) and self.states and initial not in self.states:
            self.out.error(
                "initial",
                "unknown-state",
                f"Initial state {initial!r} is not declared.",
                _suggest(initial, self.states) or "Declare it under states.",
            )
        elif isinstance(initial, str) and self.states.get(initial, {}).get("final"):
            self.out.warning(
                "initial",
                "initial-is-final",
                f"Initial state {initial!r} is final: cases end as soon as they are created.",
            )

    def _finals(self) -> set[str]:
        return {name for name, s in self.states.items() if s.get("final")}

    def _sources(self, transition: Mapping[str, Any], path: str) -> list[str]:
        source = transition.get("source")
        if source == ANY_SOURCE:
            return [s for s in self.states if s not in self._finals()]
        names = [source] if isinstance(source, str) else source if isinstance(source, list) else []
        valid: list[str] = []
        for j, name in enumerate(names):
            where = f"{path}.source" if isinstance(source, str) else f"{path}.source[{j}]"
            if not isinstance(name, str):
                continue
            if name not in self.states:
                self.out.error(
                    where,
                    "unknown-state",
                    f"Source state {name!r} is not declared.",
                    _suggest(name, self.states) or "Declare it under states.",
                )
            elif self.states[name].get("final"):
                self.out.error(
                    where,
                    "final-state-has-exit",
                    f"State {name!r} is final and takes no more triggers, but this "
                    "transition starts from it.",
                    "Remove the state from the sources, or make it non-final.",
                )
            else:
                valid.append(name)
        return valid

    def check_transitions(self) -> list[tuple[int, Mapping[str, Any], list[str]]]:
        checked = []
        for i, t in self._list("transitions"):
            path = f"transitions[{i}]"
            sources = self._sources(t, path)
            dest = t.get("dest")
            if isinstance(dest, str) and dest not in self.states:
                self.out.error(
                    f"{path}.dest",
                    "unknown-state",
                    f"Destination state {dest!r} is not declared.",
                    _suggest(dest, self.states) or "Declare it under states.",
                )
            if t.get("reenter") is True and isinstance(dest, str):
                leaving = [s for s in sources if s != dest]
                if leaving:
                    self.out.error(
                        f"{path}.reenter",
                        "reenter-without-stay",
                        f"reenter restarts the state a case stays in, but this transition "
                        f"moves it from {leaving[0]!r} to {dest!r}.",
                        "Remove reenter (moving always enters the destination afresh), or "
                        "remove dest so the case stays where it is.",
                    )
            payload_fields = self._check_payload_schema(t, path)
            if isinstance(t.get("guard"), str):
                self._check_expression(t["guard"], f"{path}.guard", payload_fields)
            elif "guard_message" in t:
                self.out.error(
                    f"{path}.guard_message",
                    "message-without-guard",
                    "A guard_message says what a guard requires, but this transition has no guard.",
                    "Add the guard it describes, or remove guard_message.",
                )
            self._check_actions(t, path, payload_fields)
            self._check_occurred_at(t, path, payload_fields)
            self._check_roles(t, path)
            checked.append((i, t, sources))
        self._check_ambiguity(checked)
        self._check_occurred_at_agrees(checked)
        return checked

    def _check_roles(self, t: Mapping[str, Any], path: str) -> None:
        """Roles are known ones: a misspelt role would let nobody fire the transition."""
        roles = t.get("roles")
        for k, role in enumerate(roles if isinstance(roles, list) else []):
            if isinstance(role, str) and role not in KNOWN_ROLES:
                self.out.error(
                    f"{path}.roles[{k}]",
                    "unknown-role",
                    f"Role {role!r} is not one svcflow knows.",
                    _suggest(role, KNOWN_ROLES)
                    or f"Use one of {', '.join(sorted(KNOWN_ROLES))} (docs/api.md).",
                )

    def _check_occurred_at(
        self, t: Mapping[str, Any], path: str, payload_fields: Mapping[str, Any] | None
    ) -> None:
        """``occurred_at.field`` is a date-time the payload declares; ``within`` a duration."""
        spec = t.get("occurred_at")
        if not isinstance(spec, dict) or not isinstance(spec.get("field"), str):
            return
        name, where = spec["field"], f"{path}.occurred_at"
        declared = (payload_fields or {}).get(name)
        if not isinstance(declared, dict) or declared.get("format") != "date-time":
            self.out.error(
                f"{where}.field",
                "occurred-at-field",
                f"occurred_at names payload.{name}, which payload_schema does not declare as "
                "a date-time.",
                f"Declare it under payload_schema.properties as {{{name}: {{type: string, "
                "format: date-time}}} (and list it in required if every report must say when).",
            )
        if "within" in spec:
            try:
                # How far back a report may reach is wall time: the same rule as on 24x7.
                problem = calendar_problem(parse_duration(spec["within"]), WALL_CLOCK)
                if problem is None and parse_duration(spec["within"]).months:
                    problem = CalendarMismatch(
                        "bad-duration",
                        f"occurred_at.within is {spec['within']!r}, in calendar months.",
                        "Write a fixed length of time, e.g. '30d'.",
                    )
            except DurationInvalid as exc:
                self.out.error(f"{where}.within", "bad-duration", exc.message, exc.hint or "")
            else:
                if problem is not None:
                    self.out.error(f"{where}.within", problem.code, problem.message, problem.hint)

    def _check_occurred_at_agrees(
        self, checked: Sequence[tuple[int, Mapping[str, Any], list[str]]]
    ) -> None:
        """The instant a report counts at is settled before a transition is chosen (guards
        read ``now``), so every transition of one trigger says the same about it."""
        first: dict[str, tuple[int, Any]] = {}
        for i, t, _ in checked:
            trigger, spec = t.get("trigger"), t.get("occurred_at")
            if not isinstance(trigger, str):
                continue
            if trigger not in first:
                first[trigger] = (i, spec)
            elif first[trigger][1] != spec:
                j = first[trigger][0]
                self.out.error(
                    f"transitions[{i}].occurred_at",
                    "occurred-at-differs",
                    f"Trigger {trigger!r} is declared with a different occurred_at in "
                    f"transitions[{j}].",
                    "Give every transition of the trigger the same occurred_at (or none).",
                )

    def _check_payload_schema(self, t: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
        schema = t.get("payload_schema")
        if not isinstance(schema, dict):
            return None
        if not self._check_json_schema(schema, f"{path}.payload_schema"):
            return {}
        props = schema.get("properties", {})
        return props if isinstance(props, dict) else {}

    def _check_actions(
        self, t: Mapping[str, Any], path: str, payload_fields: Mapping[str, Any] | None
    ) -> None:
        actions = t.get("actions")
        if not isinstance(actions, list):
            return
        fields = self._data_fields()
        for j, action in enumerate(actions):
            if not isinstance(action, dict):
                continue
            base = f"{path}.actions[{j}]"
            if isinstance(action.get("set"), dict):
                for name, expr in action["set"].items():
                    where = f"{base}.set.{name}"
                    if name not in fields:
                        self.out.error(
                            where,
                            "undeclared-data-field",
                            f"Action sets data.{name}, which data_schema does not declare.",
                            _suggest(str(name), fields) or f"Declare {name!r} in data_schema.",
                        )
                    if isinstance(expr, str):
                        self._check_expression(expr, where, payload_fields)
            self._check_count_and_spawn(action, base, payload_fields)
            inc = action.get("increment")
            name = (
                inc if isinstance(inc, str) else inc.get("field") if isinstance(inc, dict) else None
            )
            if isinstance(name, str):
                where = f"{base}.increment"
                kind = (
                    fields.get(name, {}).get("type") if isinstance(fields.get(name), dict) else None
                )
                if name not in fields:
                    self.out.error(
                        where,
                        "undeclared-data-field",
                        f"Action increments data.{name}, which data_schema does not declare.",
                        _suggest(name, fields) or f"Declare {name!r} with type: integer.",
                    )
                elif kind not in ("integer", "number"):
                    self.out.error(
                        where,
                        "increment-not-number",
                        f"Action increments data.{name}, declared with type {kind!r}.",
                        "Declare the counter with type: integer.",
                    )

    def _check_count_and_spawn(
        self, action: Mapping[str, Any], base: str, payload_fields: Mapping[str, Any] | None
    ) -> None:
        cnt = action.get("count")
        counter = (
            cnt if isinstance(cnt, str) else cnt.get("counter") if isinstance(cnt, dict) else None
        )
        if isinstance(counter, str) and counter not in self.counters:
            self.out.error(
                f"{base}.count",
                "undeclared-counter",
                f"Action counts {counter!r}, which is not a declared counter.",
                _suggest(counter, self.counters) or f"Declare {counter!r} under counters.",
            )
        spawn = action.get("spawn")
        if not isinstance(spawn, dict):
            return
        for name, expr in (spawn.get("data") or {}).items():
            if isinstance(expr, str):
                self._check_expression(expr, f"{base}.spawn.data.{name}", payload_fields)
        if isinstance(spawn.get("business_key"), str):
            self._check_expression(
                spawn["business_key"], f"{base}.spawn.business_key", payload_fields
            )

    def _check_ambiguity(self, checked: Sequence[tuple[int, Mapping[str, Any], list[str]]]) -> None:
        """Transitions are tried in order; a later one with the same trigger and an overlapping
        source can only fire if every earlier one has a guard that differs from its own."""
        for pos, (i, t, sources) in enumerate(checked):
            for j, u, other in checked[pos + 1 :]:
                if t.get("trigger") != u.get("trigger"):
                    continue
                overlap = sorted(set(sources) & set(other))
                if not overlap:
                    continue
                guard_t, guard_u = t.get("guard"), u.get("guard")
                if guard_t is None:
                    self.out.error(
                        f"transitions[{j}]",
                        "ambiguous-transition",
                        f"Trigger {t.get('trigger')!r} from {', '.join(overlap)} never reaches "
                        f"this transition: transitions[{i}] matches first and has no guard.",
                        f"Add a guard to transitions[{i}] (tried first), or remove one of them.",
                    )
                elif (
                    isinstance(guard_t, str)
                    and isinstance(guard_u, str)
                    and " ".join(guard_t.split()) == " ".join(guard_u.split())
                ):
                    self.out.error(
                        f"transitions[{j}].guard",
                        "ambiguous-transition",
                        f"Same trigger, source and guard as transitions[{i}]: this one never "
                        "fires.",
                        "Make the guards exclusive, or remove one transition.",
                    )

    def check_graph(self, checked: Sequence[tuple[int, Mapping[str, Any], list[str]]]) -> None:
        if not self.states:
            return
        edges: dict[str, set[str]] = {name: set() for name in self.states}
        for _, t, sources in checked:
            dest = t.get("dest")
            for source in sources:
                if isinstance(dest, str) and dest in self.states:
                    edges[source].add(dest)
        # A transition that keeps the case where it is (no dest) is no way out of a state.
        leaving = {source for _, t, srcs in checked if "dest" in t for source in srcs}
        for name, state in self.states.items():
            if not state.get("final") and name not in leaving:
                self.out.error(
                    self.state_paths[name],
                    "dead-end-state",
                    f"State {name!r} is not final and no transition leaves it: cases would "
                    "stay there forever.",
                    "Add a transition out of it, or mark it final: true.",
                )
        initial = self.doc.get("initial")
        if not isinstance(initial, str) or initial not in self.states:
            return
        seen, queue = {initial}, deque([initial])
        while queue:
            for nxt in edges[queue.popleft()] - seen:
                seen.add(nxt)
                queue.append(nxt)
        for name in self.states:
            if name not in seen:
                self.out.warning(
                    self.state_paths[name],
                    "unreachable-state",
                    f"State {name!r} cannot be reached from the initial state {initial!r}.",
                    "Add a transition into it, or remove it.",
                )

    def check_timers(self, checked: Sequence[tuple[int, Mapping[str, Any], list[str]]]) -> None:
        triggers_from: dict[str, set[str]] = {name: set() for name in self.states}
        for _, t, sources in checked:
            for s in sources:
                triggers_from[s].add(str(t.get("trigger")))
        for name, state in self.states.items():
            timers = state.get("timers")
            if not isinstance(timers, list):
                continue
            for k, timer in enumerate(timers):
                if isinstance(timer, dict):
                    self._check_timer(
                        timer, f"{self.state_paths[name]}.timers[{k}]", name, triggers_from
                    )

    def _check_timer(
        self, timer: Mapping[str, Any], path: str, state: str, triggers_from: Mapping[str, set[str]]
    ) -> None:
        kinds = [k for k in ("after", "at", "every") if k in timer]
        if len(kinds) != 1:
            self.out.error(
                path,
                "timer-kind",
                f"A timer needs exactly one of after, at, every; this one has "
                f"{', '.join(kinds) or 'none'}.",
                "after: a duration; at: a CEL timestamp; every: a cron schedule.",
            )
        calendar = timer.get("calendar")
        self._check_calendar_value(calendar, f"{path}.calendar")
        if "after" in timer:
            self._check_duration(timer["after"], f"{path}.after", calendar)
        if isinstance(timer.get("at"), str):
            self._check_expression(timer["at"], f"{path}.at", None)
        if "counted_from" in timer:
            if "after" not in timer:
                self.out.error(
                    f"{path}.counted_from",
                    "counted-from-without-after",
                    "counted_from moves where an after timer's duration is counted from; this "
                    "timer has no after.",
                    "Use counted_from with after (e.g. after: 1 working day, counted_from: "
                    "case.created_at), or compute the instant in at.",
                )
            self._check_case_expression(
                timer["counted_from"], f"{path}.counted_from", TIMER_EXPRESSION_REFUSED
            )
        every = timer.get("every")
        if isinstance(every, str) and not croniter.is_valid(every):
            self.out.error(
                f"{path}.every",
                "bad-cron",
                f"{every!r} is not a cron schedule.",
                "Use five fields: minute hour day month weekday, e.g. '0 9 30 * *'.",
            )
        trigger = timer.get("trigger")
        if isinstance(trigger, str) and trigger not in triggers_from.get(state, set()):
            self.out.error(
                f"{path}.trigger",
                "timer-trigger-not-allowed",
                f"Timer fires {trigger!r}, but no transition takes {trigger!r} from {state!r}.",
                _suggest(trigger, triggers_from.get(state, set()))
                or f"Add a transition with trigger {trigger!r} and source {state!r}.",
            )

    def check_slas(self, checked: Sequence[tuple[int, Mapping[str, Any], list[str]]]) -> None:
        all_triggers = {str(t.get("trigger")) for _, t, _ in checked}
        names: set[str] = set()
        for i, sla in self._list("slas"):
            path = f"slas[{i}]"
            name = sla.get("name")
            if isinstance(name, str):
                if name in names:
                    self.out.error(
                        f"{path}.name", "duplicate-sla", f"SLA {name!r} is declared twice."
                    )
                names.add(name)
            calendar = sla.get("calendar", "24x7")
            self._check_calendar_value(calendar, f"{path}.calendar")
            if "target" in sla:
                self._check_duration(sla["target"], f"{path}.target", calendar)
            for part in ("start", "pause", "stop"):
                cond = sla.get(part)
                if not isinstance(cond, dict):
                    continue
                states = cond.get("states")
                for j, state in enumerate(states if isinstance(states, list) else []):
                    if isinstance(state, str) and state not in self.states:
                        self.out.error(
                            f"{path}.{part}.states[{j}]",
                            "unknown-state",
                            f"SLA condition names state {state!r}, which is not declared.",
                            _suggest(state, self.states) or "Declare it under states.",
                        )
                triggers = cond.get("triggers")
                for j, trig in enumerate(triggers if isinstance(triggers, list) else []):
                    if isinstance(trig, str) and trig not in all_triggers:
                        self.out.error(
                            f"{path}.{part}.triggers[{j}]",
                            "unknown-trigger",
                            f"SLA condition names trigger {trig!r}, which no transition has.",
                            _suggest(trig, all_triggers)
                            or f"Triggers of this definition: {', '.join(sorted(all_triggers))}.",
                        )
            for key in ("when", "counted_from"):
                if key in sla:
                    self._check_case_expression(sla[key], f"{path}.{key}", CASE_EXPRESSION_REFUSED)
            if sla.get("rounds") == "repeat":
                self._check_rounds(sla, path, checked)
            breach = sla.get("on_breach")
            if (
                isinstance(breach, dict)
                and isinstance(breach.get("trigger"), str)
                and breach["trigger"] not in all_triggers
            ):
                self.out.error(
                    f"{path}.on_breach.trigger",
                    "unknown-trigger",
                    f"Breach trigger {breach['trigger']!r} is not a trigger of any transition.",
                    _suggest(breach["trigger"], all_triggers)
                    or f"Triggers of this definition: {', '.join(sorted(all_triggers))}.",
                )

    def _check_case_expression(self, source: Any, path: str, refused: frozenset[str]) -> None:
        """A ``when`` or ``counted_from``: read from the case as an event (or a state entry)
        left it, again at every recomputation, so it may read only what the case keeps (data,
        params, case, decisions; a timer's ``now``, its state's entry) and give the same value
        each time."""
        if not isinstance(source, str):
            return  # the JSON Schema reported it
        expr = self._check_expression(source, path, None)
        if expr is None:
            return
        if path.endswith(".counted_from") and _BARE_FIELD.fullmatch(source.strip()):
            self.out.error(
                path,
                "counted-from-not-timestamp",
                f"counted_from {source.strip()!r} is a stored value, never a timestamp: case "
                "data and parameters hold instants as text.",
                f"Convert it: timestamp({source.strip()}).",
            )
        for name in sorted(expr.variables & refused):
            self.out.error(
                path,
                "expression-reads-transient",
                f"Expression reads {name}, which an SLA condition or a counted_from instant "
                "cannot read: it is evaluated again when a clock or timer is recomputed, and "
                "must give the same value.",
                "Read the case: data, params, case (id, state, created_at) and decisions; "
                "record what a payload brings in data with an action.",
            )

    def _check_rounds(
        self,
        sla: Mapping[str, Any],
        path: str,
        checked: Sequence[tuple[int, Mapping[str, Any], list[str]]],
    ) -> None:
        """``rounds: repeat`` whose start can happen only once (states that no transition
        enters, only the creation, and no trigger) runs once: say so, the author meant more."""
        start = sla.get("start")
        if not isinstance(start, dict) or start.get("triggers"):
            return
        entered = {
            str(t.get("dest")) for _, t, sources in checked if set(sources) - {t.get("dest")}
        }
        states = start.get("states")
        if isinstance(states, list) and states and entered.isdisjoint(map(str, states)):
            self.out.warning(
                f"{path}.rounds",
                "sla-rounds-once",
                f"SLA {sla.get('name')!r} repeats, but its start states "
                f"{', '.join(map(str, states))} are entered only when a case is created: "
                "it can have one round only.",
                "Start it on a state that transitions enter again, or on a trigger; or "
                "remove rounds: repeat.",
            )


# A counted_from that is only a data field or a parameter: JSON text, never a timestamp.
_BARE_FIELD = re.compile(r"(?:data|params)\s*\.\s*[A-Za-z_]\w*")
# What an SLA's ``when`` or ``counted_from`` cannot read: values the history does not keep.
CASE_EXPRESSION_REFUSED = frozenset({"payload", "now", "counters"})
# A timer's ``counted_from`` may read ``now``: its state's entry, kept on the case.
TIMER_EXPRESSION_REFUSED = frozenset({"payload", "counters"})


def validate(
    document: Any,
    *,
    known_calendars: Iterable[str] = BUILTIN_CALENDARS,
    calendars_complete: bool = False,
) -> ValidationReport:
    """Check a definition document; never raises for bad input, reports it.

    ``calendars_complete``: ``known_calendars`` are all the calendars there are (a database's,
    at publish), so a calendar not among them is an error; otherwise (a file checked offline)
    it is a warning."""
    out = ProblemList()
    if not isinstance(document, dict):
        out.error(
            "",
            "not-a-mapping",
            "A definition is a mapping with name, title, states, ...; "
            f"got {type(document).__name__}.",
            "See docs/definitions.md for a complete example.",
        )
        return ValidationReport(out.items)
    _structural(document, out)
    # The compact forms are checked as written; everything else on the full form, each problem
    # reported back at the element the author wrote.
    expansion = expand(document)
    out.items.extend(expansion.problems.items)
    calendars = frozenset(known_calendars) | BUILTIN_CALENDARS
    semantic = _Checker(expansion.document, calendars, calendars_complete=calendars_complete).run()
    # The structural pass already reports some things the semantic pass sees again (e.g. a bad
    # identifier); keep one problem per (path, code).
    seen = {(p.path, p.code) for p in out.items}
    written_problems = (expansion.written_problem(p) for p in semantic.items)
    out.items.extend(p for p in written_problems if (p.path, p.code) not in seen)
    return ValidationReport(out.items)


@dataclass(frozen=True)
class DurationUse:
    """A duration measured on a calendar: a timer's ``after`` or an SLA's ``target``."""

    path: str
    duration: DurationValue
    calendar: CalendarValue


def duration_uses(definition: WorkflowDefinition) -> list[DurationUse]:
    """Every timer ``after`` and SLA ``target`` of ``definition`` with its calendar."""
    uses = [
        DurationUse(
            f"{timer.path}.after", timer.after, CalendarValue(timer.calendar, timer.calendar_param)
        )
        for state in definition.states
        for timer in state.timers
        if timer.after is not None
    ]
    uses += [
        DurationUse(
            f"{sla.path}.target",
            sla.target,
            CalendarValue(None if sla.calendar_param else sla.calendar, sla.calendar_param),
        )
        for sla in definition.slas
    ]
    return uses


def parameter_problems(
    definition: WorkflowDefinition, params: Mapping[str, Any], parameter: str
) -> list[tuple[DurationUse, CalendarMismatch]]:
    """Where ``parameter`` (a duration or a calendar) takes part in measuring a duration
    that cannot be measured that way with ``params``: the rule literals follow
    (:func:`~engine.core.durations.calendar_problem`), for a deployment's overrides."""
    found: list[tuple[DurationUse, CalendarMismatch]] = []
    for use in duration_uses(definition):
        if parameter not in (use.duration.param, use.calendar.param):
            continue
        text = use.duration.literal
        if use.duration.param is not None:
            text = params.get(use.duration.param)
        if not isinstance(text, str):
            continue  # an expression: its value is known only when a case runs
        try:
            duration: Duration = parse_duration(text)
        except DurationInvalid:
            continue  # a bad duration is refused where it is set
        problem = calendar_problem(duration, use.calendar.name(params))
        if problem is not None:
            found.append((use, problem))
    return found


def validate_text(
    text: str,
    origin: str = "<definition>",
    *,
    known_calendars: Iterable[str] = BUILTIN_CALENDARS,
    calendars_complete: bool = False,
) -> tuple[Any, ValidationReport]:
    """Read and check definition text: the document, and every problem with its element path,
    line and column. Raises :class:`DefinitionSourceError` only for text that is not YAML."""
    document = parse_source(text, origin)
    report = validate(
        document, known_calendars=known_calendars, calendars_complete=calendars_complete
    )
    return document, report.located(locate(text))


def load_definition(
    document: Any,
    *,
    version: int | None = None,
    known_calendars: Iterable[str] = BUILTIN_CALENDARS,
) -> WorkflowDefinition:
    """Validate and build; raise :class:`DefinitionInvalid` listing every error."""
    report = validate(document, known_calendars=known_calendars)
    if not report.ok:
        name = document.get("name") if isinstance(document, dict) else None
        raise DefinitionInvalid(name if isinstance(name, str) else None, report.problems)
    return build_definition(document, version=version)
