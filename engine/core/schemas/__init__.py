"""JSON Schemas: the definition format's own schema, :class:`SchemaCheck`, the validator the
engine runs on every create and fire, and :func:`error_text`, what its errors say."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema
import jsonschema
from rfc3339_validator import validate_rfc3339

from engine.core.schemas.patterns import LinearValidator
from engine.errors import written

# Keywords whose meaning is the same in draft-07 (what fastjsonschema implements) and draft
# 2020-12 (what svcflow documents and jsonschema checks). Not ``pattern``: fastjsonschema
# matches it with Python's backtracking ``re`` (engine/core/schemas/patterns.py).
_SHARED_KEYWORDS = frozenset(
    {
        "$schema",
        "title",
        "description",
        "default",
        "examples",
        "type",
        "enum",
        "const",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "properties",
        "required",
        "additionalProperties",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "format",
    }
)


#: The formats svcflow asserts in payload and data schemas. ``date-time`` is RFC 3339's
#: (``2025-09-30T10:20:00+08:00``, ``...Z``), the form CEL's ``timestamp()`` reads: a date
#: alone or a word stored as an instant fails later, in a guard or a timer, far from the
#: request that brought it. Other formats stay annotations, as draft 2020-12 has them.
ASSERTED_FORMATS: dict[str, Callable[[str], bool]] = {"date-time": validate_rfc3339}
VALUE_FORMATS = jsonschema.FormatChecker(formats=())
for _name, _check in ASSERTED_FORMATS.items():
    VALUE_FORMATS.checks(_name)(
        lambda value, check=_check: not isinstance(value, str) or check(value)
    )


def _shared_only(schema: Any) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, Mapping) or not set(schema) <= _SHARED_KEYWORDS | {"items"}:
        return False
    nested: list[Any] = list(schema.get("properties", {}).values())
    for key in ("additionalProperties", "items"):
        if key in schema:
            nested.append(schema[key])
    if isinstance(schema.get("items"), list):  # tuple form differs between the drafts
        return False
    return all(_shared_only(sub) for sub in nested)


class SchemaCheck:
    """Validates values against a draft 2020-12 schema.

    jsonschema is the authority and writes the error messages, but it is slow for the small
    schemas checked on every fire. When a schema uses only keywords both drafts agree on, a
    fastjsonschema-compiled function answers "valid" first; only a value it rejects is passed
    to jsonschema, whose verdict stands. Both assert the formats in :data:`ASSERTED_FORMATS`
    with the same function (fastjsonschema also checks some others jsonschema then accepts).
    So the fast path can only skip work, never change an answer.

    Patterns are matched on RE2 only, in linear time (:mod:`engine.core.schemas.patterns`).
    """

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        self._full: jsonschema.protocols.Validator = LinearValidator(
            schema, format_checker=VALUE_FORMATS
        )
        self._fast: Callable[[Any], Any] | None = None
        if _shared_only(schema):
            try:
                # fastjsonschema takes a dict; the top-level copy shares the nested schemas.
                self._fast = fastjsonschema.compile(
                    schema if isinstance(schema, bool) else dict(schema),
                    formats=ASSERTED_FORMATS,
                )
            except fastjsonschema.JsonSchemaDefinitionException:
                self._fast = None

    def errors(self, value: Any) -> list[jsonschema.ValidationError]:
        if self._fast is not None:
            try:
                self._fast(value)
                return []
            except fastjsonschema.JsonSchemaValueException:
                pass
        return list(self._full.iter_errors(value))


def error_text(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, with the values it quotes spelled as JSON.

    jsonschema quotes the offending value and the schema's own values with Python's repr:
    ``None is not of type 'string'``, ``{'a': 1} is not of type 'string'``. The people who
    read it sent JSON or wrote YAML, so they read ``null is not of type "string"``. Property
    names (``'customer' is a required property``) are names, and keep jsonschema's text."""
    keyword, instance, expected = error.validator, error.instance, error.validator_value
    if keyword == "type":
        types = expected if isinstance(expected, list) else [expected]
        return f"{written(instance)} is not of type {', '.join(map(written, types))}"
    if keyword == "enum":
        return f"{written(instance)} is not one of {written(expected)}"
    if keyword == "const":
        return f"{written(expected)} was expected, not {written(instance)}"
    text = error.message
    if keyword in ("required", "additionalProperties", "dependentRequired"):
        return text
    shown = repr(instance)
    if text.startswith(shown):
        text = written(instance) + text[len(shown) :]
    if repr(expected) != written(expected):
        text = text.replace(repr(expected), written(expected))
    return text
