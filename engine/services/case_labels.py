"""Keeping the case row's supervisor labels (customer, team, priority, assignee) in step with
its data, in the transaction of the event that changes them.

The values are decided by engine/core/supervision.py from the fields the definition names. A
new case gets them in its INSERT, a child taking its parent's team and customer where its own
data gives none; a later event writes them only when it set one of their fields, so the
ordinary fire issues no statement for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine.core.definition import WorkflowDefinition
from engine.core.records import CaseRecord, EventRecord
from engine.core.supervision import INHERITED, case_labels, changed_labels
from engine.store.models import Case

cases = Case.__table__


def initial_labels(
    session: Session,
    definition: WorkflowDefinition,
    data: Mapping[str, Any],
    parent_id: int | None,
) -> dict[str, str | None]:
    """The labels a new case starts with: its own, then what it inherits from its parent."""
    labels = case_labels(definition, data)
    missing = [label for label in INHERITED if labels[label] is None]
    if parent_id is not None and missing:
        row = session.execute(
            select(*(cases.c[label] for label in missing)).where(cases.c.id == parent_id)
        ).one_or_none()
        if row is not None:
            labels.update({label: getattr(row, label) for label in missing})
    return labels


def relabel(
    session: Session, definition: WorkflowDefinition, case: CaseRecord, event: EventRecord
) -> None:
    """Write the labels ``event`` changed (an action setting the customer, a reassignment)."""
    changed = changed_labels(definition, case.data, event.changes)
    if changed:
        session.execute(
            update(cases).where(cases.c.id == bindparam("b_case")).values(changed),
            {"b_case": case.id},
        )
