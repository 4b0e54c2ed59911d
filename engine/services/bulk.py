"""Bulk operator actions: one operation on many open cases, with one transaction policy for
the API, the CLI and the dashboard.

Cases are taken newest first, in chunks of at most :data:`MAX_CHUNK`. A chunk is acted on in
one transaction of the caller's, with a savepoint per case: a case that refuses (the trigger
is not allowed in its state, its clock is already paused) is reported with its error code and
left as it was; the others are done. An interrupted chunk leaves nothing of itself behind,
and over HTTP its result commits with its ``Idempotency-Key`` record, so a retry answers from
that record instead of acting again.

The API and the dashboard act on one chunk per request and return the cursor of the next
(``next_before_id``; None when nothing more matched). The CLI runs chunk after chunk, each
in its own transaction, continuing below the last case of the previous chunk, so no case is
acted on twice even when it still matches the filter afterwards.

A filter must narrow the cases down (a definition, a state, or overdue): a bulk action never
targets every open case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session

from engine.core.machine import ADMIN_ROLE, Actor
from engine.core.records import CaseRecord, FireOutcome
from engine.errors import OperationInvalid, SvcflowError, TriggerNotPermitted
from engine.services import cases, operations
from engine.services.search import CaseFilter, collect_cases

MAX_CHUNK = 1000  # cases one transaction acts on (and the most one API request may ask for)

Act = Callable[[Session, int], FireOutcome]


class BulkAction(str, Enum):
    FIRE = "fire"
    CANCEL = "cancel"
    FORCE = "force"
    PAUSE_SLA = "pause_sla"
    RESUME_SLA = "resume_sla"
    REASSIGN = "reassign"


class Outcome(str, Enum):
    MATCHED = "matched"  # a dry run: nothing was done
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Item:
    case_id: int
    state: str  # the state the case was matched in
    outcome: Outcome
    new_state: str | None = None
    event_seq: int | None = None
    code: str | None = None  # why it failed: an svcflow error code
    detail: str | None = None


@dataclass(frozen=True)
class Chunk:
    """The cases of one chunk, and the cursor of the next (None: no more matched)."""

    cases: list[CaseRecord]
    next_before_id: int | None


@dataclass(frozen=True)
class Result:
    action: BulkAction
    dry_run: bool
    items: list[Item] = field(default_factory=list)
    next_before_id: int | None = None

    @property
    def matched(self) -> int:
        return len(self.items)

    @property
    def truncated(self) -> bool:
        return self.next_before_id is not None

    @property
    def done(self) -> int:
        return sum(i.outcome is Outcome.DONE for i in self.items)

    @property
    def failed(self) -> int:
        return sum(i.outcome is Outcome.FAILED for i in self.items)


def check_filter(query: CaseFilter) -> None:
    if not (query.definition or query.state or query.overdue):
        raise OperationInvalid(
            "A bulk action needs a filter: a definition, a state, or overdue.",
            hint="Narrow the cases down; a bulk action never targets every open case.",
        )


def next_chunk(
    session: Session,
    query: CaseFilter,
    *,
    now: datetime,
    limit: int = MAX_CHUNK,
    before_id: int | None = None,
) -> Chunk:
    """The next open cases matching ``query``, newest first, below ``before_id``: at most
    ``limit`` (itself at most :data:`MAX_CHUNK`)."""
    check_filter(query)
    if not 1 <= limit <= MAX_CHUNK:
        raise OperationInvalid(
            f"A bulk chunk takes 1 to {MAX_CHUNK} cases, not {limit}.",
            hint="Act on the rest in a further call with the returned cursor.",
        )
    open_only = dataclasses.replace(query, status="open")
    found, cursor = collect_cases(session, open_only, now=now, limit=limit, before_id=before_id)
    return Chunk(found, cursor)


def cases_by_id(session: Session, case_ids: Sequence[int]) -> list[CaseRecord]:
    """Cases named by id (the CLI's explicit list), at most :data:`MAX_CHUNK` per chunk."""
    return [cases.get_case(session, case_id) for case_id in case_ids]


def operation(
    action: BulkAction, params: Mapping[str, Any], *, actor: Actor, reason: str, now: datetime
) -> Act:
    """The operator action to apply to each case. ``force`` is refused at once without the
    administrator role, before any case is looked at."""
    if action is BulkAction.FIRE:
        return lambda s, cid: operations.fire(
            s,
            cid,
            params["trigger"],
            params.get("payload") or {},
            actor=actor,
            reason=reason,
            now=now,
        )
    if action is BulkAction.CANCEL:
        return lambda s, cid: operations.cancel(s, cid, actor=actor, reason=reason, now=now)
    if action is BulkAction.FORCE:
        if ADMIN_ROLE not in actor.roles:
            raise TriggerNotPermitted(
                "Only administrators may force cases into a state.",
                hint="Ask an administrator, or fire an allowed trigger.",
            )
        return lambda s, cid: operations.force_state(
            s, cid, params["state"], actor=actor, reason=reason, now=now
        )
    if action in (BulkAction.PAUSE_SLA, BulkAction.RESUME_SLA):
        pause = action is BulkAction.PAUSE_SLA
        resume_at = params.get("resume_at") if pause else None
        return lambda s, cid: operations.set_sla_paused(
            s, cid, params["sla"], pause, actor=actor, reason=reason, now=now, resume_at=resume_at
        )
    return lambda s, cid: operations.reassign(
        s, cid, params["assignee"], actor=actor, reason=reason, now=now
    )


def preview(targets: Sequence[CaseRecord]) -> list[Item]:
    return [Item(c.id, c.state, Outcome.MATCHED) for c in targets]


def apply(session: Session, targets: Sequence[CaseRecord], act: Act) -> list[Item]:
    """Act on each case in a savepoint of the caller's transaction: a refusal undoes that
    case only and is reported."""
    if len(targets) > MAX_CHUNK:
        raise OperationInvalid(
            f"A bulk chunk takes at most {MAX_CHUNK} cases, not {len(targets)}.",
            hint="Split the cases into chunks (engine/services/bulk.py).",
        )
    items: list[Item] = []
    for case in targets:
        try:
            with session.begin_nested():
                outcome = act(session, case.id)
        except SvcflowError as exc:
            items.append(
                Item(case.id, case.state, Outcome.FAILED, code=exc.code, detail=exc.message)
            )
        else:
            items.append(
                Item(
                    case.id,
                    case.state,
                    Outcome.DONE,
                    new_state=outcome.case.state,
                    event_seq=outcome.event.seq,
                )
            )
    return items
