"""Creating cases, firing triggers, reading history.

Every change to a case is one UPDATE of its row guarded by the version the change was computed
from (optimistic locking), plus one INSERT into its history with ``seq`` equal to the new
version, in the caller's transaction. So history is contiguous by construction, and of two
concurrent fires computed from the same version exactly one can win; the other gets
:class:`ConcurrencyConflict` and nothing of it is written.

The hot path uses Core statements rather than the ORM unit of work: a fire is two statements
after the read, and the benchmark (bench/transitions.py) holds the engine to at least half the
speed of those two statements issued by hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core.definition import ParentSpec
from engine.core.expressions import Expression, make_context
from engine.core.machine import Actor, compile_workflow
from engine.core.records import CaseRecord, EventRecord, FireOutcome
from engine.errors import (
    BusinessKeyTaken,
    CaseClosed,
    CaseNotFound,
    ConcurrencyConflict,
    IdempotencyKeyReused,
    VersionMismatch,
)
from engine.services import counters as counter_service
from engine.services import links, observe, scheduling
from engine.services.definitions import effective_parameters, get_definition
from engine.store.database import inserted_id
from engine.store.models import Case, CaseEvent, CaseStatus, EventType, IdempotencyRecord

cases = Case.__table__
events = CaseEvent.__table__
idempotency = IdempotencyRecord.__table__

# The hot path's statements, built once: building and cache-keying a statement per call cost
# more than the state machine step itself (see docs/benchmarks.md).
_SELECT_CASE = select(cases).where(cases.c.id == bindparam("case_id"))
_UPDATE_CASE = (
    update(cases)
    .where(cases.c.id == bindparam("case_id"), cases.c.version == bindparam("read_version"))
    .values(
        state=bindparam("new_state"),
        status=bindparam("new_status"),
        data=bindparam("new_data"),
        version=bindparam("new_version"),
        updated_at=bindparam("now"),
        state_entered_at=bindparam("entered_at"),
        state_entry_seq=bindparam("entry_seq"),
    )
)
_BUMP_CASE = (
    update(cases)
    .where(cases.c.id == bindparam("case_id"), cases.c.version == bindparam("read_version"))
    .values(
        status=bindparam("new_status"),
        version=bindparam("new_version"),
        updated_at=bindparam("now"),
    )
)
_INSERT_EVENT = insert(events)


def _fingerprint(*parts: Any) -> str:
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def case_record(row: Row[Any]) -> CaseRecord:
    return CaseRecord(
        id=row.id,
        definition_name=row.definition_name,
        definition_version=row.definition_version,
        business_key=row.business_key,
        state=row.state,
        status=row.status,
        data=row.data,
        params=row.params,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        state_entered_at=row.state_entered_at,
        state_entry_seq=row.state_entry_seq,
        parent_id=row.parent_id,
    )


def _event_record(row: Row[Any]) -> EventRecord:
    return EventRecord(
        case_id=row.case_id,
        seq=row.seq,
        event_type=row.event_type,
        trigger=row.trigger,
        from_state=row.from_state,
        to_state=row.to_state,
        actor=row.actor,
        payload=row.payload,
        changes=row.changes,
        at=row.at,
        idempotency_key=row.idempotency_key,
        context=row.context,
    )


# --- reading -----------------------------------------------------------------------------------


def get_case(session: Session, case_id: int) -> CaseRecord:
    return _read_case(session.connection(), case_id)


def _read_case(conn: Connection, case_id: int) -> CaseRecord:
    # Core statements go straight to the session's connection: the ORM execution layer adds
    # nothing for them and costs a measurable share of a fire.
    row = conn.execute(_SELECT_CASE, {"case_id": case_id}).one_or_none()
    if row is None:
        raise CaseNotFound(
            f"No case with id {case_id}.",
            hint="Check the id: `svcflow cases list` or GET /api/v1/cases finds cases.",
            case_id=case_id,
        )
    return case_record(row)


def find_case(session: Session, definition_name: str, business_key: str) -> CaseRecord:
    row = session.execute(
        select(cases).where(
            cases.c.definition_name == definition_name, cases.c.business_key == business_key
        )
    ).one_or_none()
    if row is None:
        raise CaseNotFound(
            f"No {definition_name!r} case with business key {business_key!r}.",
            definition=definition_name,
            business_key=business_key,
        )
    return case_record(row)


def history(session: Session, case_id: int) -> list[EventRecord]:
    get_case(session, case_id)
    rows = session.execute(
        select(events).where(events.c.case_id == case_id).order_by(events.c.seq)
    ).all()
    return [_event_record(r) for r in rows]


def _event(session: Session, case_id: int, seq: int) -> EventRecord:
    row = session.execute(
        select(events).where(events.c.case_id == case_id, events.c.seq == seq)
    ).one()
    return _event_record(row)


def allowed_triggers(session: Session, case: CaseRecord) -> list[str]:
    if case.status != CaseStatus.OPEN.value:
        return []
    definition = get_definition(session, case.definition_name, case.definition_version)
    return compile_workflow(definition).allowed_triggers(case.state)


# --- idempotency -------------------------------------------------------------------------------


def _recall(session: Session, scope: str, key: str, fingerprint: str) -> Row[Any] | None:
    row = session.execute(
        select(idempotency).where(idempotency.c.scope == scope, idempotency.c.key == key)
    ).one_or_none()
    if row is not None and row.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"Idempotency key {key!r} was first used with a different request.",
            hint="Use a new key for a new request; reuse a key only to retry the same one.",
            idempotency_key=key,
        )
    return row


def _remember(
    session: Session,
    scope: str,
    key: str,
    fingerprint: str,
    *,
    case_id: int,
    seq: int,
    now: datetime,
) -> None:
    try:
        session.execute(
            insert(idempotency).values(
                scope=scope,
                key=key,
                fingerprint=fingerprint,
                case_id=case_id,
                event_seq=seq,
                created_at=now,
            )
        )
    except IntegrityError as exc:
        # Two retries of one request raced past _recall (PostgreSQL runs them side by side);
        # the other one's record won. A retry now is answered from that record.
        raise ConcurrencyConflict(
            f"A request with idempotency key {key!r} was being handled at the same time.",
            hint="Retry with the same key; it will return the first request's result.",
            idempotency_key=key,
            case_id=case_id,
        ) from exc


# --- creating ----------------------------------------------------------------------------------


def create_case(
    session: Session,
    definition_name: str,
    data: Mapping[str, Any],
    *,
    actor: Actor,
    now: datetime,
    version: int | None = None,
    business_key: str | None = None,
    idempotency_key: str | None = None,
    parent_id: int | None = None,
    notify_parent: bool = True,
    depth: int = 0,
) -> FireOutcome:
    """Start a case of a published definition (latest version unless ``version`` is given).

    ``parent_id`` links it to the case that spawned it; a case created directly is attached to
    its parent by the definition's ``parent.attach_by_key`` when that case exists."""
    scope = f"create:{definition_name}"
    fingerprint = _fingerprint(dict(data), business_key, version)
    if idempotency_key is not None:
        earlier = _recall(session, scope, idempotency_key, fingerprint)
        if earlier is not None:
            case = get_case(session, earlier.case_id)
            return FireOutcome(case, _event(session, case.id, 1), replayed=True)

    definition = get_definition(session, definition_name, version)
    compiled = compile_workflow(definition)
    compiled.check_initial_data(data)
    if business_key is not None:
        taken = session.execute(
            select(cases.c.id).where(
                cases.c.definition_name == definition_name, cases.c.business_key == business_key
            )
        ).scalar_one_or_none()
        if taken is not None:
            raise BusinessKeyTaken(
                f"A {definition_name!r} case with business key {business_key!r} exists "
                f"(case {taken}).",
                hint="Business keys are unique per definition; fire triggers on that case.",
                case_id=taken,
                business_key=business_key,
            )
    params = effective_parameters(session, definition)
    attached = False
    if parent_id is None and definition.parent and definition.parent.attach_by_key:
        parent_id = _find_parent(session, definition.parent, data, params, now)
        attached = parent_id is not None
    values: dict[str, Any] = {
        "definition_name": definition.name,
        "definition_version": definition.version,
        "business_key": business_key,
        "state": definition.initial,
        "status": _status(definition.initial, definition.final_states),
        "data": dict(data),
        "params": params,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "state_entered_at": now,
        "state_entry_seq": 1,
        "parent_id": parent_id,
    }
    try:
        case_id = inserted_id(session.execute(insert(cases).values(**values)))
    except IntegrityError as exc:
        raise BusinessKeyTaken(
            f"A {definition_name!r} case with business key {business_key!r} was just created.",
            business_key=business_key,
        ) from exc
    event = EventRecord(
        case_id=case_id,
        seq=1,
        event_type=EventType.CREATED.value,
        trigger=None,
        from_state=None,
        to_state=definition.initial,
        actor=actor.name,
        payload={"parent_id": parent_id} if parent_id else {},
        changes=dict(data),
        at=now,
        idempotency_key=idempotency_key,
    )
    _append(session.connection(), event)
    _observe(session, definition.name, event)
    if idempotency_key is not None:
        _remember(session, scope, idempotency_key, fingerprint, case_id=case_id, seq=1, now=now)
    case = CaseRecord(id=case_id, **values)
    scheduling.sync_after_event(session, definition, case=case, previous=None, now=now)
    if attached and parent_id is not None:
        record_event(
            session,
            parent_id,
            EventType.CHILD_ATTACHED,
            {"child_id": case_id, "child_definition": definition.name},
            actor=actor,
            now=now,
        )
    if notify_parent:
        links.notify_parent(session, definition, case, "created", None, now=now, depth=depth)
    return FireOutcome(case, event, allowed_triggers=tuple(compiled.allowed_triggers(case.state)))


