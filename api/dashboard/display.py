"""How values read on the pages: local time (the deployment's zone, SVCFLOW_TIMEZONE, Beijing
time by default), durations, shares, and workflow labels in the reader's language (the
definitions' own ``title.zh`` / ``title.en``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from api.dashboard import i18n
from engine.core.definition import WorkflowDefinition
from engine.core.labels import Label
from engine.core.local_time import DEFAULT_TIMEZONE

ZONE = ZoneInfo(DEFAULT_TIMEZONE)  # the KPI board's default month (kpiboard.py)
DASH = "—"


def local_time(value: datetime | str | None, zone: tzinfo = ZONE) -> str:
    """An instant as wall time in ``zone``, to the minute (stored instants are UTC); the
    page's footer names the zone (:func:`times_note`)."""
    if value is None or value == "":
        return DASH
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        value = parsed
    if value.tzinfo is None:  # SQLite hands back naive UTC in some paths
        value = value.replace(tzinfo=ZoneInfo("UTC"))
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def times_note(zone: ZoneInfo, now: datetime, lang: str) -> str:
    """The footer that says which zone the page's times are in (Beijing time by default)."""
    if zone.key == DEFAULT_TIMEZONE:
        return i18n.translate("times_note", lang)
    offset = now.astimezone(zone).isoformat()[-6:]
    return i18n.translate("times_note_zone", lang, zone=zone.key, offset=offset)


def duration(value: timedelta | float | None, lang: str) -> str:
    """``2 d 3 h`` / ``2天3小时``: the two largest units, which is what a reader compares."""
    if value is None:
        return DASH
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else value)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    units = (("d", "天", 86400), ("h", "小时", 3600), ("min", "分钟", 60))
    parts: list[str] = []
    for en, zh, size in units:
        amount, seconds = divmod(seconds, size)
        if amount or (parts and len(parts) < 2):
            parts.append(f"{amount}{zh}" if lang == "zh" else f"{amount} {en}")
        if len(parts) == 2:
            break
    if not parts:
        return "0分钟" if lang == "zh" else "0 min"
    return sign + ("" if lang == "zh" else " ").join(parts)


def share(value: float | None, digits: int = 2) -> str:
    """0.995 -> ``99.5%`` (trailing zeros dropped: targets like 99.5% read as written)."""
    if value is None:
        return DASH
    text = f"{value * 100:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text}%"


def label(value: Label | None, lang: str, fallback: str) -> str:
    if value is None:
        return fallback
    return (value.zh if lang == "zh" else value.en) or fallback


def definition_title(definition: WorkflowDefinition, lang: str) -> str:
    return label(definition.title, lang, definition.name)


def state_title(definition: WorkflowDefinition, state: str | None, lang: str) -> str:
    if state is None:
        return DASH
    try:
        return label(definition.state(state).title, lang, state)
    except KeyError:  # a state of an older version, or a name from outside
        return state


def sla_title(definition: WorkflowDefinition, sla: str, lang: str) -> str:
    spec = next((s for s in definition.slas if s.name == sla), None)
    return label(spec.title if spec else None, lang, sla)


def trigger_title(definition: WorkflowDefinition, trigger: str | None, lang: str) -> str:
    if trigger is None:
        return DASH
    titled = next(
        (t.title for t in definition.transitions if t.trigger == trigger and t.title is not None),
        None,
    )
    text = label(titled, lang, trigger)
    return text if text == trigger else f"{text} ({trigger})"


def compact(value: Any) -> str:
    """A data value on one line: lists and objects as short JSON-like text."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {compact(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_title(definition: WorkflowDefinition, name: str, lang: str) -> str:
    """A payload or data field's label from the definition's ``fields`` glossary; its name
    where the glossary has none."""
    entry = definition.fields.get(name)
    return label(entry.title if entry else None, lang, name)


def field_value(definition: WorkflowDefinition, name: str | None, value: Any, lang: str) -> Any:
    """An enum value of field ``name`` as the glossary labels it (``emergency`` -> 紧急);
    any other value as it is."""
    entry = definition.fields.get(name) if name else None
    if entry is None or not isinstance(value, str) or value not in entry.values:
        return value
    return label(entry.values[value], lang, value)


def field_text(definition: WorkflowDefinition, name: str, value: Any, lang: str) -> str:
    """A field's value on one line in the reader's language: an enum value by its label, a
    clock's name (the ``sla`` of a recorded breach) by the SLA's title, and each field of a
    record (a replaced part, a breach) by its label, as the glossary gives them."""
    if isinstance(value, dict):
        return ", ".join(
            f"{field_title(definition, str(k), lang)}: {field_text(definition, str(k), v, lang)}"
            for k, v in value.items()
        )
    if isinstance(value, list):
        return "[" + ", ".join(field_text(definition, name, v, lang) for v in value) + "]"
    if name == "sla" and isinstance(value, str):
        return sla_title(definition, value, lang)
    return compact(field_value(definition, name, value, lang))


def labelled_fields(
    definition: WorkflowDefinition, values: Mapping[str, Any], lang: str
) -> list[tuple[str, str, Any, str]]:
    """Each field of ``values`` (case data, an event's changes or payload) as ``(name, label,
    value, text)``: the label and the value's text in the reader's language."""
    return [
        (key, field_title(definition, key, lang), value, field_text(definition, key, value, lang))
        for key, value in values.items()
    ]


def field_choices(
    definition: WorkflowDefinition, name: str | None, lang: str
) -> list[tuple[str, str]]:
    """The labelled values of field ``name`` where the glossary labels them: a filter's
    options. Empty for a field with free text."""
    entry = definition.fields.get(name) if name else None
    if entry is None:
        return []
    return [(value, label(text, lang, value)) for value, text in entry.values.items()]
