"""What supervisors see of a case: its customer, team, priority and assignee as plain text.

A definition's ``supervision`` section and its ``assignee`` name the data fields; the store
keeps their values in columns of the case row (engine/services/case_labels.py), so the
workbench filters and sorts by them without reading every case's data. This module decides
the values; it reads nothing but the definition and the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.core.definition import WorkflowDefinition

LABELS = ("customer", "team", "priority", "assignee")
# Labels a child takes from its parent when its own data gives none (docs/definitions.md).
INHERITED = ("customer", "team")
LABEL_MAX_CHARS = 200  # the columns' width; the data keeps the whole value


def label_paths(definition: WorkflowDefinition) -> dict[str, str]:
    """Each label the definition declares, with the data path it reads."""
    sup = definition.supervision
    declared = {
        "customer": sup.customer,
        "team": sup.team,
        "priority": sup.priority,
        "assignee": definition.assignee,
    }
    return {label: path for label, path in declared.items() if path}


def read_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at a data path (``team.regional_lead``), or None where any part is missing."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def as_label(value: Any) -> str | None:
    """One value as the text a column keeps: objects and lists have no single text."""
    if value is None or isinstance(value, Mapping | list):
        return None
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text[:LABEL_MAX_CHARS] if text else None


def case_labels(definition: WorkflowDefinition, data: Mapping[str, Any]) -> dict[str, str | None]:
    """Every label's value for ``data`` (None for those not declared or not given)."""
    paths = label_paths(definition)
    return {
        label: as_label(read_path(data, paths[label])) if label in paths else None
        for label in LABELS
    }


def changed_labels(
    definition: WorkflowDefinition, data: Mapping[str, Any], changes: Mapping[str, Any]
) -> dict[str, str | None]:
    """The labels an event's ``changes`` (the data fields it set) may have changed, with their
    new values. Labels whose fields were not touched are left out, so what a child inherited
    stays until its own field is set."""
    if not changes:
        return {}
    return {
        label: as_label(read_path(data, path))
        for label, path in label_paths(definition).items()
        if path.partition(".")[0] in changes
    }
