"""Moving running cases of a definition from one version to another (docs/versions.md).

The plan is checked against both versions first (engine/core/migration.py). Then, case by
case, :func:`preview_case` says what would happen and why a case cannot move, reading only;
:func:`migrate_case` does it in the caller's transaction: one ``migrated`` event written by
the case store's version-guarded write (engine/store/case_store.py), so a trigger fired at
the same moment either lands first (the case is then read again and moved from where it went)
or loses with ConcurrencyConflict and is refused, never interleaved. After the write the
case's timers and SLA clocks are planned under the new version from its history: a state
entry keeps its time, a clock keeps its elapsed and paused time.

The adapters give each case a transaction of its own and take the cases in batches
(:func:`next_batch`, by id), so an interrupted run is resumed by running it again: moved cases
are no longer on the old version, and nothing is moved twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from engine.core.definition import SITE_CALENDAR, WorkflowDefinition
from engine.core.expressions import compiled, make_context, to_json_value
from engine.core.machine import Actor, compile_workflow
from engine.core.messages import (
    MIGRATION_CASE_CLOSED,
    MIGRATION_CHILD_NEWS,
    MIGRATION_DATA_INVALID,
    MIGRATION_KEPT_CHANGING,
    MIGRATION_KEPT_PARAMETER,
    MIGRATION_OTHER_VERSION,
    MIGRATION_PARENT_UNNAMED,
    MIGRATION_SET_ERROR,
    MIGRATION_STATE_UNMAPPED,
    MIGRATION_UNPLANNABLE,
    MIGRATION_WHERE_ERROR,
    MIGRATION_WHERE_FALSE,
    MIGRATION_WHERE_NOT_BOOLEAN,
    MIGRATION_WRITE_ERROR,
    Message,
    error_record,
)
from engine.core.migration import (
    DROPPED_KEY,
    MIGRATED,
    STATE_MAP_KEY,
    MigrationPlan,
    ParamsChoice,
    PastMove,
    check_plan,
    past_moves_not_allowed,
    unmapped_states,
)
from engine.core.records import CaseRecord, EventRecord
from engine.errors import ConcurrencyConflict, SvcflowError
from engine.services import scheduling
from engine.services.definitions import (
    check_parameter,
    effective_parameters,
    get_definition,
)
from engine.store import case_store
from engine.store.models import Case, CaseSla, CaseStatus, Timer, TimerStatus

MAX_BATCH = 500  # cases one request or one CLI batch takes
DRY_RUN_ACTOR = "(dry run)"  # the actor of the migrated event a dry run plans with, never written
ATTEMPTS = 3  # reads of a case that keeps changing under the migration before it is refused


class MoveOutcome(str, Enum):
    WOULD_MOVE = "would_move"  # a dry run: nothing was written
    MOVED = "moved"
    REFUSED = "refused"  # this case cannot move under the plan: ``reasons`` say why
    SKIPPED = "skipped"  # not (or no longer) a case of the plan: closed, moved, --where
    # A move's ``reasons`` are the English sentences of its ``messages`` (codes and values,
    # engine/core/messages.py), which the dashboard words in the reader's language.


@dataclass(frozen=True)
class CheckedPlan:
    plan: MigrationPlan
    old: WorkflowDefinition
    new: WorkflowDefinition


@dataclass(frozen=True)
class CaseMove:
    case_id: int
    outcome: MoveOutcome
    business_key: str | None = None
    from_state: str | None = None
    to_state: str | None = None
    messages: tuple[Message, ...] = ()
    changes: Mapping[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    event_seq: int | None = None
    # Transitions of the case's past the new version has none for (engine/core/migration.py
    # past_moves_not_allowed): said, never a reason to refuse.
    warnings: tuple[str, ...] = ()
    # The same, as facts, for a reader that words them in another language (the dashboard).
    past_moves: tuple[PastMove, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(str(m) for m in self.messages)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "outcome": self.outcome.value,
            "business_key": self.business_key,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "reasons": list(self.reasons),
            "changes": dict(self.changes),
            "dropped": list(self.dropped),
            "event_seq": self.event_seq,
            "warnings": list(self.warnings),
        }


def check(session: Session, plan: MigrationPlan) -> CheckedPlan:
    """Both versions, and the plan checked against them (MigrationInvalid lists every
    problem; DefinitionNotFound for a version that does not exist)."""
    old = get_definition(session, plan.definition, plan.from_version)
    new = get_definition(session, plan.definition, plan.to_version)
    check_plan(plan, old, new)
    return CheckedPlan(plan, old, new)


_CANDIDATES = (
    select(Case.id)
    .where(
        Case.definition_name == bindparam("name"),
        Case.definition_version == bindparam("version"),
        Case.status == CaseStatus.OPEN.value,
        Case.id > bindparam("after_id"),
    )
    .order_by(Case.id)
    .limit(bindparam("limit"))
)


def next_batch(session: Session, checked: CheckedPlan, *, after_id: int, limit: int) -> list[int]:
    """The ids of the next running cases on the old version, after ``after_id``."""
    plan = checked.plan
    params = {
        "name": plan.definition,
        "version": plan.from_version,
        "after_id": after_id,
        "limit": max(1, min(limit, MAX_BATCH)),
    }
    return list(session.execute(_CANDIDATES, params).scalars())


def states_in_use(session: Session, checked: CheckedPlan) -> dict[str, int]:
    """Running cases on the old version by state."""
    plan = checked.plan
    rows = session.execute(
        select(Case.state, func.count())
        .where(
            Case.definition_name == plan.definition,
            Case.definition_version == plan.from_version,
            Case.status == CaseStatus.OPEN.value,
        )
        .group_by(Case.state)
        .order_by(Case.state)
    ).all()
    return {state: count for state, count in rows}


def unmapped(session: Session, checked: CheckedPlan) -> list[str]:
    """States running cases are in that the plan leaves without a counterpart."""
    return unmapped_states(checked.plan, list(states_in_use(session, checked)), checked.new)


# --- one case ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Move:
    case: CaseRecord
    after: CaseRecord
    changes: dict[str, Any]
    dropped: tuple[str, ...]
    event: EventRecord
    past_moves: tuple[PastMove, ...] = ()


def preview_case(
    session: Session, checked: CheckedPlan, case_id: int, *, now: datetime
) -> CaseMove:
    """What migrating the case would do, or why it cannot; reads only."""
    case = case_store.get_case(session, case_id)
    found = _compute(session, checked, case, now, actor=DRY_RUN_ACTOR)
    if isinstance(found, CaseMove):
        return found
    return _report(found, MoveOutcome.WOULD_MOVE)


def migrate_case(
    session: Session, checked: CheckedPlan, case_id: int, *, actor: Actor, now: datetime
) -> CaseMove:
    """Move one case to the new version in the caller's transaction, or say why not (then
    nothing of it is written)."""
    for _attempt in range(ATTEMPTS):
        try:
            with session.begin_nested():
                return _migrate(session, checked, case_id, actor=actor, now=now)
        except ConcurrencyConflict:
            continue  # a trigger got there first: read the case again, from where it went
        except SvcflowError as exc:  # _compute planned them; a calendar edited since may not plan
            error = error_record(exc, with_hint=True)
            return CaseMove(
                case_id,
                MoveOutcome.REFUSED,
                messages=(Message(MIGRATION_WRITE_ERROR, {"error": error}),),
            )
    return CaseMove(
        case_id,
        MoveOutcome.REFUSED,
        messages=(Message(MIGRATION_KEPT_CHANGING, {"attempts": ATTEMPTS}),),
    )


def _migrate(
    session: Session, checked: CheckedPlan, case_id: int, *, actor: Actor, now: datetime
) -> CaseMove:
    case = case_store.get_case(session, case_id)
    found = _compute(session, checked, case, now, actor=actor.name)
    if isinstance(found, CaseMove):
        return found
    plan, new = checked.plan, checked.new
    case_store.write_event(
        session,
        case,
        found.after,
        found.event,
        doing=f"it was being migrated to v{plan.to_version}",
    )
    _drop_clocks_not_in(session, new, case.id, now=now)
    scheduling.replan_case(
        session, new, found.after, now=now, note=f"migrated to version {plan.to_version}"
    )
    return _report(found, MoveOutcome.MOVED, event_seq=found.event.seq)


def _migrated_event(
    plan: MigrationPlan,
    case: CaseRecord,
    after: CaseRecord,
    changes: Mapping[str, Any],
    dropped: tuple[str, ...],
    *,
    actor: str,
    now: datetime,
) -> EventRecord:
    return EventRecord(
        case_id=case.id,
        seq=after.version,
        event_type=MIGRATED,
        trigger=None,
        from_state=case.state,
        to_state=after.state,
        actor=actor,
        payload={
            "from_version": plan.from_version,
            "to_version": plan.to_version,
            STATE_MAP_KEY: dict(plan.state_map),
            "params": plan.params.value,
            "set": dict(plan.sets),
            DROPPED_KEY: list(dropped),
            "reason": plan.reason,
        },
        changes=dict(changes),
        at=now,
        context={"reason": plan.reason},
    )


def _report(move: _Move, outcome: MoveOutcome, event_seq: int | None = None) -> CaseMove:
    return CaseMove(
        move.case.id,
        outcome,
        business_key=move.case.business_key,
        from_state=move.case.state,
        to_state=move.after.state,
        changes=move.changes,
        dropped=move.dropped,
        event_seq=event_seq,
        warnings=tuple(str(m) for m in move.past_moves),
        past_moves=move.past_moves,
    )


def _compute(
    session: Session, checked: CheckedPlan, case: CaseRecord, now: datetime, *, actor: str
) -> _Move | CaseMove:
    """The case as it would be on the new version with the event that moves it, or the
    outcome that stops it. Everything that can stop a case is found here, reading only, so
    the dry run says what applying would: its timers and SLA clocks are planned under the
    new version from its history too (and planned again, for real, when it moves)."""
    plan, new = checked.plan, checked.new

    def stop(outcome: MoveOutcome, *reasons: Message) -> CaseMove:
        return CaseMove(
            case.id,
            outcome,
            business_key=case.business_key,
            from_state=case.state,
            to_state=plan.target_state(case.state),
            messages=reasons,
        )

    if case.definition_name != plan.definition or case.definition_version != plan.from_version:
        return stop(
            MoveOutcome.SKIPPED,
            Message(
                MIGRATION_OTHER_VERSION,
                {"definition": case.definition_name, "version": case.definition_version},
            ),
        )
    if case.status != CaseStatus.OPEN.value:
        return stop(MoveOutcome.SKIPPED, Message(MIGRATION_CASE_CLOSED, {"status": case.status}))
    context = make_context(
        case.data,
        {},
        case.params,
        now,
        case={
            "id": case.id,
            "definition": case.definition_name,
            "state": case.state,
            "created_at": case.created_at,
        },
    )
    if plan.where:
        try:
            selected = compiled(plan.where, "--where").evaluate(context)
        except SvcflowError as exc:
            return stop(
                MoveOutcome.REFUSED, Message(MIGRATION_WHERE_ERROR, {"error": error_record(exc)})
            )
        if not isinstance(selected, bool):
            return stop(
                MoveOutcome.REFUSED, Message(MIGRATION_WHERE_NOT_BOOLEAN, {"value": repr(selected)})
            )
        if not selected:
            return stop(MoveOutcome.SKIPPED, Message(MIGRATION_WHERE_FALSE))
    reasons: list[Message] = []
    target = plan.target_state(case.state)
    if target not in new.state_names:
        reasons.append(
            Message(
                MIGRATION_STATE_UNMAPPED,
                {"state": case.state, "version": plan.to_version, "states": list(new.state_names)},
            )
        )
    params = _params(session, checked, case, reasons)
    data = dict(case.data)
    changes: dict[str, Any] = {}
    context["params"] = dict(params)
    set_failed = False
    for name, source in plan.sets.items():
        try:
            value = to_json_value(compiled(source, f"--set {name}").evaluate(context), name)
        except SvcflowError as exc:
            reasons.append(
                Message(MIGRATION_SET_ERROR, {"field": name, "error": error_record(exc)})
            )
            set_failed = True
            continue
        data[name] = changes[name] = value
    dropped = tuple(name for name in plan.drops if name in data)
    for name in dropped:
        del data[name]
    if not set_failed:  # every problem of the case at once; data half set says nothing
        try:
            compile_workflow(new).check_migrated_data(data)
        except SvcflowError as exc:
            reasons.append(Message(MIGRATION_DATA_INVALID, {"error": error_record(exc)}))
    reasons += _link_problems(session, checked, case)
    if reasons:
        return stop(MoveOutcome.REFUSED, *reasons)
    after = dataclasses.replace(
        case,
        definition_version=plan.to_version,
        state=target,
        data=data,
        params=params,
        version=case.version + 1,
        updated_at=now,
    )
    event = _migrated_event(plan, case, after, changes, dropped, actor=actor, now=now)
    history = case_store.events_of(session.connection(), case.id)
    try:
        scheduling.planned_after_move(session, new, after, [*history, event], now=now)
    except SvcflowError as exc:
        error = error_record(exc, with_hint=True)
        return stop(
            MoveOutcome.REFUSED,
            Message(MIGRATION_UNPLANNABLE, {"version": plan.to_version, "error": error}),
        )
    past_moves = tuple(past_moves_not_allowed(history, plan, new))
    return _Move(case, after, changes, dropped, event, past_moves)


def _params(
    session: Session, checked: CheckedPlan, case: CaseRecord, reasons: list[Message]
) -> dict[str, Any]:
    """The case's parameters on the new version: its own values (``keep``; parameters new
    in that version take their current value) or a fresh snapshot."""
    current = effective_parameters(session, checked.new)
    if checked.plan.params is ParamsChoice.SNAPSHOT:
        return current
    kept = {name: case.params.get(name, value) for name, value in current.items()}
    for name, value in list(kept.items()):
        if name in case.params:
            try:
                check_parameter(session, checked.new, name, value, alongside=kept)
            except SvcflowError as exc:
                error = error_record(exc)
                reasons.append(
                    Message(MIGRATION_KEPT_PARAMETER, {"parameter": name, "error": error})
                )
    if SITE_CALENDAR in case.params:  # the contract's working days go with the case
        kept[SITE_CALENDAR] = case.params[SITE_CALENDAR]
    return kept


def _link_problems(session: Session, checked: CheckedPlan, case: CaseRecord) -> list[Message]:
    """Links the new version would break: a parent it no longer names, a child's news it no
    longer takes."""
    new, problems, version = checked.new, [], checked.plan.to_version
    if case.parent_id is not None:
        parent = case_store.get_case(session, case.parent_id)
        if new.parent is None or new.parent.definition != parent.definition_name:
            problems.append(
                Message(
                    MIGRATION_PARENT_UNNAMED,
                    {
                        "parent": parent.id,
                        "parent_definition": parent.definition_name,
                        "version": version,
                    },
                )
            )
    triggers = {t.trigger for t in new.transitions}
    for child in case_store.children_of(session, case.id):
        if child.status != CaseStatus.OPEN.value:
            continue
        spec = get_definition(session, child.definition_name, child.definition_version).parent
        if spec is None:
            continue
        sent = {spec.on_created, spec.on_final, *spec.on_states.values()}
        missing = sorted(t for t in sent if t is not None and t not in triggers)
        if missing:
            problems.append(
                Message(
                    MIGRATION_CHILD_NEWS,
                    {
                        "child": child.id,
                        "child_definition": child.definition_name,
                        "triggers": missing,
                        "version": version,
                    },
                )
            )
    return problems


_timers = Timer.__table__
_case_slas = CaseSla.__table__
_CANCEL_DROPPED_CLOCK_TIMERS = (
    update(_timers)
    .where(
        _timers.c.case_id == bindparam("b_case"),
        _timers.c.status == TimerStatus.ARMED.value,
        _timers.c.sla.is_not(None),
        _timers.c.sla.not_in(bindparam("b_kept", expanding=True)),
    )
    .values(status=TimerStatus.CANCELLED.value, updated_at=bindparam("b_now"), note="SLA removed")
)
_DELETE_DROPPED_CLOCKS = _case_slas.delete().where(
    _case_slas.c.case_id == bindparam("b_case"),
    _case_slas.c.stopped_at.is_(None),
    _case_slas.c.sla.not_in(bindparam("b_kept", expanding=True)),
)


def _drop_clocks_not_in(
    session: Session, definition: WorkflowDefinition, case_id: int, *, now: datetime
) -> None:
    """Clocks of SLAs the new version no longer has: their timers are cancelled and their
    open rows removed (a promise the case no longer makes; a stopped one stays as a record,
    and the history keeps every warning and breach)."""
    kept = [s.name for s in definition.slas] or [""]
    conn = session.connection()
    conn.execute(_CANCEL_DROPPED_CLOCK_TIMERS, {"b_case": case_id, "b_kept": kept, "b_now": now})
    conn.execute(_DELETE_DROPPED_CLOCKS, {"b_case": case_id, "b_kept": kept})
