"""What changed between two versions of a definition: the source text diff, and a structural
summary a process owner can read.

Each kind of element (states, transitions, timers, SLAs, parameters, roles, decision tables,
field labels) is reported as
``added``, ``removed`` and ``changed``; a changed element lists each of its fields that
differ as ``{"from": ..., "to": ...}``. Elements are matched by what names them (a state, a
timer, an SLA, a parameter by name; a transition by its trigger and source states), so a
transition whose guard or target changed is *changed*, not removed and added.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.definition import (
    DurationValue,
    SlaCondition,
    SlaSpec,
    TimerSpec,
    TransitionSpec,
    WorkflowDefinition,
)


@dataclass(frozen=True)
class DefinitionDiff:
    name: str
    from_version: int | None
    to_version: int | None
    source_diff: str
    changes: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(_has_changes(v) for v in self.changes.values())


def _has_changes(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        return any(_has_changes(v) for v in value.values())
    return bool(value)


def _duration(value: DurationValue | None) -> str | None:
    if value is None:
        return None
    if value.literal is not None:
        return value.literal
    return f"params.{value.param}" if value.param is not None else f"expr: {value.expr}"


def _condition(condition: SlaCondition) -> dict[str, list[str]]:
    return {"states": sorted(condition.states), "triggers": sorted(condition.triggers)}


def _sla_fields(sla: SlaSpec) -> dict[str, Any]:
    return {
        "target": _duration(sla.target),
        "start": _condition(sla.start),
        "stop": _condition(sla.stop),
        "pause": _condition(sla.pause),
        "calendar": (sla.calendar_param and f"params.{sla.calendar_param}") or sla.calendar,
        "rounds": sla.rounds.value,
        "when": sla.when,
        "counted_from": sla.counted_from,
        "warn_at": list(sla.warn_at),
        "breach_trigger": sla.breach_trigger,
        "escalate": sla.escalate,
        "title": _label(sla.title),
    }


def _timer_fields(timer: TimerSpec) -> dict[str, Any]:
    return {
        "kind": timer.kind.value,
        "trigger": timer.trigger,
        "after": _duration(timer.after),
        "at": timer.at,
        "every": timer.every,
        "calendar": (timer.calendar_param and f"params.{timer.calendar_param}") or timer.calendar,
        "counted_from": timer.counted_from,
        "payload": dict(timer.payload),
    }


def _label(label: Any) -> dict[str, str] | None:
    return {"en": label.en, "zh": label.zh} if label is not None else None


def _transition_fields(t: TransitionSpec, definition: WorkflowDefinition) -> dict[str, Any]:
    return {
        "dest": t.dest,
        "reenter": t.reenter,
        "guard": t.guard,
        "roles": sorted(definition.roles_of(t)),
        "actions": [[a.kind.value, a.field, a.expr, a.by] for a in t.actions],
        "payload_schema": dict(t.payload_schema) if t.payload_schema is not None else None,
        "title": _label(t.title),
    }


def _transitions(definition: WorkflowDefinition) -> dict[str, TransitionSpec]:
    """Transitions by ``trigger: sources``; guarded alternatives of the same trigger and
    sources are told apart by their order (``#2``)."""
    out: dict[str, TransitionSpec] = {}
    for t in definition.transitions:
        key = f"{t.trigger}: {', '.join(t.sources)}"
        n = 1
        while (f"{key} #{n}" if n > 1 else key) in out:
            n += 1
        out[f"{key} #{n}" if n > 1 else key] = t
    return out


def _compare(
    old: Mapping[str, Any], new: Mapping[str, Any], fields: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    changed: dict[str, dict[str, Any]] = {}
    for name in sorted(set(old) & set(new)):
        before, after = fields(old[name]), fields(new[name])
        differs = {
            k: {"from": before.get(k), "to": after.get(k)}
            for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)
        }
        if differs:
            changed[name] = differs
    return {
        "added": sorted(set(new) - set(old)),
        "removed": sorted(set(old) - set(new)),
        "changed": changed,
    }


def _pair_moved_transitions(
    result: dict[str, Any],
    old: dict[str, TransitionSpec],
    new: dict[str, TransitionSpec],
    old_def: WorkflowDefinition,
    new_def: WorkflowDefinition,
) -> None:
    """A trigger with exactly one transition removed and one added changed its sources:
    report it as changed (``sources`` among its fields)."""
    removed = {old[k].trigger: k for k in result["removed"]}
    added = {new[k].trigger: k for k in result["added"]}
    for trigger in sorted(set(removed) & set(added)):
        was, now = removed[trigger], added[trigger]
        if [old[k].trigger for k in result["removed"]].count(trigger) != 1:
            continue
        if [new[k].trigger for k in result["added"]].count(trigger) != 1:
            continue
        before = {**_transition_fields(old[was], old_def), "sources": list(old[was].sources)}
        after = {**_transition_fields(new[now], new_def), "sources": list(new[now].sources)}
        result["removed"].remove(was)
        result["added"].remove(now)
        result["changed"][f"{trigger}: {was.split(': ', 1)[1]} -> {now.split(': ', 1)[1]}"] = {
            k: {"from": before[k], "to": after[k]} for k in sorted(before) if before[k] != after[k]
        }


def _roles(definition: WorkflowDefinition) -> set[str]:
    return {role for t in definition.transitions for role in definition.roles_of(t)}


def diff_definitions(
    old: WorkflowDefinition, new: WorkflowDefinition, old_source: str, new_source: str
) -> DefinitionDiff:
    text = "".join(
        difflib.unified_diff(
            old_source.splitlines(keepends=True),
            new_source.splitlines(keepends=True),
            fromfile=f"{old.name} v{old.version}",
            tofile=f"{new.name} v{new.version}",
        )
    )
    old_t, new_t = _transitions(old), _transitions(new)
    transitions = _compare(
        {k: (t, old) for k, t in old_t.items()},
        {k: (t, new) for k, t in new_t.items()},
        lambda pair: _transition_fields(*pair),
    )
    _pair_moved_transitions(transitions, old_t, new_t, old, new)

    def timers(d: WorkflowDefinition) -> dict[str, TimerSpec]:
        return {f"{s.name}.{t.name}": t for s in d.states for t in s.timers}

    old_roles, new_roles = _roles(old), _roles(new)
    old_d, new_d = old.decisions.tables, new.decisions.tables
    changes = {
        "states": _compare(
            {s.name: s for s in old.states},
            {s.name: s for s in new.states},
            lambda s: {"final": s.final, "title": _label(s.title)},
        ),
        "transitions": transitions,
        "timers": _compare(timers(old), timers(new), _timer_fields),
        "slas": _compare({s.name: s for s in old.slas}, {s.name: s for s in new.slas}, _sla_fields),
        "parameters": _compare(
            dict(old.parameters),
            dict(new.parameters),
            lambda p: {"type": p.type, "default": p.default},
        ),
        "roles": {
            "added": sorted(new_roles - old_roles),
            "removed": sorted(old_roles - new_roles),
        },
        "decisions": {
            "added": sorted(set(new_d) - set(old_d)),
            "removed": sorted(set(old_d) - set(new_d)),
            "changed": sorted(k for k in set(old_d) & set(new_d) if old_d[k] != new_d[k]),
        },
        "fields": _compare(
            dict(old.fields),
            dict(new.fields),
            lambda f: {
                "title": _label(f.title),
                "values": {v: _label(text) for v, text in f.values.items()},
            },
        ),
        "initial_changed": old.initial != new.initial,
        "data_schema_changed": dict(old.data_schema) != dict(new.data_schema),
    }
    return DefinitionDiff(old.name, old.version, new.version, text, changes)


def render_text(diff: DefinitionDiff) -> str:
    """The structural summary as lines a person reads in a terminal."""
    lines = [f"{diff.name} v{diff.from_version} -> v{diff.to_version}"]
    for kind in ("states", "transitions", "timers", "slas", "parameters", "roles", "fields"):
        part = diff.changes.get(kind) or {}
        for name in part.get("added", []):
            lines.append(f"  + {kind[:-1]} {name}")
        for name in part.get("removed", []):
            lines.append(f"  - {kind[:-1]} {name}")
        for name, fields in (part.get("changed") or {}).items():
            lines.append(f"  ~ {kind[:-1]} {name}")
            for key, change in fields.items():
                lines.append(f"      {key}: {_short(change['from'])} -> {_short(change['to'])}")
    if diff.changes.get("initial_changed"):
        lines.append("  ~ initial state changed")
    if diff.changes.get("data_schema_changed"):
        lines.append("  ~ data_schema changed (see the text diff)")
    if len(lines) == 1:
        lines.append("  no structural change")
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."
