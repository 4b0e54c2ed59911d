"""The event feed: a global, commit-ordered position for every case event (the outbox).

Every case event is written by :mod:`engine.store.case_store`, with the INSERT this module
gives it (:func:`insert_statement`), and noted here (:func:`note_written`). Just before the
transaction commits, a ``before_commit`` hook takes the transaction's positions from the
one-row counter ``event_feed_head`` and stamps them on the rows, in the same transaction: on
PostgreSQL one statement does both (:data:`_TAKE_AND_STAMP`); on SQLite, where the writer has
held the write lock since ``BEGIN IMMEDIATE``, each event already took "head + its rank" when
it was inserted and the hook only moves the head. Either way a committing transaction that
wrote events pays one statement more.

Why a counter row and not the id sequence: on PostgreSQL a sequence hands out numbers in the
order transactions *ask*, not the order they *commit*; a reader could see id 11 committed while
id 10 is still in flight, move its cursor past 10, and never see it. The counter row's lock is
held from the moment positions are taken until the transaction has committed, so a transaction
that takes later positions waits for every one that took earlier positions to commit (or roll
back). Hence, at any instant, the committed positions are exactly those up to the committed
value of the counter, minus holes that will never be filled (a rolled-back savepoint's events).
Readers rely on that: they read the head first and never return anything past it
(:func:`read_after`), so a cursor never skips an event that commits later. Taking positions at
the very end keeps the lock for the commit only, not for the whole transaction. On SQLite the
writers are serialised from ``BEGIN IMMEDIATE`` on, so nothing can move the head between an
event's INSERT and its commit.

Positions increase in commit order; they are not gap-free. After commit, the hook hands the
new head to the session's :class:`FeedNotifier` (Redis pub/sub in the runtime), which wakes the
long-polling readers; a lost notification only delays a reader until its next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, event, insert, select, text, update
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.dml import Insert

from engine.store.models import Case, CaseEvent, EventFeedHead

log = logging.getLogger(__name__)

NOTIFIER_KEY = "svcflow.feed_notifier"  # session.info: a FeedNotifier, set by the runtime
_UNPOSITIONED = "svcflow.unpositioned_events"
_RANKED = "svcflow.ranked_events"  # SQLite: how many events of this transaction hold a rank
_HEAD_AFTER_COMMIT = "svcflow.feed_head"
_HEAD_ROW = 1

events = CaseEvent.__table__
cases = Case.__table__
head = EventFeedHead.__table__

_READ_HEAD = select(head.c.position).where(head.c.id == _HEAD_ROW)
_ADVANCE_HEAD = (
    update(head)
    .where(head.c.id == _HEAD_ROW)
    .values(position=head.c.position + bindparam("b_count"))
    .returning(head.c.position)
)
# SQLite: the writer holds the database's write lock from BEGIN IMMEDIATE to COMMIT, so the
# head cannot move under it; each event takes "head + its rank in the transaction" as it is
# inserted, and the commit moves the head past them.
INSERT_RANKED = insert(events).values(
    position=_READ_HEAD.scalar_subquery() + bindparam("b_feed_rank")
)
INSERT_UNRANKED = insert(events)
# PostgreSQL: take the positions and stamp them on the transaction's events in one statement,
# at commit, while the counter row's lock orders the committing transactions.
_TAKE_AND_STAMP = text(
    """
    WITH head AS (
        UPDATE event_feed_head SET position = position + :b_count WHERE id = 1
        RETURNING position
    )
    UPDATE case_events SET position = head.position - :b_count + ranked.rank
    FROM head, unnest(CAST(:b_ids AS BIGINT[])) WITH ORDINALITY AS ranked(id, rank)
    WHERE case_events.id = ranked.id
    RETURNING head.position
    """
)


class FeedNotifier(Protocol):
    """Told the new head after a commit that added events (must not raise for long)."""

    def notify(self, position: int) -> None: ...


@dataclass(frozen=True)
class FeedEvent:
    """One event as the feed shows it: the history row plus its case's definition and key."""

    position: int
    case_id: int
    seq: int
    definition: str
    definition_version: int
    business_key: str | None
    event_type: str
    trigger: str | None
    from_state: str | None
    to_state: str
    actor: str
    payload: dict[str, Any]
    changes: dict[str, Any]
    at: datetime

    @property
    def event_id(self) -> str:
        """A stable id for the event (the same in the feed, the SSE stream and webhooks)."""
        return f"evt_{self.position}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "position": self.position,
            "case_id": self.case_id,
            "seq": self.seq,
            "definition": self.definition,
            "definition_version": self.definition_version,
            "business_key": self.business_key,
            "type": self.event_type,
            "trigger": self.trigger,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "payload": self.payload,
            "changes": self.changes,
        }


@dataclass(frozen=True)
class FeedPage:
    items: list[FeedEvent]
    next: int  # the cursor to pass as ``after`` next time


# --- writing -----------------------------------------------------------------------------------


