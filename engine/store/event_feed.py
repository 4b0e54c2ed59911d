"""The event feed: a global, commit-ordered position for every case event (the outbox).

Every case event is written by :mod:`engine.store.case_store`, which notes the new row here
(:func:`note_written`). Just before the transaction commits, a ``before_commit`` hook takes the
transaction's positions from the one-row counter ``event_feed_head`` (``UPDATE ... SET position
= position + n RETURNING position``) and stamps them on the rows, in the same transaction.

Why a counter row and not the id sequence: on PostgreSQL a sequence hands out numbers in the
order transactions *ask*, not the order they *commit*; a reader could see id 11 committed while
id 10 is still in flight, move its cursor past 10, and never see it. The counter row's lock is
held from the moment positions are taken until the transaction has committed, so a transaction
that takes later positions waits for every one that took earlier positions to commit (or roll
back). Hence, at any instant, the committed positions are exactly those up to the committed
value of the counter, minus gaps that will never be filled (a rolled-back savepoint's events).
Readers rely on that: they read the head first and never return anything past it
(:func:`read_after`), so a cursor never skips an event that commits later. Taking positions at
the very end keeps the lock for the commit only, not for the whole transaction. On SQLite the
writers are serialised by ``BEGIN IMMEDIATE`` anyway; the same code is correct there.

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

from sqlalchemy import Connection, bindparam, event, select, update
from sqlalchemy.orm import Session

from engine.store.models import Case, CaseEvent, EventFeedHead

log = logging.getLogger(__name__)

NOTIFIER_KEY = "svcflow.feed_notifier"  # session.info: a FeedNotifier, set by the runtime
_UNPOSITIONED = "svcflow.unpositioned_events"
_HEAD_AFTER_COMMIT = "svcflow.feed_head"
_HEAD_ROW = 1

events = CaseEvent.__table__
cases = Case.__table__
head = EventFeedHead.__table__

_ADVANCE_HEAD = (
    update(head)
    .where(head.c.id == _HEAD_ROW)
    .values(position=head.c.position + bindparam("b_count"))
    .returning(head.c.position)
)
_STAMP = update(events).where(events.c.id == bindparam("b_id")).values(position=bindparam("b_pos"))
_READ_HEAD = select(head.c.position).where(head.c.id == _HEAD_ROW)


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


def note_written(session: Session, event_id: int) -> None:
    """Remember a case event written in this transaction: it gets its position at commit."""
    session.info.setdefault(_UNPOSITIONED, []).append(event_id)


@event.listens_for(Session, "before_commit")
def _take_positions(session: Session) -> None:
    pending = session.info.pop(_UNPOSITIONED, None)
    if not pending:
        return
    # Flush first, so nothing that may wait on another transaction's lock runs while this
    # one holds the counter (that would make every writer queue behind the slowest).
    session.flush()
    ids = list(dict.fromkeys(pending))  # SQLite may reuse a rolled-back savepoint's rowid
    conn = session.connection()
    last = int(conn.execute(_ADVANCE_HEAD, {"b_count": len(ids)}).scalar_one())
    first = last - len(ids) + 1
    # A row of a rolled-back savepoint matches nothing: its position stays an unused gap.
    conn.execute(_STAMP, [{"b_id": i, "b_pos": first + n} for n, i in enumerate(ids)])
    session.info[_HEAD_AFTER_COMMIT] = last


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


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_UNPOSITIONED, None)
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
        select(
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
        )
        .join(cases, cases.c.id == events.c.case_id)
        .where(events.c.position > after, events.c.position <= top)
        .order_by(events.c.position)
        .limit(limit)
    )
    if definition is not None:
        query = query.where(cases.c.definition_name == definition)
    if types:
        query = query.where(events.c.event_type.in_(list(types)))
    if case_id is not None:
        query = query.where(events.c.case_id == case_id)
    items = [
        FeedEvent(
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
        for r in conn.execute(query)
    ]
    if len(items) == limit:
        return FeedPage(items, items[-1].position)
    return FeedPage(items, max(top, after))
