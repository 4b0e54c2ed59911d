"""Creating cases, firing triggers, recording events: the use cases that change a case.

Each change is computed by the pure state machine and written by the case store
(``engine.store.case_store.write_event``: the version-guarded UPDATE and the history INSERT,
or ConcurrencyConflict), in the caller's transaction. Then its consequences follow in the
same transaction: the case's timers and SLA clocks are brought in line
(``engine.services.scheduling``), counters change, and what it sets in motion for related
cases (children to spawn, a parent to notify; ``engine.services.links``) is carried out by
:func:`settle`. On any error nothing is written: the caller rolls back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.core.contracts import Contract
from engine.core.machine import Actor, CompiledWorkflow, compile_workflow
from engine.core.messages import CHILD_NEWS_REFUSED, PAYLOAD_KEY, Message, error_record
from engine.core.records import CaseRecord, EventRecord, FireOutcome
from engine.core.reported_time import CountedInstant, count_reported, parse_reported
from engine.errors import BusinessKeyTaken, CaseClosed, VersionMismatch
from engine.services import (
    case_labels,
    contracts,
    counters,
    idempotency,
    links,
    scheduling,
    versions,
)
from engine.services.definitions import effective_parameters, get_definition
from engine.store import case_store
from engine.store.calendar_store import LazyCalendars
from engine.store.case_store import find_case, get_case, history
from engine.store.models import CaseStatus, EventType

__all__ = [
    "allowed_triggers",
    "cancel_case",
    "create_case",
    "find_case",
    "fire",
    "get_case",
    "history",
    "record_event",
    "settle",
]


def allowed_triggers(session: Session, case: CaseRecord, actor: Actor | None = None) -> list[str]:
    """The triggers the case takes now (guards not evaluated); with ``actor``, only those it
    may fire."""
    if case.status != CaseStatus.OPEN.value:
        return []
    definition = get_definition(session, case.definition_name, case.definition_version)
    return compile_workflow(definition).allowed_triggers(case.state, actor)


def _status(state: str, finals: frozenset[str]) -> str:
    return CaseStatus.COMPLETED.value if state in finals else CaseStatus.OPEN.value


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
    depth: int = 0,
    contract: str | None = None,
) -> FireOutcome:
    """Start a case of a published definition (latest version unless ``version`` is given).

    ``parent_id`` links it to the case that spawned it; a case created directly is attached to
    its parent by the definition's ``parent.attach_by_key`` when that case exists, and its
    parent hears of it as the definition says. ``contract`` names the service contract whose
    terms it takes; without one it takes its parent's, or the one covering its customer or
    device (engine/services/contracts.py), or none."""
    scope = f"create:{definition_name}"
    # A request naming no contract keeps the digest it had before contracts existed.
    digest = idempotency.fingerprint(
        dict(data), business_key, version, *([contract] if contract is not None else [])
    )
    if idempotency_key is not None:
        earlier = idempotency.recall(session, scope, idempotency_key, digest)
        if earlier is not None:
            case = get_case(session, earlier.case_id)
            return FireOutcome(case, case_store.event_at(session, case.id, 1), replayed=True)

    definition = get_definition(session, definition_name, version)
    assert definition.version is not None
    versions.check_takes_new_cases(session, definition.name, definition.version)
    compiled = compile_workflow(definition)
    compiled.check_initial_data(data)
    if business_key is not None:
        taken = case_store.case_with_key(session, definition_name, business_key)
        if taken is not None:
            raise BusinessKeyTaken(
                f"A {definition_name!r} case with business key {business_key!r} exists "
                f"(case {taken}).",
                hint="Business keys are unique per definition; fire triggers on that case.",
                case_id=taken,
                business_key=business_key,
            )
    params = effective_parameters(session, definition)
    spawned = parent_id is not None
    if not spawned and definition.parent and definition.parent.attach_by_key:
        parent_id = links.parent_by_key(
            session, definition.parent, data, params, now, decisions=definition.decisions
        )
    terms = _contract_of(session, data, now=now, named=contract, parent_id=parent_id)
    if terms is not None:
        params = contracts.terms_for_case(session, definition, terms, params)
        data = contracts.data_for_case(definition, terms, data)
        compiled.check_initial_data(data)
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
        "contract_name": terms.id if terms is not None else None,
        "contract_version": terms.version if terms is not None else None,
    }
    created = EventRecord(
        case_id=0,  # given by the insert
        seq=1,
        event_type=EventType.CREATED.value,
        trigger=None,
        from_state=None,
        to_state=definition.initial,
        actor=actor.name,
        payload=_created_payload(parent_id, terms),
        changes=dict(data),
        at=now,
        idempotency_key=idempotency_key,
    )
    labels = case_labels.initial_labels(session, definition, data, parent_id)
    case_id, head = case_store.insert_case(session, {**values, **labels}, created)
    event = dataclasses.replace(created, case_id=case_id, hash=head)
    if idempotency_key is not None:
        idempotency.remember(
            session, scope, idempotency_key, digest, case_id=case_id, seq=1, now=now
        )
    case = CaseRecord(id=case_id, **values, history_head=head)
    scheduling.sync_after_event(session, definition, case=case, previous=None, event=event, now=now)
    if parent_id is not None and not spawned:
        record_event(
            session,
            parent_id,
            EventType.CHILD_ATTACHED,
            {"child_id": case_id, "child_definition": definition.name},
            actor=actor,
            now=now,
        )
    if not spawned:  # a spawned child's news is told by the spawn, after child_spawned
        settle(session, links.after_create(definition, case, depth), now=now)
    return FireOutcome(
        case, event, allowed_triggers=tuple(compiled.allowed_triggers(case.state, actor))
    )


def _contract_of(
    session: Session,
    data: Mapping[str, Any],
    *,
    now: datetime,
    named: str | None,
    parent_id: int | None,
) -> Contract | None:
    inherited = None
    if named is None and parent_id is not None:
        parent = get_case(session, parent_id)
        if parent.contract_name is not None and parent.contract_version is not None:
            inherited = (parent.contract_name, parent.contract_version)
    return contracts.contract_for_case(session, data, now=now, named=named, inherited=inherited)


def _created_payload(parent_id: int | None, terms: Contract | None) -> dict[str, Any]:
    """What the ``created`` event records beside the data: the parent, and the contract the
    case's terms come from, so the history alone shows which promises the case is held to."""
    payload: dict[str, Any] = {"parent_id": parent_id} if parent_id else {}
    if terms is not None:
        payload["contract"] = {"id": terms.id, "version": terms.version}
    return payload


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
    case: CaseRecord | None = None,
) -> FireOutcome:
    """Fire ``trigger`` on a case; on any error nothing is written (the caller rolls back).

    ``reason`` is an operator's justification, kept in the event's context. ``depth`` counts
    how deep in a chain of cases (spawns, parent notifications) this fire is. ``case`` is the
    case as already read in this transaction (a due timer's fire reads it under lock), so
    that it is not read again; by default it is read here."""
    payload = dict(payload or {})
    scope = f"fire:{case_id}"
    digest = idempotency.fingerprint(trigger, payload) if idempotency_key is not None else ""
    if idempotency_key is not None:
        earlier = idempotency.recall(session, scope, idempotency_key, digest)
        if earlier is not None:
            case = get_case(session, case_id)
            event = case_store.event_at(session, case_id, earlier.event_seq)
            return FireOutcome(case, event, replayed=True)

    conn = session.connection()  # resolved once: each lookup costs as much as a statement
    if case is None or case.id != case_id:
        case = case_store.read_case(conn, case_id)
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
    # ``at``: when the fact happened, as far as the case's clocks and timers count it; ``now``
    # is when svcflow received it. They differ only for a report made late (occurred_at).
    counted = _counted_instant(session, compiled, case, trigger, payload, received=now)
    at = counted.at if counted is not None else now
    # What guards, actions and counter keys may compute business time on: read from the
    # database only if an expression calls a business-time function.
    calendars = LazyCalendars(session)
    counter_keys: dict[str, str] = {}
    counter_values: dict[str, int] = {}
    # Counters are read (and recorded in the event's context) only for a trigger whose
    # transitions from this state read them: one statement per counter, on every fire else.
    if definition.counters and compiled.reads_counters(trigger, case.state):
        counter_keys = compiled.counter_keys(case.data, case.params, at, calendars)
        counter_values = counters.read(conn, counter_keys)
    result = compiled.step(
        state=case.state,
        data=case.data,
        trigger=trigger,
        payload=payload,
        params=case.params,
        now=at,
        actor=actor,
        case_id=case_id,
        counters=counter_values,
        calendars=calendars,
        created_at=case.created_at,
    )
    moved = result.to_state != case.state
    entered = result.entered  # moved, or stayed with ``reenter``: the state's timers restart
    version = case.version + 1
    after = dataclasses.replace(
        case,
        state=result.to_state,
        status=_status(result.to_state, definition.final_states),
        data=result.data,
        version=version,
        updated_at=now,
        # Staying keeps the state entry, so its timers keep running (unless it re-enters).
        state_entered_at=at if entered else case.state_entered_at,
        state_entry_seq=version if entered else case.state_entry_seq,
    )
    event = EventRecord(
        case_id=case_id,
        seq=version,
        event_type=EventType.TRANSITION.value,
        trigger=trigger,
        from_state=case.state,
        to_state=result.to_state,
        actor=actor.name,
        payload=payload,
        changes=result.changes,
        at=at,
        idempotency_key=idempotency_key,
        context=_context(counter_values, reason, counted, reentered=result.reentered),
    )
    head = case_store.write_event(
        session, case, after, event, doing=f"{trigger!r} was being fired", conn=conn
    )
    after = dataclasses.replace(after, history_head=head)
    event = dataclasses.replace(event, hash=head)
    if after.status != CaseStatus.OPEN.value:
        # Only on closing: a move within the case leaves its case_waits rows to the rules'
        # own checks, and the hot path one statement shorter (see links.clear_waits).
        links.clear_waits(conn, case_id, entered_at=at, closed=True)
    if result.counter_deltas and not counter_keys:
        counter_keys = compiled.counter_keys(case.data, case.params, at, calendars)
    for name, by in result.counter_deltas.items():
        counters.add(conn, name, counter_keys[name], by, at)
    if idempotency_key is not None:
        idempotency.remember(
            session, scope, idempotency_key, digest, case_id=case_id, seq=version, now=now
        )
    # Timers are planned from the state entry (``at``) but armed now, and related cases change
    # now: a late report moves no other case's history back.
    scheduling.sync_after_event(
        session, definition, case=after, previous=case, event=event, now=now
    )
    effects = links.after_transition(
        definition, after, result.spawns, entered=result.to_state if moved else None, depth=depth
    )
    if effects:
        settle(session, effects, now=now)
        after = get_case(session, case_id)  # spawning records events on this case
    allowed = (
        compiled.allowed_triggers(after.state, actor) if after.status == CaseStatus.OPEN else []
    )
    return FireOutcome(after, event, allowed_triggers=tuple(allowed))


