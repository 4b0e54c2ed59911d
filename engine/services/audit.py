"""Proving the case history intact: checking the hash chains and taking and checking anchors.

Each case event is chained to the previous one when it is written (engine/store/case_store.py,
engine/core/history_chain.py), so an edited or deleted event breaks its case's chain. A
consistent rewrite of a whole chain (every hash recomputed) is what anchors are for: an anchor
is a digest over every case's latest hash at one moment, published outside the system
(docs/audit.md); recomputing it later from the stored history must give the same digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, text
from sqlalchemy.orm import Session

from engine.core.history_chain import (
    CHAIN_FORMAT,
    GENESIS,
    ChainBreak,
    StoredEvent,
    canonical_json,
    check_chain,
    heads_digest,
    instant,
)
from engine.errors import CaseNotFound
from engine.store import case_store
from engine.store.models import Case, CaseEvent, HistoryAnchor

CASES_PER_BATCH = 500
cases = Case.__table__
events = CaseEvent.__table__
anchors = HistoryAnchor.__table__


@dataclass
class AuditReport:
    """What a verification looked at and the first break of each broken case or anchor."""

    cases: int = 0
    events: int = 0
    anchors: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    anchor_problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks and not self.anchor_problems


# --- chains ------------------------------------------------------------------------------------


def _stored(row: Row[Any]) -> StoredEvent:
    return StoredEvent(case_store.chained(case_store.event_record(row)), row.hash)


def _case_batches(session: Session, case_id: int | None) -> Iterator[list[tuple[int, int, str]]]:
    """(id, version, history head) of the cases to check, a batch at a time."""
    conn = session.connection()
    if case_id is not None:
        row = conn.execute(
            select(cases.c.id, cases.c.version, cases.c.history_head).where(cases.c.id == case_id)
        ).one_or_none()
        if row is None:
            raise CaseNotFound(
                f"No case with id {case_id}.",
                hint="`svcflow cases list` finds cases.",
                case_id=case_id,
            )
        yield [(row.id, row.version, row.history_head)]
        return
    after = 0
    while True:
        batch = [
            (r.id, r.version, r.history_head)
            for r in conn.execute(
                select(cases.c.id, cases.c.version, cases.c.history_head)
                .where(cases.c.id > after)
                .order_by(cases.c.id)
                .limit(CASES_PER_BATCH)
            )
        ]
        if not batch:
            return
        yield batch
        after = batch[-1][0]


def verify_chains(session: Session, *, case_id: int | None = None, report: AuditReport) -> None:
    """Check the chain of one case or of every case, adding each case's first break."""
    conn = session.connection()
    for batch in _case_batches(session, case_id):
        by_case: dict[int, list[StoredEvent]] = {c: [] for c, _, _ in batch}
        rows = conn.execute(
            select(events)
            .where(events.c.case_id.in_(list(by_case)))
            .order_by(events.c.case_id, events.c.seq)
        )
        for row in rows:
            by_case[row.case_id].append(_stored(row))
        for cid, version, head in batch:
            report.cases += 1
            report.events += len(by_case[cid])
            found = check_chain(cid, by_case[cid], head_seq=version, head_hash=head)
            if found is not None:
                report.breaks.append(found)


# --- anchors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryState:
    """The history up to one event id: how many cases and events, and the heads' digest."""

    through_event_id: int
    cases: int
    events: int
    heads_digest: str


def anchor_point(session: Session) -> int:
    """The highest event id below which every event is committed, for an anchor to cover.

    Ids are handed out before commit, so on PostgreSQL a later id can commit before an earlier
    one; a SHARE lock waits for the transactions writing events to finish (and holds new ones
    off only until this transaction ends, so the caller should commit promptly). SQLite runs
    one writer at a time, so whatever it shows is complete."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE case_events IN SHARE MODE"))
    return int(session.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())


def history_state(session: Session, through_event_id: int) -> HistoryState:
    """Recompute the cases' latest hashes as of ``through_event_id`` and their digest."""
    covered = events.c.id <= through_event_id
    latest = (
        select(events.c.case_id, func.max(events.c.seq).label("seq"), func.count().label("n"))
        .where(covered)
        .group_by(events.c.case_id)
        .subquery()
    )
    rows = session.execute(
        select(latest.c.case_id, latest.c.seq, latest.c.n, events.c.hash).join(
            events, (events.c.case_id == latest.c.case_id) & (events.c.seq == latest.c.seq)
        )
    ).all()
    return HistoryState(
        through_event_id=through_event_id,
        cases=len(rows),
        events=sum(int(r.n) for r in rows),
        heads_digest=heads_digest((int(r.case_id), int(r.seq), str(r.hash)) for r in rows),
    )


