"""Fire forms generated from a transition's ``payload_schema``: one input per declared field,
of the field's type (text, date and time, number, yes/no, a choice of its enum; anything
else as JSON), so a supervisor fires ``dispatch`` by typing an engineer's name instead of
writing ``{"engineer": "..."}``. Each field and each choice is labelled in the reader's
language from the definition's ``fields`` glossary (its raw name where the glossary has
none). The form's values are turned back into the payload by the
same field list; the engine still validates the payload against its schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from engine.core.definition import WorkflowDefinition
from engine.core.labels import FieldLabel
from engine.errors import FormError

PREFIX = "p."  # form names of payload fields


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text | datetime | integer | number | boolean | choice | json
    required: bool
    label: str
    choices: tuple[tuple[str, str], ...] = ()  # (value, its label)


def payload_schema(definition: WorkflowDefinition, state: str, trigger: str) -> Mapping[str, Any]:
    """The schema of the transition ``trigger`` takes from ``state`` (the first, as the
    machine tries them), or an empty one."""
    for transition in definition.transitions:
        if transition.trigger == trigger and state in transition.sources:
            return transition.payload_schema or {}
    return {}


def _kind(schema: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    if "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        return "choice", tuple(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return ("datetime" if schema.get("format") == "date-time" else "text"), ()
    if kind in ("integer", "number", "boolean"):
        return str(kind), ()
    return "json", ()


def fields_of(
    schema: Mapping[str, Any],
    glossary: Mapping[str, FieldLabel] | None = None,
    lang: str = "en",
) -> list[Field]:
    """The form's fields, labelled in ``lang`` from ``glossary`` (a definition's ``fields``);
    a field it lacks is labelled by its schema ``title``, else its name."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    out = []
    for name, declared in properties.items():
        spec = declared if isinstance(declared, Mapping) else {}
        kind, values = _kind(spec)
        entry = (glossary or {}).get(str(name))
        if entry is not None:
            label = entry.title.zh if lang == "zh" else entry.title.en
        else:
            label = str(spec.get("title") or spec.get("description") or name)
        named = entry.values if entry is not None else {}
        choices = tuple(
            (v, (named[v].zh if lang == "zh" else named[v].en) if v in named else v) for v in values
        )
        out.append(Field(str(name), kind, name in required, label, choices))
    return out


def payload_from(fields: list[Field], form: Mapping[str, str], zone: tzinfo) -> dict[str, Any]:
    """The payload the form's values mean; a value that is not of its field's type is a
    :class:`FormError` naming the field."""
    payload: dict[str, Any] = {}
    for field in fields:
        raw = (form.get(PREFIX + field.name) or "").strip()
        if not raw:
            continue  # left empty: not sent (the schema says whether it was required)
        try:
            payload[field.name] = _value(field, raw, zone)
        except (ValueError, OverflowError) as exc:
            raise FormError(
                f"{field.label} ({field.name}): {raw!r} is not a {field.kind} value.",
                hint="Correct the field and send the form again.",
                field=field.name,
            ) from exc
    return payload


def _value(field: Field, raw: str, zone: tzinfo) -> Any:
    if field.kind == "integer":
        return int(raw)
    if field.kind == "number":
        return float(raw)
    if field.kind == "boolean":
        if raw not in ("true", "false"):
            raise ValueError(raw)
        return raw == "true"
    if field.kind == "datetime":
        wall = datetime.fromisoformat(raw)
        instant = wall.replace(tzinfo=zone) if wall.tzinfo is None else wall
        return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if field.kind == "json":
        return json.loads(raw)
    return raw