def insert_statement(session: Session, conn: Connection) -> tuple[Insert, dict[str, int]]:
    """The INSERT for the next case event of this transaction, and the parameters it needs
    besides the event's own columns (see :data:`INSERT_RANKED`)."""
    if conn.dialect.name != "sqlite":
        return INSERT_UNRANKED, {}
    rank = session.info.get(_RANKED, 0) + 1
    session.info[_RANKED] = rank
    return INSERT_RANKED, {"b_feed_rank": rank}


def note_written(session: Session, event_id: int) -> None:
    """Remember a case event written in this transaction: it gets its position at commit."""
    session.info.setdefault(_UNPOSITIONED, []).append(event_id)


@event.listens_for(Session, "before_commit")
def _take_positions(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release: positions are taken at the real commit only
    pending = session.info.pop(_UNPOSITIONED, None)
    ranked = session.info.pop(_RANKED, 0)
    if not pending:
        return
    conn = session.connection()
    if ranked:  # SQLite: the events hold their positions already; move the head past them
        last = conn.execute(_ADVANCE_HEAD, {"b_count": ranked}).scalar_one()
    else:
        # Flush first, so nothing that may wait on another transaction's lock runs while
        # this one holds the counter (every committing writer would queue behind it).
        session.flush()
        # A row of a rolled-back savepoint matches nothing: its position stays a hole.
        last = conn.execute(_TAKE_AND_STAMP, {"b_count": len(pending), "b_ids": pending}).scalar()
    if last is not None:
        session.info[_HEAD_AFTER_COMMIT] = int(last)


@event.listens_for(Session, "after_commit")
def _notify(session: Session) -> None:
    last = session.info.pop(_HEAD_AFTER_COMMIT, None)
    notifier = session.info.get(NOTIFIER_KEY)
    if last is None or notifier is None:
        return
    try:
        notifier.notify(last)
    except Exception as exc:  # readers poll as well; a lost wake-up only delays them
        log.debug("feed notification failed after commit (%s: %s)", type(exc).__name__, exc)


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    """A transaction ended without taking positions (a rollback): forget its events. A
    savepoint's end forgets nothing: the positions its events took (SQLite ranks them as they
    are written) stay taken, as holes if it rolled back, so the events written after it in
    the same transaction never take one of them again."""
    if transaction.nested or transaction.parent is not None:
        return
    session.info.pop(_UNPOSITIONED, None)
    session.info.pop(_RANKED, None)


@event.listens_for(Session, "after_rollback")
def _forget_the_head(session: Session) -> None:
    session.info.pop(_HEAD_AFTER_COMMIT, None)


# --- reading -----------------------------------------------------------------------------------


def head_position(conn: Connection) -> int:
    """The last position handed to a committed event (0 before the first)."""
    return int(conn.execute(_READ_HEAD).scalar_one())


def read_after(
    conn: Connection,
    after: int,
    *,
    limit: int,
    definition: str | None = None,
    types: Sequence[str] = (),
    case_id: int | None = None,
) -> FeedPage:
    """Up to ``limit`` committed events after position ``after``, in position order.

    The head is read first and nothing past it is returned: every event up to the head has
    committed, so the page is final and the returned cursor never passes an event still in
    flight (see the module doc). When the page is not full the cursor moves to the head, so
    a filtered reader does not scan the same unmatched events again next time.
    """
    top = head_position(conn)
    query = (
        _FEED_SELECT.where(events.c.position > after, events.c.position <= top)
        .order_by(events.c.position)
        .limit(limit)
    )
    if definition is not None:
        query = query.where(cases.c.definition_name == definition)
    if types:
        query = query.where(events.c.event_type.in_(list(types)))
    if case_id is not None:
        query = query.where(events.c.case_id == case_id)
    items = [_feed_event(r) for r in conn.execute(query)]
    if len(items) == limit:
        return FeedPage(items, items[-1].position)
    return FeedPage(items, max(top, after))


def events_at(conn: Connection, positions: Sequence[int]) -> dict[int, FeedEvent]:
    """The committed events at these positions, by position."""
    if not positions:
        return {}
    query = _FEED_SELECT.where(events.c.position.in_(list(positions)))
    return {int(r.position): _feed_event(r) for r in conn.execute(query)}


_FEED_SELECT = select(
    events.c.position,
    events.c.case_id,
    events.c.seq,
    cases.c.definition_name,
    cases.c.definition_version,
    cases.c.business_key,
    events.c.event_type,
    events.c.trigger,
    events.c.from_state,
    events.c.to_state,
    events.c.actor,
    events.c.payload,
    events.c.changes,
    events.c.at,
).join(cases, cases.c.id == events.c.case_id)


def _feed_event(r: Any) -> FeedEvent:
    return FeedEvent(
        position=int(r.position),
        case_id=r.case_id,
        seq=r.seq,
        definition=r.definition_name,
        definition_version=r.definition_version,
        business_key=r.business_key,
        event_type=r.event_type,
        trigger=r.trigger,
        from_state=r.from_state,
        to_state=r.to_state,
        actor=r.actor,
        payload=dict(r.payload),
        changes=dict(r.changes),
        at=r.at,
    )