def _counted_instant(
    session: Session,
    compiled: CompiledWorkflow,
    case: CaseRecord,
    trigger: str,
    payload: Mapping[str, Any],
    *,
    received: datetime,
) -> CountedInstant | None:
    """When a fact reported by ``trigger`` counts, if the trigger reports one (its transitions'
    ``occurred_at``) and the payload says when; engine/core/reported_time.py has the bounds.
    A trigger the state does not take is left to the machine to refuse, in its own words."""
    spec = compiled.occurred_at(trigger)
    if spec is None or not isinstance(payload.get(spec.field), str):
        return None  # absent (counts when received), or not text: the payload_schema refuses it
    if trigger not in compiled.allowed_triggers(case.state):
        return None
    reported = parse_reported(payload[spec.field], trigger=trigger, field=spec.field)
    previous = case_store.event_at(session, case.id, case.version)
    return count_reported(
        reported,
        received=received,
        previous=previous.at,
        previous_seq=previous.seq,
        spec=spec,
        trigger=trigger,
    )


def _context(
    counter_values: Mapping[str, int],
    reason: str | None,
    counted: CountedInstant | None = None,
    *,
    reentered: bool = False,
) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if reentered:
        out["reentered"] = True  # from_state == to_state, yet the state was entered again
    if counter_values:
        out["counters"] = dict(counter_values)
    if reason:
        out["reason"] = reason
    if counted is not None:
        out.update(counted.context())
    return out or None


