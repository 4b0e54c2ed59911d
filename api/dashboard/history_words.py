"""A case's history, timers and actors as the case page says them, in the reader's language.

What the engine records is data with English keys (``sla``, ``due_at``, ``timer_id``) and
sentences (a timer's error, why a failed timer was dismissed, why a parent did not take a
child's news). A page labels the keys (:data:`PAYLOAD_WORDS`, or the definition's ``fields``
glossary for a trigger's own payload), shows values as it shows them elsewhere (an SLA by its
title, an instant in local time) and says the sentences from their codes (message_words.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import tzinfo
from typing import Any

from markupsafe import Markup, escape

from api.dashboard import display, i18n, message_words
from engine.core.definition import WorkflowDefinition
from engine.core.messages import PAYLOAD_KEY, from_stored
from engine.core.records import EventRecord
from engine.store.models import EventType, TimerStatus

# Keys the engine writes into events' payloads (the keys of a trigger's own payload are the
# definition's fields, labelled by its glossary).
PAYLOAD_WORDS: dict[str, Mapping[str, str]] = {
    "sla": {"en": "SLA", "zh": "时限"},
    "round": {"en": "round", "zh": "轮次"},
    "fraction": {"en": "warning at", "zh": "预警线"},
    "due_at": {"en": "due", "zh": "截止"},
    "resume_at": {"en": "resumes at", "zh": "自动恢复于"},
    "timer_id": {"en": "timer", "zh": "定时器"},
    "child_id": {"en": "child case", "zh": "下级工单"},
    "parent_id": {"en": "parent case", "zh": "上级工单"},
    "child_definition": {"en": "child workflow", "zh": "下级流程"},
    "child_state": {"en": "child's state", "zh": "下级工单状态"},
    "action": {"en": "spawned by", "zh": "创建位置"},
    "trigger": {"en": "trigger", "zh": "触发"},
    "field": {"en": "field", "zh": "字段"},
    "from": {"en": "from", "zh": "原值"},
    "to": {"en": "to", "zh": "新值"},
    "from_version": {"en": "from version", "zh": "原版本"},
    "to_version": {"en": "to version", "zh": "新版本"},
    "state_map": {"en": "states", "zh": "状态映射"},
    "params": {"en": "parameters", "zh": "参数"},
    "set": {"en": "data set", "zh": "设置的数据"},
    "dropped": {"en": "fields dropped", "zh": "删除的字段"},
}
INSTANTS = frozenset({"due_at", "resume_at"})
NAMES = frozenset({"child_definition", "child_state", "action", "field"})
CASE_LINKS = frozenset({"child_id", "parent_id"})

TIMER_KINDS: dict[str, Mapping[str, str]] = {
    "after": {"en": "after a delay", "zh": "延时"},
    "at": {"en": "at a time", "zh": "定时"},
    "every": {"en": "repeating", "zh": "周期"},
    "sla_warning": {"en": "SLA warning", "zh": "时限预警"},
    "sla_breached": {"en": "SLA breach", "zh": "时限超时"},
    "sla_resume": {"en": "end of a pause", "zh": "暂停结束"},
}

# The engine's own actors (engine/core/machine.py Actor.system, links.case_actor).
ACTORS: dict[str, Mapping[str, str]] = {
    "timer": {"en": "timer (svcflow)", "zh": "定时器（系统）"},
    "system": {"en": "svcflow", "zh": "系统"},
}
CASE_ACTOR = {"en": "case {id} (svcflow)", "zh": "工单 {id}（系统）"}


def actor(name: str, lang: str) -> str:
    """A person's or token's name as it is; the engine's actors in the reader's words."""
    if name in ACTORS:
        return i18n.pick(ACTORS, name, lang)
    prefix, _, case_id = name.partition(":")
    if prefix == "case" and case_id.isdigit():
        return CASE_ACTOR.get(lang, CASE_ACTOR["en"]).format(id=case_id)
    return name


def timer_kind(definition: WorkflowDefinition, kind: str, sla: str | None, lang: str) -> str:
    said = i18n.pick(TIMER_KINDS, kind, lang)
    if sla:
        title = display.sla_title(definition, sla, lang)
        return f"{said}（{title}）" if lang == "zh" else f"{said} ({title})"
    return said


def timer_failure(timer: Any, lang: str, zone: tzinfo) -> Markup:
    """A timer row's last error, and its note once it stopped trying (``timers.failure``;
    a row failed before it was kept has only its English ``last_error``)."""
    failure = timer.failure if isinstance(timer.failure, dict) else {}
    said = message_words.timer_failure(
        timer=timer.name,
        attempt=timer.attempts,
        stored_error=failure.get("error"),
        text=timer.last_error,
        retry_at=None if timer.status == TimerStatus.FAILED.value else timer.deliver_at,
        lang=lang,
        local_time=lambda at: display.local_time(at, zone),
    )
    note = from_stored(failure.get("note"))
    if note is None:
        return said
    return Markup("{said}<br><small>{note}</small>").format(
        said=said, note=message_words.say(note, lang)
    )


def refusal(news: Mapping[str, Any], lang: str) -> Markup:
    """Why a parent did not take a child's news (a ``child_update`` event's payload, or the
    wait it left): said by its error code; older rows keep only the code and the text."""
    stored = (news.get(PAYLOAD_KEY) or {}).get("reason")
    if from_stored(stored) is not None:
        return message_words.say_stored(stored, None, lang)
    record = {"code": news.get("not_fired"), "message": str(news.get("reason") or "")}
    return message_words.error(record, lang)


def event_row(
    definition: WorkflowDefinition, e: EventRecord, lang: str, zone: tzinfo
) -> dict[str, Any]:
    """What the case page shows of one event of its history."""
    payload = dict(e.payload or {})
    said = payload.pop(PAYLOAD_KEY, None) or {}
    titles = message_words.Titles(
        state=lambda name: display.state_title(definition, name, lang),
        new_state=lambda name: display.state_title(definition, name, lang),
        trigger=lambda name: display.trigger_title(definition, name, lang),
    )
    note = _note(e, payload, lang, zone)
    reason: Any = payload.pop("reason", None) or (e.context or {}).get("reason")
    if "reason" in said:  # a reason the engine wrote, not a person
        reason = message_words.say_stored(said["reason"], reason, lang, titles)
    if e.event_type == EventType.TIMER_FAILED.value:  # the sentence says all of it
        payload, reason = {}, None
    elif note is not None:  # a refusal: its reason is the sentence, the child stays linked
        payload.pop("not_fired", None)
        reason = None
    elif "why" in payload:
        note = message_words.say_stored(said.get("why"), payload.pop("why"), lang, titles)
    moved = e.from_state != e.to_state
    return {
        "seq": e.seq,
        "at": e.at,
        "type": e.event_type,
        "trigger": display.trigger_title(definition, e.trigger, lang) if e.trigger else None,
        "from": display.state_title(definition, e.from_state, lang) if e.from_state else None,
        "to": display.state_title(definition, e.to_state, lang),
        "moved": moved,
        "actor": actor(e.actor, lang),
        "changes": display.labelled_fields(definition, e.changes or {}, lang),
        "reason": reason,
        "note": note,
        "payload": [_entry(definition, key, value, lang, zone) for key, value in payload.items()],
        # A fact reported late: when it happened and when svcflow heard of it.
        "reported_at": (e.context or {}).get("reported_at"),
        "received_at": (e.context or {}).get("received_at"),
        "counted_because": (e.context or {}).get("counted_because"),
    }


def _note(e: EventRecord, payload: Mapping[str, Any], lang: str, zone: tzinfo) -> Markup | None:
    """Events whose payload the engine writes to say one thing: that thing, as a sentence."""
    if e.event_type == EventType.TIMER_FAILED.value:
        return message_words.timer_failure(
            timer=str(payload.get("timer") or payload.get("timer_id") or ""),
            attempt=int(payload.get("attempt") or 1),
            stored_error=payload.get("error_detail"),
            text=payload.get("error"),
            retry_at=payload.get("retry_at"),
            lang=lang,
            local_time=lambda at: display.local_time(at, zone),
        )
    if e.event_type == EventType.CHILD_UPDATE.value and payload.get("not_fired"):
        return refusal(payload, lang)
    return None


def _entry(
    definition: WorkflowDefinition, key: str, value: Any, lang: str, zone: tzinfo
) -> tuple[str, str, Any]:
    """(key, label, value) of one payload entry, as the page shows it."""
    if key in definition.fields or key not in PAYLOAD_WORDS:  # a trigger's own payload
        return (
            key,
            display.field_title(definition, key, lang),
            display.field_text(definition, key, value, lang),
        )
    label = i18n.pick(PAYLOAD_WORDS, key, lang)
    return key, label, _value(definition, key, value, lang, zone)


def _value(definition: WorkflowDefinition, key: str, value: Any, lang: str, zone: tzinfo) -> Any:
    shown: Callable[[], Any] | None = {
        "sla": lambda: display.sla_title(definition, str(value), lang),
        "fraction": lambda: display.share(value) if isinstance(value, int | float) else value,
        "trigger": lambda: display.trigger_title(definition, str(value), lang),
        "params": lambda: (
            i18n.translate(f"params_{value}", lang) if value in ("keep", "snapshot") else value
        ),
    }.get(key)
    if shown is not None:
        return shown()
    if key in INSTANTS:
        return display.local_time(value, zone)
    if key in NAMES:
        return Markup('<span class="mono">{}</span>').format(display.compact(value))
    if isinstance(value, dict | list):
        return Markup('<span class="mono">{}</span>').format(display.compact(value))
    return escape(display.compact(value))
