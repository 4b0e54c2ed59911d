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

``case_waits`` projects what an open parent may still be waiting on (news it could not take,
a cancelled child), in the transaction of the event that causes it; the parent's rows go when
it closes, or is forced into a state (:func:`clear_waits`). A fire that moves the parent
leaves them: the stuck-case rules, which read the table, check the parent's later
transitions and ``state_entered_at`` themselves, so the rows only need to be bounded by open
parents, and a fire sends no extra statement (bench/transitions.py measured one DELETE per
state change at about 5% of a fire on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select
from sqlalchemy.orm import Session

from engine.core.definition import WorkflowDefinition
from engine.core.machine import ADMIN_ROLE, Actor, SpawnRequest
from engine.core.records import CaseRecord
from engine.errors import (
    CaseChainTooDeep,
    CaseClosed,
    GuardRejected,
    InvalidTrigger,
    PayloadInvalid,
    TriggerNotPermitted,
)
from engine.services.definitions import get_definition
from engine.store.models import Case, CaseStatus, CaseWait, EventType

MAX_DEPTH = 8  # a chain of cases notifying each other deeper than this is a definition bug
_NOT_TAKEN = (CaseClosed, GuardRejected, InvalidTrigger, PayloadInvalid, TriggerNotPermitted)
cases = Case.__table__
waits = CaseWait.__table__
ORPHANED_WAIT = "orphaned_wait"
WAITING_ON_CANCELLED = "waiting_on_cancelled"

_CLEAR_ALL = delete(waits).where(waits.c.case_id == bindparam("case_id"))
_CLEAR_ENTERED = delete(waits).where(
    waits.c.case_id == bindparam("case_id"),
    or_(waits.c.reason == ORPHANED_WAIT, waits.c.since < bindparam("entered_at")),
)


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
        news = {**payload, "trigger": trigger, "not_fired": exc.code, "reason": exc.message}
        outcome = case_service.record_event(
            session,
            child.parent_id,
            EventType.CHILD_UPDATE,
            news,
            actor=_case_actor(child),
            now=now,
        )
        if outcome.case.status == CaseStatus.OPEN.value:
            _add_wait(
                session,
                outcome.case.id,
                ORPHANED_WAIT,
                child_id=child.id,
                since=now,
                event_seq=outcome.event.seq,
                detail=news,
            )


def _add_wait(
    session: Session,
    case_id: int,
    reason: str,
    *,
    child_id: int,
    since: datetime,
    event_seq: int | None,
    detail: dict[str, Any],
) -> None:
    session.connection().execute(
        insert(waits).values(
            case_id=case_id,
            reason=reason,
            child_id=child_id,
            since=since,
            event_seq=event_seq,
            detail=detail,
        )
    )


def child_cancelled(
    session: Session, child: CaseRecord, *, now: datetime, detail: dict[str, Any]
) -> None:
    """Record that ``child`` was cancelled, for its parent if that parent is open."""
    if child.parent_id is None:
        return
    status = (
        session.connection()
        .execute(select(cases.c.status).where(cases.c.id == child.parent_id))
        .scalar_one_or_none()
    )
    if status == CaseStatus.OPEN.value:
        _add_wait(
            session,
            child.parent_id,
            WAITING_ON_CANCELLED,
            child_id=child.id,
            since=now,
            event_seq=None,
            detail=detail,
        )


def clear_waits(conn: Connection, case_id: int, *, entered_at: datetime, closed: bool) -> None:
    """A case closed, or was forced into a state at ``entered_at``: what it waited on is
    resolved.

    A child cancelled at the very instant the parent entered its state still counts (the rule
    compares ``state_entered_at <= since``), so only earlier ones go."""
    if closed:
        conn.execute(_CLEAR_ALL, {"case_id": case_id})
    else:
        conn.execute(_CLEAR_ENTERED, {"case_id": case_id, "entered_at": entered_at})


def children(session: Session, case_id: int) -> list[CaseRecord]:
    from engine.services.cases import case_record

    rows = session.execute(
        select(cases).where(cases.c.parent_id == case_id).order_by(cases.c.id)
    ).all()
    return [case_record(r) for r in rows]
