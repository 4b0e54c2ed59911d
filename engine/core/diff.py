"""What changed between two versions of a definition: the source text diff, and a structural
summary a process owner can read (states, transitions, parameters, SLAs, decision tables added,
removed or changed)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from engine.core.definition import WorkflowDefinition


@dataclass(frozen=True)
class DefinitionDiff:
    name: str
    from_version: int | None
    to_version: int | None
    source_diff: str
    changes: dict[str, Any] = field(default_factory=dict)


def _transition_keys(definition: WorkflowDefinition) -> dict[str, dict[str, Any]]:
    return {
        f"{t.trigger}: {','.join(t.sources)} -> {t.dest_text}": {
            "guard": t.guard,
            "roles": list(t.roles),
            "actions": [(a.kind.value, a.field, a.expr, a.by) for a in t.actions],
        }
        for t in definition.transitions
    }


def _added_removed(old: set[str], new: set[str]) -> dict[str, list[str]]:
    return {"added": sorted(new - old), "removed": sorted(old - new)}


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
    old_t, new_t = _transition_keys(old), _transition_keys(new)
    changed_t = sorted(k for k in set(old_t) & set(new_t) if old_t[k] != new_t[k])
    old_d, new_d = old.decisions.tables, new.decisions.tables
    old_p = {k: p.default for k, p in old.parameters.items()}
    new_p = {k: p.default for k, p in new.parameters.items()}
    changes = {
        "states": _added_removed(set(old.state_names), set(new.state_names)),
        "transitions": {**_added_removed(set(old_t), set(new_t)), "changed": changed_t},
        "parameters": {
            **_added_removed(set(old_p), set(new_p)),
            "default_changed": sorted(k for k in set(old_p) & set(new_p) if old_p[k] != new_p[k]),
        },
        "slas": _added_removed({s.name for s in old.slas}, {s.name for s in new.slas}),
        "decisions": {
            **_added_removed(set(old_d), set(new_d)),
            "changed": sorted(k for k in set(old_d) & set(new_d) if old_d[k] != new_d[k]),
        },
        "initial_changed": old.initial != new.initial,
        "data_schema_changed": dict(old.data_schema) != dict(new.data_schema),
    }
    return DefinitionDiff(old.name, old.version, new.version, text, changes)