# --- events that do not move the case ----------------------------------------------------------


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
    at: datetime | None = None,
    context: Mapping[str, Any] | None = None,
    case: CaseRecord | None = None,
) -> FireOutcome:
    """Append an event that does not move the case (an SLA warning or breach, an operator's
    note or reassignment, a cancellation) and bring the timers in line with it. ``changes``
    are data fields the event sets (checked against the data schema). ``at`` is when it
    counts, if earlier than ``now`` (never before the case's previous event). ``case``: as
    already read in this transaction, if it was (see :func:`fire`)."""
    if case is None or case.id != case_id:
        case = get_case(session, case_id)
    definition = get_definition(session, case.definition_name, case.definition_version)
    data = dict(case.data)
    if changes:
        data.update(changes)
        compile_workflow(definition).check_data_changes(data, changes)
    after = dataclasses.replace(
        case,
        status=(status or CaseStatus(case.status)).value,
        version=case.version + 1,
        updated_at=now,
        data=data,
    )
    event = EventRecord(
        case_id=case_id,
        seq=after.version,
        event_type=event_type.value,
        trigger=None,
        from_state=case.state,
        to_state=case.state,
        actor=actor.name,
        payload=dict(payload),
        changes=dict(changes or {}),
        at=now if at is None else at,
        context=dict(context) if context else None,
    )
    head = case_store.write_event(
        session, case, after, event, doing=f"recording {event_type.value}"
    )
    after = dataclasses.replace(after, history_head=head)
    event = dataclasses.replace(event, hash=head)
    if after.status not in (case.status, CaseStatus.OPEN.value):
        links.clear_waits(session.connection(), case_id, entered_at=now, closed=True)
        if after.status == CaseStatus.CANCELLED.value:
            links.child_cancelled(session, after, now=now, detail=dict(payload))
    scheduling.sync_after_event(
        session, definition, case=after, previous=case, event=event, now=now
    )
    return FireOutcome(after, event)


