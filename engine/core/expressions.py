"""CEL expressions in definitions: guards, action values, timer instants.

Expressions are compiled once per definition version (see :mod:`engine.core.machine`) with the
``common-expression-language`` bindings: CEL cannot run code, loop forever or touch the host,
which is why definitions written by process owners may contain it and never Python.

Every expression sees the same variables:

``data``     the case data (a map)
``payload``  the trigger's payload (a map; empty on case creation and timers without payload)
``params``   the definition's parameters after deployment overrides
``now``      the engine clock's instant (a CEL timestamp), never the wall clock
``counters`` the definition's declared cross-case counters, as read in this transaction
``case``     the case itself: ``id``, ``definition``, ``state`` (``id`` is 0 before creation)
           and ``created_at`` (a timestamp: when it was created, i.e. reported)
``decisions`` the values of the definition's decision tables (engine/core/decisions.py), each
           decided when an expression reads it

and may call the business-time functions of :mod:`engine.core.business_time` (working days,
working time, calendar months) on the calendars its caller hands :func:`make_context`.

The CEL bindings report which *variables* an expression reads but not which fields; the
validator needs the fields (``data.priority``) to check them against the data schema, so
:func:`field_references` finds them in the source with string literals blanked out.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import cel
from cachetools import LRUCache

from engine.core.business_time import FUNCTION_NAMES, bind, builtin_calendars
from engine.core.calendar import BusinessCalendar
from engine.core.expression_budget import check_budget
from engine.errors import ExpressionError

ROOT_VARIABLES = frozenset({"data", "payload", "params", "now", "counters", "case", "decisions"})
# the variables that are maps, handed to an expression with only the fields it reads
_MAPS = frozenset({"data", "payload", "params", "counters", "decisions"})
# Where make_context keeps the calendars for the business-time functions: not an identifier,
# so no expression can read it as a variable.
CALENDARS_KEY = "@calendars"

# String literals (raw/bytes prefixes, triple or single quoted) blanked before scanning for
# field references, so that "data.x" inside a string does not count as a read of data.x.
_STRING = re.compile(
    r"""(?:[rRbB]{0,2})("""
    r"""'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^\\'])*'|"(?:\\.|[^\\"])*\""""
    r""")""",
    re.DOTALL,
)
_FIELD = re.compile(r"(?<![\w.])(data|payload|params|counters|decisions)\s*\.\s*([A-Za-z_]\w*)")
_INDEXED = re.compile(
    r"(?<![\w.])(data|payload|params|counters|decisions)\s*\[\s*(['\"])([^'\"]+)\2\s*\]"
)
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_DATA = re.compile(r"(?<![\w.])data(?!\w)")


@dataclass(frozen=True)
class FieldRef:
    root: str
    field: str


def _blank_strings(source: str) -> str:
    return _STRING.sub(lambda m: '""', source)


def field_references(source: str) -> set[FieldRef]:
    """The top-level fields of ``data``, ``payload``, ``params``, ``counters`` and
    ``decisions`` (the tables) an expression reads."""
    # Indexed reads are matched on the original text (their key is itself a string literal), so
    # skip those whose root lies inside another string literal ("see data['x']").
    strings = [m.span() for m in _STRING.finditer(source)]
    refs = {
        FieldRef(m.group(1), m.group(3))
        for m in _INDEXED.finditer(source)
        if not any(start <= m.start() < end for start, end in strings)
    }
    refs |= {FieldRef(m.group(1), m.group(2)) for m in _FIELD.finditer(_blank_strings(source))}
    return refs


def fields_read(source: str, root: str) -> frozenset[str] | None:
    """The top-level fields of ``root`` (``data``, ``payload``, ``params``, ``counters``) an
    expression reads, or None when it reads ``root`` in a way that names no field
    (``data[x]`` with a computed key, ``size(data)``, ``data`` handed to a macro)."""
    blanked = _blank_strings(source)
    uses = len(re.findall(rf"(?<![\w.]){root}(?!\w)", blanked))
    strings = [m.span() for m in _STRING.finditer(source)]
    named = [m.group(2) for m in _FIELD.finditer(blanked) if m.group(1) == root]
    named += [
        m.group(3)
        for m in _INDEXED.finditer(source)
        if m.group(1) == root and not any(a <= m.start() < b for a, b in strings)
    ]
    return frozenset(named) if uses == len(named) else None


def data_fields_read(source: str) -> frozenset[str] | None:
    """The top-level fields of ``data`` an expression reads (see :func:`fields_read`)."""
    return fields_read(source, "data")