def _find_parent(
    session: Session,
    parent: ParentSpec,
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    now: datetime,
) -> int | None:
    """The parent case named by ``parent.attach_by_key``, if it exists."""
    if parent.attach_by_key is None:  # the definition attaches only the children it spawns
        return None
    key = Expression(parent.attach_by_key, "parent.attach_by_key").evaluate(
        make_context(data, {}, params, now)
    )
    found = (
        session.connection()
        .execute(
            select(cases.c.id).where(
                cases.c.definition_name == parent.definition, cases.c.business_key == str(key)
            )
        )
        .scalar_one_or_none()
    )
    return int(found) if found is not None else None


def _status(state: str, finals: frozenset[str]) -> str:
    return CaseStatus.COMPLETED.value if state in finals else CaseStatus.OPEN.value


def append_event(session: Session, event: EventRecord, definition: str) -> None:
    """Append one history event (its seq must be the case's new version)."""
    _append(session.connection(), event)
    _observe(session, definition, event)


def _observe(session: Session, definition: str, event: EventRecord) -> None:
    observe.note(
        session,
        "event",
        definition=definition,
        case_id=event.case_id,
        event_type=event.event_type,
        trigger=event.trigger,
        seq=event.seq,
        from_state=event.from_state,
        to_state=event.to_state,
        actor=event.actor,
        sla=event.payload.get("sla") if event.event_type.startswith("sla_") else None,
    )


