"""Parent and child cases: what a change to one case sets in motion for its relatives.

A transition's ``spawn`` action creates a child case (a loaner for a repair ticket, a
maintenance visit for a device); a case created directly can attach to its parent by key (a
hotline ticket to its device file). Both histories show the link: the parent records
``child_spawned`` or ``child_attached``, the child's ``created`` event names its parent.

A child reports to its parent as its definition's ``parent.notify`` says: on creation, on
entering chosen states, on reaching a final state, each fires a trigger on the parent in the
same transaction. When the parent cannot take that trigger now (wrong state, guard, closed),
the child's transition still succeeds and the parent records a ``child_update`` event saying
which trigger did not fire and why, so a waiting parent never misses news silently.

This module decides; it does not act on other cases. A change returns the :data:`Effect`
values it causes (:class:`SpawnChild`, :class:`NotifyParent`), and the case service carries
them out in the same transaction (``engine.services.cases.settle``), so neither module
imports the other to break a cycle.

``case_waits`` projects what an open parent may still be waiting on (news it could not take,
a cancelled child), in the transaction of the event that causes it; the parent's rows go when
it closes, or is forced into a state (:func:`clear_waits`). A fire that moves the parent
leaves them: the stuck-case rules, which read the table, check the parent's later
transitions and ``state_entered_at`` themselves, so the rows only need to be bounded by open
parents, and a fire sends no extra statement (bench/transitions.py measured one DELETE per
state change at about 5% of a fire on SQLite).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_
from sqlalchemy.orm import Session

from engine.core.definition import ParentSpec, WorkflowDefinition
from engine.core.expressions import DecisionSource, compiled, make_context
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
from engine.store import case_store
from engine.store.calendar_store import LazyCalendars
from engine.store.models import CaseStatus, CaseWait

MAX_DEPTH = 8  # a chain of cases notifying each other deeper than this is a definition bug
# Why a parent may not take a child's news now; anything else is an error of the change.
NOT_TAKEN = (CaseClosed, GuardRejected, InvalidTrigger, PayloadInvalid, TriggerNotPermitted)
waits = CaseWait.__table__
ORPHANED_WAIT = "orphaned_wait"
WAITING_ON_CANCELLED = "waiting_on_cancelled"

_CLEAR_ALL = delete(waits).where(waits.c.case_id == bindparam("case_id"))
_CLEAR_ENTERED = delete(waits).where(
    waits.c.case_id == bindparam("case_id"),
    or_(waits.c.reason == ORPHANED_WAIT, waits.c.since < bindparam("entered_at")),
)


@dataclass(frozen=True)
class SpawnChild:
    """Create a child of ``parent`` as a transition's ``spawn`` action asked; ``depth`` is
    how deep in a chain of cases the transition that asked for it is."""

    parent: CaseRecord
    request: SpawnRequest
    depth: int


@dataclass(frozen=True)
class NotifyParent:
    """Tell ``child``'s parent what happened to it (``event_type`` "created" or
    "transition", ``entered`` the state it moved into, if it moved)."""

    definition: WorkflowDefinition  # the child's
    child: CaseRecord
    event_type: str
    entered: str | None
    depth: int


Effect = SpawnChild | NotifyParent


@dataclass(frozen=True)
class ParentCall:
    """The trigger a child's news fires on its parent, with its payload."""

    parent_id: int
    trigger: str
    payload: dict[str, Any]


def case_actor(case: CaseRecord) -> Actor:
    # A case acting on its relatives is the engine itself: transition roles do not apply.
    return Actor(f"case:{case.id}", frozenset({"system", ADMIN_ROLE}))


def check_depth(depth: int, case: CaseRecord) -> None:
    if depth >= MAX_DEPTH:
        raise CaseChainTooDeep(
            f"Case {case.id} is {depth} links deep in a chain of spawns and notifications.",
            hint="Check the definitions for a loop: a child that spawns or notifies in a cycle.",
            case_id=case.id,
        )


# --- what a change sets in motion --------------------------------------------------------------


def after_create(definition: WorkflowDefinition, case: CaseRecord, depth: int) -> list[Effect]:
    if case.parent_id is None or definition.parent is None:
        return []
    return [NotifyParent(definition, case, "created", None, depth)]


def after_transition(
    definition: WorkflowDefinition,
    case: CaseRecord,
    spawns: Sequence[SpawnRequest],
    *,
    entered: str | None,
    depth: int,
) -> list[Effect]:
    """Children first (in the order the actions asked), then the news for the parent."""
    effects: list[Effect] = [SpawnChild(case, request, depth) for request in spawns]
    if case.parent_id is not None and definition.parent is not None:
        effects.append(NotifyParent(definition, case, "transition", entered, depth))
    return effects


def parent_call(notice: NotifyParent) -> ParentCall | None:
    """The parent trigger this child event calls for, if any."""
    child, spec = notice.child, notice.definition.parent
    if child.parent_id is None or spec is None:
        return None
    final = child.status == CaseStatus.COMPLETED.value
    trigger = spec.trigger_for(notice.event_type, notice.entered, final)
    if trigger is None:
        return None
    payload = {
        "child_id": child.id,
        "child_definition": child.definition_name,
        "child_state": child.state,
    }
    return ParentCall(child.parent_id, trigger, payload)


def parent_by_key(
    session: Session,
    parent: ParentSpec,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
    *,
    decisions: DecisionSource | None = None,
) -> int | None:
    """The parent case named by ``parent.attach_by_key``, if it exists (``decisions``: the
    child definition's tables, which the key may read)."""
    if parent.attach_by_key is None:  # the definition attaches only the children it spawns
        return None
    key = compiled(parent.attach_by_key, "parent.attach_by_key").evaluate(
        make_context(data, {}, params, now, decisions=decisions, calendars=LazyCalendars(session))
    )
    return case_store.case_with_key(session, parent.definition, str(key))


# --- what an open parent waits on --------------------------------------------------------------


def add_wait(
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
    if case_store.status_of(session, child.parent_id) == CaseStatus.OPEN.value:
        add_wait(
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
    return case_store.children_of(session, case_id)