class Expression:
    """A compiled CEL expression tied to the definition element that holds it."""

    __slots__ = ("_program", "_reads", "business_functions", "path", "source", "variables")

    def __init__(self, source: str, path: str) -> None:
        self.source = source
        self.path = path
        check_budget(source, path)  # before compiling: the compiler recurses in Rust
        try:
            self._program = cel.compile(source)
        except (ValueError, TypeError) as exc:
            raise ExpressionError(
                f"CEL expression at {path} does not compile: {_first_line(exc)}",
                hint="Check the CEL syntax; strings need quotes, "
                "e.g. data.priority == 'emergency'.",
                path=path,
                expression=source,
            ) from exc
        bound = set(_MACRO_VAR.findall(source))
        self.variables = frozenset(set(self._program.variables()) - bound)
        # The business-time functions it calls: bound to calendars at evaluation, and only
        # then (an expression that calls none is executed on a plain dict, as before).
        self.business_functions = frozenset(set(self._program.functions()) & FUNCTION_NAMES)
        # What it reads of each variable: the fields of a map (None: the whole of it). CEL
        # converts every value it is handed, and a case's whole data, parameters and payload
        # cost ten times the evaluation itself; it is handed only what it reads.
        self._reads: dict[str, frozenset[str] | None] = {
            name: fields_read(source, name) if name in _MAPS else None for name in self.variables
        }

    @property
    def data_fields(self) -> frozenset[str] | None:
        """The ``data`` fields it reads, or None when it reads ``data`` in a way that names
        no field (then any change of the data may change its value)."""
        return self._reads.get("data", frozenset())

    def unknown_variables(self) -> set[str]:
        return set(self.variables - ROOT_VARIABLES)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """Evaluate against a context built by :func:`make_context`; errors name the element."""
        given: dict[str, Any] = {}
        for name, fields in self._reads.items():
            if name not in context:
                continue
            value = context[name]
            if fields is not None and isinstance(value, Mapping):
                value = {f: value[f] for f in fields if f in value}
            given[name] = value
        if self.business_functions:
            return self._evaluate_with_calendars(given, context.get(CALENDARS_KEY))
        try:
            return self._program.execute(given)
        except KeyError as exc:
            raise ExpressionError(
                f"Expression at {self.path} reads {exc.args[0]!r}, which is not set.",
                hint="Guard optional fields with has(), e.g. has(data.x) && data.x > 1.",
                path=self.path,
                expression=self.source,
            ) from exc
        except Exception as exc:  # the CEL runtime raises several builtin types
            raise ExpressionError(
                f"Expression at {self.path} failed: {_first_line(exc)}",
                hint="Check the types of the values it combines; CEL does not coerce int/double.",
                path=self.path,
                expression=self.source,
            ) from exc

    def _evaluate_with_calendars(
        self, given: dict[str, Any], calendars: Mapping[str, BusinessCalendar] | None
    ) -> Any:
        functions, found = bind(calendars if calendars is not None else builtin_calendars())
        try:
            return self._program.execute(cel.Context(variables=given, functions=functions))
        except Exception as exc:  # the CEL runtime wraps what a function raised
            if found.error is not None:
                raise ExpressionError(
                    f"Expression at {self.path} failed: {found.error.message}",
                    hint=found.error.hint,
                    path=self.path,
                    expression=self.source,
                ) from exc
            raise ExpressionError(
                f"Expression at {self.path} failed: {_first_line(exc)}",
                hint="Check the types of the values it combines; CEL does not coerce "
                "int/double. Business-time functions: docs/definitions.md.",
                path=self.path,
                expression=self.source,
            ) from exc

    def __repr__(self) -> str:
        return f"Expression({self.source!r}, path={self.path!r})"


# Expressions compiled outside a compiled machine (SLA targets, timer instants, a parent's
# business key) are compiled once per process, not on every use: a compilation costs more
# than an evaluation. Keyed by source and path (errors name the path); bounded.
_COMPILED: LRUCache[tuple[str, str], Expression] = LRUCache(maxsize=2048)
_COMPILED_LOCK = threading.Lock()


def compiled(source: str, path: str) -> Expression:
    """The :class:`Expression` for ``source`` at ``path``, compiled once per process (a
    source that does not compile raises every time, as a fresh compilation would)."""
    key = (source, path)
    with _COMPILED_LOCK:
        found = _COMPILED.get(key)
    if found is None:
        found = Expression(source, path)  # outside the lock: two compilations are harmless
        with _COMPILED_LOCK:
            found = _COMPILED.setdefault(key, found)
    return found


class DecisionSource(Protocol):
    """A definition's decision tables (:class:`engine.core.decisions.Decisions`), which decide
    their values in an expression's context."""

    def values_in(self, context: Mapping[str, Any]) -> Mapping[str, Any]: ...


def make_context(
    data: Mapping[str, Any],
    payload: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    *,
    counters: Mapping[str, int] | None = None,
    case: Mapping[str, Any] | None = None,
    decisions: DecisionSource | None = None,
    calendars: Mapping[str, BusinessCalendar] | None = None,
) -> dict[str, Any]:
    """The variables an expression sees. ``decisions``: the definition's tables, read as
    ``decisions.<name>`` (a definition's expressions must be given its tables);
    ``calendars``: those the business-time functions may use (None: the built-in ones, as a
    pure caller without a database has)."""
    if now.tzinfo is None:
        raise ExpressionError(
            "The engine clock gave a naive datetime.", hint="Pass aware UTC datetimes."
        )
    context: dict[str, Any] = {
        "data": dict(data),
        "payload": dict(payload),
        "params": dict(params),
        "now": now,
        "counters": dict(counters or {}),
        # A case not yet created (its creation's guards and keys) is created now.
        "case": {"id": 0, "definition": "", "state": "", "created_at": now, **(case or {})},
        CALENDARS_KEY: calendars,
    }
    context["decisions"] = decisions.values_in(context) if decisions is not None else {}
    return context


def to_json_value(value: Any, path: str) -> Any:
    """Convert a CEL result into a JSON value for case data.

    Timestamps become ISO 8601 UTC strings and durations a number of seconds, so case data
    stays plain JSON in the database and in the API.
    """
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or Infinity; PostgreSQL's jsonb refuses them at commit time.
        raise ExpressionError(
            f"Expression at {path} produced {value}, which JSON cannot represent.",
            hint="Guard the division, e.g. data.b != 0.0 ? data.a / data.b : 0.0.",
            path=path,
        )
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, list | tuple):
        return [to_json_value(v, path) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v, path) for k, v in value.items()}
    raise ExpressionError(
        f"Expression at {path} produced a {type(value).__name__}, which cannot be stored.",
        hint="Produce a string, number, boolean, list, map, timestamp or duration.",
        path=path,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
