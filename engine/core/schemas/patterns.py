"""Regular expressions in definitions' JSON Schemas, run on RE2: linear time, always.

``pattern``, ``patternProperties`` (and ``additionalProperties`` beside it, which matches the
same patterns) are checked on every create and fire, against text a caller sends, while the
write transaction is open. On Python's backtracking ``re``, ``pattern: '^(a+)+$'`` took 17.5 s
for one fire, doubling per character sent. RE2 (google-re2) guarantees time linear in the
text for every pattern it accepts; what it does not accept (backreferences, lookaround) is
refused when the definition is validated, with the pattern and its element path.

Why not refuse "dangerous" patterns and keep ``re``: no check recognises every pattern that
backtracks exponentially, while RE2 makes the question moot. Why not jsonschema's own
keywords with a different ``re``: they call ``re.search`` directly, so the keywords that
match patterns are re-implemented here on RE2 (same messages), and fastjsonschema (which
compiles patterns with ``re``) is not used for schemas that have any
(:mod:`engine.core.schemas`).

RE2's syntax is close to ECMA 262's, which JSON Schema specifies: ``\\d`` and ``\\w`` are
ASCII (as in ECMA 262), ``$`` matches only at the very end (Python's also before a final
newline), ``\\p{Han}`` selects Chinese characters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import jsonschema
import re2
from jsonschema.exceptions import ValidationError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would also print every refused pattern on stderr


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern, _OPTIONS)


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 cannot run ``pattern`` (its own words), or None when it can."""
    try:
        _compiled(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    return None


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text``, on RE2.

    A pattern RE2 cannot compile is refused at validation; one stored before that rule
    raises :class:`ValueError`, which the validators below turn into a validation error."""
    try:
        regex = _compiled(pattern)
    except re2.error as exc:
        raise ValueError(pattern_problem(pattern) or str(exc)) from exc
    return regex.search(text) is not None


def _unusable(pattern: str, problem: str) -> ValidationError:
    return ValidationError(
        f"pattern {pattern!r} cannot be checked on the linear-time regex engine: {problem}"
    )


# --- the keywords that match patterns, on RE2 ---------------------------------------------------


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        matched = search(pattern, instance)
    except ValueError as exc:
        yield _unusable(pattern, str(exc))
        return
    if not matched:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            try:
                matched = search(pattern, key)
            except ValueError as exc:
                yield _unusable(pattern, str(exc))
                break
            if matched:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _extras(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = []
    for key in instance:
        if key in properties:
            continue
        try:
            if any(search(p, key) for p in patterns):
                continue
        except ValueError:
            pass  # patternProperties reports the pattern itself
        extras.append(key)
    return extras


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """jsonschema's ``additionalProperties``, with its extras found on RE2."""
    if not validator.is_type(instance, "object"):
        return
    extras = _extras(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            listed = ", ".join(repr(each) for each in sorted(extras, key=str))
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({listed} {verb} unexpected)"
            )


#: Draft 2020-12, with every keyword that matches a pattern against a value on RE2.
#: ``unevaluatedProperties`` also matches ``patternProperties`` (with ``re``); a schema that
#: has both is refused at validation (:func:`unmatchable_keywords`).
LinearValidator: Any = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    validators={
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


def _is_regex(instance: object) -> bool:
    return not isinstance(instance, str) or pattern_problem(instance) is None


#: Checks ``format: regex`` on RE2: the meta-schema says every ``pattern`` and every
#: ``patternProperties`` key has that format, so checking a schema against it with this
#: checker finds every pattern RE2 cannot run, each at its place in the schema.
REGEX_FORMAT = jsonschema.FormatChecker(formats=())
REGEX_FORMAT.checks("regex")(_is_regex)


def unmatchable_keywords(schema: Any) -> bool:
    """Whether ``schema`` has both ``unevaluatedProperties`` and ``patternProperties``
    somewhere (jsonschema matches those patterns with ``re``; nothing else does)."""
    seen: set[str] = set()
    stack = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            seen |= {"unevaluatedProperties", "patternProperties"} & item.keys()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return len(seen) == 2