def anchor_hash(
    *,
    anchored_at: datetime,
    state: HistoryState,
    previous_hash: str,
) -> str:
    """The hash an anchor publishes (the exact document is in docs/audit.md)."""
    document = {
        "format": CHAIN_FORMAT,
        "anchored_at": instant(anchored_at),
        "through_event_id": state.through_event_id,
        "cases": state.cases,
        "events": state.events,
        "heads_digest": state.heads_digest,
        "previous_hash": previous_hash,
    }
    return hashlib.sha256(canonical_json(document).encode("ascii")).hexdigest()


def take_anchor(
    session: Session, *, through_event_id: int, now: datetime, actor: str
) -> HistoryAnchor:
    """Record an anchor over the history up to ``through_event_id`` (see :func:`anchor_point`)."""
    previous = session.execute(
        select(HistoryAnchor).order_by(HistoryAnchor.id.desc()).limit(1)
    ).scalar_one_or_none()
    state = history_state(session, through_event_id)
    previous_hash = previous.hash if previous is not None else GENESIS
    anchor = HistoryAnchor(
        anchored_at=now,
        anchored_by=actor,
        through_event_id=state.through_event_id,
        cases=state.cases,
        events=state.events,
        heads_digest=state.heads_digest,
        previous_hash=previous_hash,
        hash=anchor_hash(anchored_at=now, state=state, previous_hash=previous_hash),
    )
    session.add(anchor)
    session.flush()
    return anchor


def published(anchor: HistoryAnchor) -> dict[str, Any]:
    """An anchor as it is published outside the system: what its hash covers, and the hash."""
    return {
        "format": CHAIN_FORMAT,
        "anchored_at": instant(anchor.anchored_at),
        "through_event_id": anchor.through_event_id,
        "cases": anchor.cases,
        "events": anchor.events,
        "heads_digest": anchor.heads_digest,
        "previous_hash": anchor.previous_hash,
        "hash": anchor.hash,
    }


def list_anchors(session: Session, *, limit: int = 20) -> list[HistoryAnchor]:
    return list(
        session.execute(
            select(HistoryAnchor).order_by(HistoryAnchor.id.desc()).limit(limit)
        ).scalars()
    )


def verify_anchors(session: Session, *, report: AuditReport) -> None:
    """Check that anchors chain to one another and still match the stored history."""
    previous_hash = GENESIS
    for anchor in session.execute(select(HistoryAnchor).order_by(HistoryAnchor.id)).scalars():
        report.anchors += 1
        where = f"anchor {anchor.id} (taken {instant(anchor.anchored_at)})"
        if anchor.previous_hash != previous_hash:
            report.anchor_problems.append(
                f"{where}: it does not follow the anchor before it (previous hash "
                f"{anchor.previous_hash}, expected {previous_hash}): an anchor was removed "
                "or rewritten"
            )
        state = history_state(session, anchor.through_event_id)
        recorded = HistoryState(
            anchor.through_event_id, anchor.cases, anchor.events, anchor.heads_digest
        )
        expected = anchor_hash(
            anchored_at=anchor.anchored_at, state=recorded, previous_hash=anchor.previous_hash
        )
        if anchor.hash != expected:
            report.anchor_problems.append(
                f"{where}: its fields do not give its hash {anchor.hash}: the anchor row was "
                "edited; compare with the published copy"
            )
        elif state != recorded:
            differs = [
                f"{name} {getattr(recorded, name)} then, {getattr(state, name)} now"
                for name in ("cases", "events", "heads_digest")
                if getattr(recorded, name) != getattr(state, name)
            ]
            report.anchor_problems.append(
                f"{where}: the history up to event id {anchor.through_event_id} no longer "
                f"matches it ({'; '.join(differs)}): events were changed, re-hashed or removed "
                "after it was taken"
            )
        previous_hash = anchor.hash


def verify(session: Session, *, case_id: int | None = None) -> AuditReport:
    """Check one case's chain, or every chain and every anchor."""
    report = AuditReport()
    verify_chains(session, case_id=case_id, report=report)
    if case_id is None:
        verify_anchors(session, report=report)
    return report