# --- what a change sets in motion --------------------------------------------------------------


def settle(session: Session, effects: Sequence[links.Effect], *, now: datetime) -> None:
    """Carry out what a change set in motion for related cases, in the caller's transaction,
    depth first: each effect's own consequences follow it before the next effect, so
    histories read in the order things happened."""
    for effect in effects:
        if isinstance(effect, links.SpawnChild):
            _spawn(session, effect, now=now)
        else:
            _notify(session, effect, now=now)


def _spawn(session: Session, effect: links.SpawnChild, *, now: datetime) -> None:
    parent, request = effect.parent, effect.request
    links.check_depth(effect.depth + 1, parent)
    actor = links.case_actor(parent)
    child = create_case(
        session,
        request.definition,
        request.data,
        actor=actor,
        now=now,
        business_key=request.business_key,
        parent_id=parent.id,
        depth=effect.depth + 1,
    ).case
    record_event(
        session,
        parent.id,
        EventType.CHILD_SPAWNED,
        {"child_id": child.id, "child_definition": child.definition_name, "action": request.path},
        actor=actor,
        now=now,
    )
    definition = get_definition(session, child.definition_name, child.definition_version)
    settle(session, links.after_create(definition, child, effect.depth + 1), now=now)


def _notify(session: Session, notice: links.NotifyParent, *, now: datetime) -> None:
    """Fire the parent trigger the child's news calls for, or record why it could not."""
    call = links.parent_call(notice)
    if call is None:
        return
    links.check_depth(notice.depth + 1, notice.child)
    actor = links.case_actor(notice.child)
    try:
        with session.begin_nested():
            fire(
                session,
                call.parent_id,
                call.trigger,
                call.payload,
                actor=actor,
                now=now,
                depth=notice.depth + 1,
            )
    except links.NOT_TAKEN as exc:
        news = {**call.payload, "trigger": call.trigger, "not_fired": exc.code}
        news["reason"] = exc.message
        refusal = Message(CHILD_NEWS_REFUSED, {"error": error_record(exc)})
        news[PAYLOAD_KEY] = {"reason": refusal.to_dict()}
        outcome = record_event(
            session, call.parent_id, EventType.CHILD_UPDATE, news, actor=actor, now=now
        )
        if outcome.case.status == CaseStatus.OPEN.value:
            links.add_wait(
                session,
                call.parent_id,
                links.ORPHANED_WAIT,
                child_id=notice.child.id,
                since=now,
                event_seq=outcome.event.seq,
                detail=news,
            )