def _append(conn: Connection, event: EventRecord) -> None:
    conn.execute(
        _INSERT_EVENT,
        {
            "case_id": event.case_id,
            "seq": event.seq,
            "event_type": event.event_type,
            "trigger": event.trigger,
            "from_state": event.from_state,
            "to_state": event.to_state,
            "actor": event.actor,
            "payload": dict(event.payload),
            "changes": dict(event.changes),
            "at": event.at,
            "idempotency_key": event.idempotency_key,
            "context": dict(event.context) if event.context else None,
        },
    )


# --- firing ------------------------------------------------------------------------------------


def fire(
    session: Session,
    case_id: int,
    trigger: str,
    payload: Mapping[str, Any] | None = None,
    *,
    actor: Actor,
    now: datetime,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
    depth: int = 0,
    reason: str | None = None,
) -> FireOutcome:
    """Fire ``trigger`` on a case; on any error nothing is written (the caller rolls back).

    ``reason`` is an operator's justification, kept in the event's context.

    Effects of the transition happen in the same transaction: counters change, child cases
    are spawned, and the parent case hears of it if this definition notifies it. ``depth``
    counts how deep in such a chain of cases this fire is."""
    payload = dict(payload or {})
    scope = f"fire:{case_id}"
    fingerprint = _fingerprint(trigger, payload) if idempotency_key is not None else ""
    if idempotency_key is not None:
        earlier = _recall(session, scope, idempotency_key, fingerprint)
        if earlier is not None:
            case = get_case(session, case_id)
            return FireOutcome(case, _event(session, case_id, earlier.event_seq), replayed=True)

    conn = session.connection()  # resolved once: each lookup costs as much as a statement
    case = _read_case(conn, case_id)
    if expected_version is not None and case.version != expected_version:
        raise VersionMismatch(
            f"Case {case_id} is at version {case.version}, not {expected_version}.",
            hint="Reload the case and decide again with its current state.",
            case_id=case_id,
            state=case.state,
            version=case.version,
        )
    if case.status != CaseStatus.OPEN.value:
        raise CaseClosed(
            f"Case {case_id} is {case.status} (state {case.state!r}); it takes no more triggers.",
            case_id=case_id,
            state=case.state,
            trigger=trigger,
        )
    definition = get_definition(session, case.definition_name, case.definition_version)
    compiled = compile_workflow(definition)
    counter_keys: dict[str, str] = {}
    counter_values: dict[str, int] = {}
    if definition.counters:
        counter_keys = compiled.counter_keys(case.data, case.params, now)
        counter_values = counter_service.read(conn, counter_keys)
    result = compiled.step(
        state=case.state,
        data=case.data,
        trigger=trigger,
        payload=payload,
        params=case.params,
        now=now,
        actor=actor,
        case_id=case_id,
        counters=counter_values,
    )
    new_version = case.version + 1
    status = _status(result.to_state, definition.final_states)
    # A self-loop keeps the state entry, so its timers keep running.
    moved = result.to_state != case.state
    entered = now if moved else case.state_entered_at
    entry_seq = new_version if moved else case.state_entry_seq
    updated = conn.execute(
        _UPDATE_CASE,
        {
            "case_id": case_id,
            "read_version": case.version,
            "new_state": result.to_state,
            "new_status": status,
            "new_data": result.data,
            "new_version": new_version,
            "now": now,
            "entered_at": entered,
            "entry_seq": entry_seq,
        },
    )
    if updated.rowcount != 1:
        current = get_case(session, case_id)
        raise ConcurrencyConflict(
            f"Case {case_id} changed while {trigger!r} was being fired (now version "
            f"{current.version}, state {current.state!r}).",
            hint="Reload the case and fire again if the trigger still applies.",
            case_id=case_id,
            state=current.state,
            version=current.version,
            trigger=trigger,
        )
    event = EventRecord(
        case_id=case_id,
        seq=new_version,
        event_type=EventType.TRANSITION.value,
        trigger=trigger,
        from_state=case.state,
        to_state=result.to_state,
        actor=actor.name,
        payload=payload,
        changes=result.changes,
        at=now,
        idempotency_key=idempotency_key,
        context=_context(counter_values, reason),
    )
    _append(conn, event)
    _observe(session, definition.name, event)
    if status != CaseStatus.OPEN.value:
        # Only on closing: a move within the case leaves its case_waits rows to the rules'
        # own checks, and the hot path one statement shorter (see links.clear_waits).
        links.clear_waits(conn, case_id, entered_at=now, closed=True)
    for name, by in result.counter_deltas.items():
        counter_service.add(conn, name, counter_keys[name], by, now)
    if idempotency_key is not None:
        _remember(
            session, scope, idempotency_key, fingerprint, case_id=case_id, seq=new_version, now=now
        )
    new_case = CaseRecord(
        id=case.id,
        definition_name=case.definition_name,
        definition_version=case.definition_version,
        business_key=case.business_key,
        state=result.to_state,
        status=status,
        data=result.data,
        params=case.params,
        version=new_version,
        created_at=case.created_at,
        updated_at=now,
        state_entered_at=entered,
        state_entry_seq=entry_seq,
        parent_id=case.parent_id,
    )
    scheduling.sync_after_event(session, definition, case=new_case, previous=case, now=now)
    if result.spawns or (case.parent_id and definition.parent):
        links.spawn_children(session, new_case, result.spawns, now=now, depth=depth)
        entered_state = result.to_state if moved else None
        links.notify_parent(
            session, definition, new_case, "transition", entered_state, now=now, depth=depth
        )
        new_case = get_case(session, case_id)  # spawning records events on this case
    allowed = compiled.allowed_triggers(result.to_state) if status == CaseStatus.OPEN.value else []
    return FireOutcome(new_case, event, allowed_triggers=tuple(allowed))


