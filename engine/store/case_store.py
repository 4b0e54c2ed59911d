"""The case rows and their history: the one place a case changes.

Every change to a case is one UPDATE of its row guarded by the version the change was computed
from (optimistic locking), plus one INSERT into its history with ``seq`` equal to the new
version, in the caller's transaction (:func:`write_event`); the event's global feed position
is stamped just before that transaction commits (:mod:`engine.store.event_feed`). So history
is contiguous by construction, and of two concurrent changes computed from the same version
exactly one wins; the other gets :class:`ConcurrencyConflict` and nothing of it is written.
Fires, recorded events (SLA breaches, operator notes, cancellations) and forced states all go
through it.

The statements are Core, built once: a fire is two statements after the read, and building
and cache-keying a statement per call cost more than the state machine step itself
(bench/transitions.py holds the engine to at least half the speed of those two statements
issued by hand).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core.history_chain import GENESIS, ChainedEvent, event_hash
from engine.core.records import CaseRecord, EventRecord
from engine.errors import BusinessKeyTaken, CaseNotFound, ConcurrencyConflict
from engine.store import event_feed, observations
from engine.store.database import inserted_id
from engine.store.models import Case, CaseEvent

cases = Case.__table__
events = CaseEvent.__table__

_SELECT_CASE = select(cases).where(cases.c.id == bindparam("case_id"))
_UPDATE_CASE = (
    update(cases)
    .where(
        cases.c.id == bindparam("case_id"),
        cases.c.version == bindparam("read_version"),
        cases.c.history_head == bindparam("read_head"),
    )
    .values(
        history_head=bindparam("new_head"),
        state=bindparam("new_state"),
        status=bindparam("new_status"),
        data=bindparam("new_data"),
        version=bindparam("new_version"),
        updated_at=bindparam("now"),
        state_entered_at=bindparam("entered_at"),
        state_entry_seq=bindparam("entry_seq"),
    )
)
# A migration also moves the case to another definition version and parameter snapshot; the
# same guard, kept apart so that a fire does not bind (and serialise) the parameters.
_UPDATE_CASE_AND_DEFINITION = _UPDATE_CASE.values(
    definition_version=bindparam("new_definition_version"), params=bindparam("new_params")
)
_SELECT_HEAD = select(cases.c.history_head).where(cases.c.id == bindparam("case_id"))
_SET_HEAD = (
    update(cases)
    .where(cases.c.id == bindparam("case_id"))
    .values(history_head=bindparam("new_head"))
)
_SELECT_HISTORY = (
    select(events).where(events.c.case_id == bindparam("case_id")).order_by(events.c.seq)
)


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
        history_head=row.history_head,
        contract_name=row.contract_name,
        contract_version=row.contract_version,
    )


def event_record(row: Row[Any]) -> EventRecord:
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
        hash=row.hash,
    )


# --- reading -----------------------------------------------------------------------------------


def get_case(session: Session, case_id: int) -> CaseRecord:
    return read_case(session.connection(), case_id)


def read_case(conn: Connection, case_id: int) -> CaseRecord:
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


def case_with_key(session: Session, definition_name: str, business_key: str) -> int | None:
    """The id of the case with this business key, if there is one."""
    found = (
        session.connection()
        .execute(
            select(cases.c.id).where(
                cases.c.definition_name == definition_name, cases.c.business_key == business_key
            )
        )
        .scalar_one_or_none()
    )
    return int(found) if found is not None else None


def history(session: Session, case_id: int, *, after_seq: int = 0) -> list[EventRecord]:
    """The case's events in order (its existence checked: an unknown id is CaseNotFound);
    with ``after_seq``, only those after it, so a reader fetches what is new."""
    get_case(session, case_id)
    if after_seq <= 0:
        return events_of(session.connection(), case_id)
    rows = session.connection().execute(
        select(events)
        .where(events.c.case_id == case_id, events.c.seq > after_seq)
        .order_by(events.c.seq)
    )
    return [event_record(r) for r in rows]


def events_of(conn: Connection, case_id: int) -> list[EventRecord]:
    """The events of a case known to exist, in order."""
    return [event_record(r) for r in conn.execute(_SELECT_HISTORY, {"case_id": case_id})]


def event_at(session: Session, case_id: int, seq: int) -> EventRecord:
    row = session.execute(
        select(events).where(events.c.case_id == case_id, events.c.seq == seq)
    ).one()
    return event_record(row)


def children_of(session: Session, case_id: int) -> list[CaseRecord]:
    rows = session.execute(
        select(cases).where(cases.c.parent_id == case_id).order_by(cases.c.id)
    ).all()
    return [case_record(r) for r in rows]


def status_of(session: Session, case_id: int) -> str | None:
    found = (
        session.connection()
        .execute(select(cases.c.status).where(cases.c.id == case_id))
        .scalar_one_or_none()
    )
    return str(found) if found is not None else None


# --- writing -----------------------------------------------------------------------------------


def insert_case(
    session: Session, values: Mapping[str, Any], created: EventRecord
) -> tuple[int, str]:
    """Insert a new case row (version 1) and its ``created`` event; returns the case id and
    the event's hash (the case's history head)."""
    try:
        # The head is set once the created event has its hash, which covers the new id.
        row = {**values, "history_head": ""}
        case_id = inserted_id(session.execute(insert(cases).values(**row)))
    except IntegrityError as exc:
        raise BusinessKeyTaken(
            f"A {values['definition_name']!r} case with business key "
            f"{values['business_key']!r} was just created.",
            hint="Business keys are unique per definition; fire triggers on that case.",
            business_key=values["business_key"],
        ) from exc
    event = dataclasses.replace(created, case_id=case_id)
    conn = session.connection()
    head = _append(session, conn, event, values["definition_name"], previous=GENESIS)
    conn.execute(_SET_HEAD, {"case_id": case_id, "new_head": head})
    return case_id, head


def write_event(
    session: Session,
    before: CaseRecord,
    after: CaseRecord,
    event: EventRecord,
    *,
    doing: str,
    conn: Connection | None = None,
) -> str:
    """Move the case row from ``before`` to ``after`` and append ``event``, or raise; returns
    the event's hash, the case's new history head (a record the caller keeps using in this
    transaction must carry it: the next event chains to it).

    ``after.version`` must be ``before.version + 1`` and ``event.seq`` equal to it. A
    migration changes the definition version and parameters as well (given as ``after``'s). The
    UPDATE only matches while the row is still at ``before.version``; when another change got
    there first nothing is written and :class:`ConcurrencyConflict` says what was being done
    (``doing``, e.g. "'contact' was being fired") and where the case is now.

    The event is chained to the previous one (engine/core/history_chain.py): its hash covers
    the hash ``before`` read as the case's history head, and the UPDATE matches only while
    the row still has that head, so the chain cannot fork.
    """
    if not after.version == event.seq == before.version + 1:
        raise ValueError("a case event must take the case to its next version")
    conn = conn if conn is not None else session.connection()
    statement, extra = _UPDATE_CASE, {}
    if after.definition_version != before.definition_version or after.params is not before.params:
        statement = _UPDATE_CASE_AND_DEFINITION
        extra = {
            "new_definition_version": after.definition_version,
            "new_params": dict(after.params),
        }
    previous = before.history_head
    if previous is None:  # a record built by hand, not read: the row knows
        previous = conn.execute(_SELECT_HEAD, {"case_id": before.id}).scalar_one_or_none() or ""
    head = event_hash(chained(event), previous)
    updated = conn.execute(
        statement,
        {
            **extra,
            "case_id": before.id,
            "read_version": before.version,
            "read_head": previous,
            "new_head": head,
            "new_state": after.state,
            "new_status": after.status,
            "new_data": after.data,
            "new_version": after.version,
            "now": after.updated_at,
            "entered_at": after.state_entered_at,
            "entry_seq": after.state_entry_seq,
        },
    )
    if updated.rowcount != 1:
        current = read_case(conn, before.id)
        raise ConcurrencyConflict(
            f"Case {before.id} changed while {doing} (now version {current.version}, state "
            f"{current.state!r}).",
            hint="Reload the case and try again if it still applies.",
            case_id=before.id,
            state=current.state,
            version=current.version,
            trigger=event.trigger,
        )
    return _append(session, conn, event, after.definition_name, previous=previous, head=head)


def chained(event: EventRecord) -> ChainedEvent:
    """What of ``event`` its hash covers (engine/core/history_chain.py, docs/audit.md)."""
    return ChainedEvent(
        case_id=event.case_id,
        seq=event.seq,
        event_type=event.event_type,
        trigger=event.trigger,
        from_state=event.from_state,
        to_state=event.to_state,
        actor=event.actor,
        payload=event.payload,
        changes=event.changes,
        at=event.at,
        idempotency_key=event.idempotency_key,
        context=event.context or None,
    )


def _append(
    session: Session,
    conn: Connection,
    event: EventRecord,
    definition: str,
    *,
    previous: str,
    head: str | None = None,
) -> str:
    """Insert ``event`` chained to ``previous``; returns its hash."""
    if head is None:
        head = event_hash(chained(event), previous)
    statement, feed_params = event_feed.insert_statement(session, conn)
    written = conn.execute(
        statement,
        {
            **feed_params,
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
            "hash": head,
        },
    )
    # Its feed position is taken when the transaction commits (engine/store/event_feed.py).
    event_feed.note_written(session, inserted_id(written))
    observations.note(
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
    return head
