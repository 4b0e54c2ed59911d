"""Parent and child cases.

A transition's ``spawn`` action creates a child case (a loaner for a repair ticket, a
maintenance visit for a device); a case created directly can attach to its parent by key (a
hotline ticket to its device file). Both histories show the link: the parent records
``child_spawned`` or ``child_attached``, the child's ``created`` event names its parent.

A child reports to its parent as its definition's ``parent.notify`` says: on creation, on
entering chosen states, on reaching a final state, each fires a trigger on the parent in the
same transaction. When the parent cannot take that trigger now (wrong state, guard, closed),
the child's transition still succeeds and the parent records a ``child_update`` event saying
which trigger did not fire and why, so a waiting parent never misses news silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.db.models import Case, CaseStatus, EventType
from engine.definition import WorkflowDefinition
from engine.errors import (
    CaseClosed,
    GuardRejected,
    InvalidTrigger,
    PayloadInvalid,
    SvcflowError,
    TriggerNotPermitted,
)
from engine.machine import ADMIN_ROLE, Actor, SpawnRequest
from engine.records import CaseRecord
from engine.services.definitions import get_definition

MAX_DEPTH = 8  # a chain of cases notifying each other deeper than this is a definition bug
_NOT_TAKEN = (CaseClosed, GuardRejected, InvalidTrigger, PayloadInvalid, TriggerNotPermitted)
cases = Case.__table__


class CaseChainTooDeep(SvcflowError):
    code = "case-chain-too-deep"


def _case_actor(case: CaseRecord) -> Actor:
    # A case acting on its relatives is the engine itself: transition roles do not apply.
    return Actor(f"case:{case.id}", frozenset({"system", ADMIN_ROLE}))


def _check_depth(depth: int, case: CaseRecord) -> None:
    if depth >= MAX_DEPTH:
        raise CaseChainTooDeep(
            f"Case {case.id} is {depth} links deep in a chain of spawns and notifications.",
            hint="Check the definitions for a loop: a child that spawns or notifies in a cycle.",
            case_id=case.id,
        )


def spawn_children(
    session: Session,
    parent: CaseRecord,
    spawns: Sequence[SpawnRequest],
    *,
    now: datetime,
    depth: int,
) -> list[CaseRecord]:
    from engine.services import cases as case_service  # cases imports this module

    children = []
    for request in spawns:
        _check_depth(depth + 1, parent)
        outcome = case_service.create_case(
            session,
            request.definition,
            request.data,
            actor=_case_actor(parent),
            now=now,
            business_key=request.business_key,
            parent_id=parent.id,
            notify_parent=False,
            depth=depth + 1,
        )
        child = outcome.case
        case_service.record_event(
            session,
            parent.id,
            EventType.CHILD_SPAWNED,
            {
                "child_id": child.id,
                "child_definition": child.definition_name,
                "action": request.path,
            },
            actor=_case_actor(parent),
            now=now,
        )
        child_definition = get_definition(session, child.definition_name, child.definition_version)
        notify_parent(session, child_definition, child, "created", None, now=now, depth=depth + 1)
        children.append(child)
    return children


def notify_parent(
    session: Session,
    definition: WorkflowDefinition,
    child: CaseRecord,
    event_type: str,
    entered: str | None,
    *,
    now: datetime,
    depth: int,
) -> None:
    """Fire the parent trigger this child event calls for, or record why it could not."""
    from engine.services import cases as case_service  # cases imports this module

    spec = definition.parent
    if child.parent_id is None or spec is None:
        return
    final = child.status == CaseStatus.COMPLETED.value
    trigger = spec.trigger_for(event_type, entered, final)
    if trigger is None:
        return
    _check_depth(depth + 1, child)
    payload = {
        "child_id": child.id,
        "child_definition": child.definition_name,
        "child_state": child.state,
    }
    try:
        with session.begin_nested():
            case_service.fire(
                session,
                child.parent_id,
                trigger,
                payload,
                actor=_case_actor(child),
                now=now,
                depth=depth + 1,
            )
    except _NOT_TAKEN as exc:
        case_service.record_event(
            session,
            child.parent_id,
            EventType.CHILD_UPDATE,
            {**payload, "trigger": trigger, "not_fired": exc.code, "reason": exc.message},
            actor=_case_actor(child),
            now=now,
        )


def children(session: Session, case_id: int) -> list[CaseRecord]:
    from engine.services.cases import case_record

    rows = session.execute(
        select(cases).where(cases.c.parent_id == case_id).order_by(cases.c.id)
    ).all()
    return [case_record(r) for r in rows]