def _context(counters: Mapping[str, int], reason: str | None) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if counters:
        out["counters"] = dict(counters)
    if reason:
        out["reason"] = reason
    return out or None


def cancel_case(
    session: Session, case_id: int, *, actor: Actor, now: datetime, reason: str
) -> FireOutcome:
    """Cancel an open case; recorded in its history with the reason. Its timers are cancelled."""
    case = get_case(session, case_id)
    if case.status != CaseStatus.OPEN.value:
        raise CaseClosed(f"Case {case_id} is already {case.status}.", case_id=case_id)
    return record_event(
        session,
        case_id,
        EventType.CANCELLED,
        {"reason": reason},
        actor=actor,
        now=now,
        status=CaseStatus.CANCELLED,
    )


def record_event(
    session: Session,
    case_id: int,
    event_type: EventType,
    payload: Mapping[str, Any],
    *,
    actor: Actor,
    now: datetime,
    status: CaseStatus | None = None,
    changes: Mapping[str, Any] | None = None,
) -> FireOutcome:
    """Append an event that does not move the case (an SLA warning or breach, an operator's
    note or reassignment, a cancellation) and bring the timers in line with it. ``changes``
    are data fields the event sets (checked against the data schema)."""
    case = get_case(session, case_id)
    definition = get_definition(session, case.definition_name, case.definition_version)
    new_version = case.version + 1
    new_status = (status or CaseStatus(case.status)).value
    data = dict(case.data)
    if changes:
        data.update(changes)
        compile_workflow(definition).check_initial_data(data)
        session.connection().execute(
            update(cases)
            .where(cases.c.id == case_id, cases.c.version == case.version)
            .values(data=data)
        )
    updated = session.connection().execute(
        _BUMP_CASE,
        {
            "case_id": case_id,
            "read_version": case.version,
            "new_status": new_status,
            "new_version": new_version,
            "now": now,
        },
    )
    if updated.rowcount != 1:
        raise ConcurrencyConflict(
            f"Case {case_id} changed while recording {event_type.value}.",
            hint="Retry; the event will be recorded on the current version.",
            case_id=case_id,
        )
    event = EventRecord(
        case_id=case_id,
        seq=new_version,
        event_type=event_type.value,
        trigger=None,
        from_state=case.state,
        to_state=case.state,
        actor=actor.name,
        payload=dict(payload),
        changes=dict(changes or {}),
        at=now,
    )
    _append(session.connection(), event)
    _observe(session, definition.name, event)
    new_case = dataclasses.replace(
        case, status=new_status, version=new_version, updated_at=now, data=data
    )
    if new_status not in (case.status, CaseStatus.OPEN.value):
        links.clear_waits(session.connection(), case_id, entered_at=now, closed=True)
        if new_status == CaseStatus.CANCELLED.value:
            links.child_cancelled(session, new_case, now=now, detail=dict(payload))
    scheduling.sync_after_event(session, definition, case=new_case, previous=case, now=now)
    return FireOutcome(new_case, event)
