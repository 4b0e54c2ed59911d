"""A case's SLA clocks as kept state: advanced by each event, read without the history.

Every event of a case advances each of its clocks by that one event (engine.core.sla.advance)
from the state kept in ``case_slas``: the cost of a fire does not grow with the history. The
history is read only to recompute a clock whose state is not kept or no longer fits (rows
from before migration 0007, a target whose unit changed, a calendar edited or swapped:
:func:`recompute`), and a hypothesis test checks that both ways always agree.

Only what changed is written: a clock whose state the event left alone costs no statement,
and its warning and breach timers are replaced only when their due instant moved. A clock the
event cannot touch (:func:`engine.core.sla.touches`) whose target it cannot move costs no
work at all: its ruler (target expression, calendar) is not even built.

An SLA with ``rounds: repeat`` keeps one row per round (``round`` 1, 2, ...). Only the latest
round can change: an event advances it and, when it starts the next round, inserts that
round's row; the rows of stopped rounds stay as their last event left them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, bindparam, event, insert, select, update
from sqlalchemy.orm import Session

from engine.core.definition import SlaSpec, WorkflowDefinition
from engine.core.durations import parse_duration
from engine.core.expressions import compiled
from engine.core.records import CaseRecord, EventRecord
from engine.core.sla import (
    SLA_WARNING,
    CaseFacts,
    CaseView,
    ClockState,
    ClockStatus,
    Ruler,
    SlaClock,
    advance,
    clock_at,
    measure_of,
    next_round,
    plan_clock,
    ruler_for,
    touches,
    walk,
    walk_rounds,
)
from engine.core.timer_plans import Calendars, TimerPlan
from engine.store import case_store
from engine.store.calendar_store import LazyCalendars
from engine.store.database import inserted_id
from engine.store.models import CaseSla, Timer, TimerStatus

case_slas = CaseSla.__table__
timers = Timer.__table__

# What a clock's kept state needs (the shown columns, status and elapsed time as of the last
# write, are written for the supervisors' queries and never read back here).
_KEPT_COLUMNS = (
    "round",
    "target_seconds",
    "started_at",
    "stopped_at",
    "phase",
    "running_since",
    "banked_seconds",
    "manual_pause",
    "warned",
    "warned_at",
    "breach_recorded",
    "paused_at",
    "resume_at",
    "unit",
    "calendar",
)
_SELECT_ROWS = (
    select(case_slas.c.id, case_slas.c.sla, *(case_slas.c[name] for name in _KEPT_COLUMNS))
    .where(case_slas.c.case_id == bindparam("case_id"))
    .order_by(case_slas.c.sla, case_slas.c.round)
)
_SELECT_ARMED = select(
    timers.c.id, timers.c.name, timers.c.sla, timers.c.due_at, timers.c.payload
).where(
    timers.c.case_id == bindparam("case_id"),
    timers.c.status == TimerStatus.ARMED.value,
    timers.c.sla.is_not(None),
)
# The columns a clock's write sets: the kept state and the shown columns; the statements are
# built once, values bound per call (building an UPDATE of 18 literal values per changed clock
# cost more than executing it).
_STATE_COLUMNS = ("status", "elapsed_seconds", "due_at", "warn_at", "updated_at", *_KEPT_COLUMNS)
_INSERT_ROW = insert(case_slas)
_UPDATE_ROW = (
    update(case_slas)
    .where(case_slas.c.id == bindparam("b_id"))
    .values({name: bindparam(f"v_{name}") for name in _STATE_COLUMNS})
)


@dataclass
class TimerChanges:
    """What the clocks' timers need after an event: timer ids to cancel, plans to arm."""

    cancel: list[int] = field(default_factory=list)
    arm: list[TimerPlan] = field(default_factory=list)


@dataclass(frozen=True)
class _Clock:
    sla: SlaSpec
    ruler: Ruler
    state: ClockState
    row: Kept | None  # the round's row as kept before this event (None: a new round)


def kept_state(row: Kept | None, ruler: Ruler) -> ClockState | None:
    """The state a row keeps, if it keeps one measured the way ``ruler`` measures."""
    if row is None or row.phase is None:
        return None
    if row.unit != ruler.unit or row.calendar != ruler.calendar.name:
        return None
    return _state_of(row)


def _state_of(row: Kept) -> ClockState:
    return ClockState(
        phase=ClockStatus(row.phase),
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        running_since=row.running_since,
        banked=timedelta(seconds=row.banked_seconds or 0.0),
        manual_pause=bool(row.manual_pause),
        warned=frozenset(float(f) for f in row.warned or ()),
        warned_at=row.warned_at,
        breach_recorded=bool(row.breach_recorded),
        paused_at=row.paused_at,
        resume_at=row.resume_at,
        round=row.round,
    )


@dataclass(frozen=True)
class _Kept:
    """A clock's row as this transaction wrote it: what :data:`_SELECT_ROWS` would read."""

    id: int
    sla: str
    round: int
    target_seconds: float
    started_at: datetime | None
    stopped_at: datetime | None
    phase: str
    running_since: datetime | None
    banked_seconds: float
    manual_pause: bool
    warned: list[float]
    warned_at: datetime | None
    breach_recorded: bool
    paused_at: datetime | None
    resume_at: datetime | None
    unit: str
    calendar: str


Kept = Row[Any] | _Kept
# A case's clock rows by SLA name, each SLA's rounds in order (the latest last).
Rows = dict[str, list[Kept]]
# The clock rows of the cases this transaction wrote, as of the case version they belong to:
# the next event of the same case in the transaction (a breach and its escalation, a spawn
# recorded on the parent) and the fire's response start from them instead of reading them
# again. Only this module writes case_slas, always through :func:`_remember`; a rollback (a
# savepoint's too) forgets them all.
_MEMO_KEY = "svcflow.sla_rows"


def case_ruler(
    sla: SlaSpec,
    definition: WorkflowDefinition,
    case: CaseRecord,
    now: datetime,
    calendars: Calendars,
) -> Ruler:
    """How ``sla`` measures time for ``case``: its target and calendar as the case's data,
    parameters and the definition's decision tables say."""
    return ruler_for(
        sla,
        data=case.data,
        params=case.params,
        now=now,
        calendars=calendars,
        decisions=definition.decisions,
    )


def facts_of(
    definition: WorkflowDefinition, case: CaseRecord, calendars: Calendars | None
) -> CaseFacts:
    """What the definition's SLA conditions read of ``case`` beside its data."""
    return CaseFacts(
        params=case.params,
        case_id=case.id,
        definition=case.definition_name,
        created_at=case.created_at,
        decisions=definition.decisions,
        calendars=calendars,
    )


def _rows(session: Session, case_id: int, version: int | None = None) -> Rows:
    """The case's clock rows; as of ``version`` from what this transaction wrote, if it did."""
    if version is not None:
        memo = session.info.get(_MEMO_KEY, {}).get(case_id)
        if memo is not None and memo[0] == version:
            return {name: list(rounds) for name, rounds in memo[1].items()}
    rows: Rows = {}
    for row in session.connection().execute(_SELECT_ROWS, {"case_id": case_id}):
        rows.setdefault(row.sla, []).append(cast(Kept, row))
    return rows


def _latest(rows: Rows, sla: str) -> Kept | None:
    rounds = rows.get(sla)
    return rounds[-1] if rounds else None


def _remember(session: Session, case_id: int, version: int, rows: Rows) -> None:
    session.info.setdefault(_MEMO_KEY, {})[case_id] = (version, rows)


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_MEMO_KEY, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_MEMO_KEY, None)


def sync(
    session: Session,
    definition: WorkflowDefinition,
    case: CaseRecord,
    event: EventRecord,
    *,
    now: datetime,
    full: bool = False,
) -> TimerChanges:
    """Advance the case's clocks by ``event`` (just appended), or recompute them from the
    history when ``full`` or their state is not kept; write what changed and return the
    timer changes it implies."""
    if full:
        rows = _rows(session, case.id)
    elif event.event_type == "created":
        rows = {}  # the case was inserted just now: no clock of it is kept yet
    else:
        rows = _rows(session, case.id, case.version - 1)
    calendars = LazyCalendars(session)
    history: list[EventRecord] | None = None
    changed: list[_Clock] = []
    finals = definition.final_states
    facts = facts_of(definition, case, calendars)
    view = CaseView(facts, case.data)  # the case as ``event`` left it
    for sla in definition.slas:
        row = _latest(rows, sla.name)
        if not full and _untouched(
            sla, row, case=case, event=event, definition=definition, now=now
        ):
            continue
        ruler = case_ruler(sla, definition, case, now, calendars)
        before = None if full else kept_state(row, ruler)
        if before is None:
            if history is None:
                history = case_store.events_of(session.connection(), case.id)
            # Every round afresh; a round's row is matched by its number.
            kept = {r.round: r for r in rows.get(sla.name, [])}
            for state in walk_rounds(sla, history, ruler, finals, facts):
                changed.append(_Clock(sla, ruler, state, kept.get(state.round)))
            continue
        after = advance(before, sla, event, ruler, finals, view=view)
        target = ruler.started(after.started_at).target  # months: as long as from its start
        moved_target = row is None or row.target_seconds != target.total_seconds()
        if after != before or moved_target:
            changed.append(_Clock(sla, ruler, after, row))
        started = next_round(after, sla, event, ruler, finals, view=view)
        if started is not None:
            changed.append(_Clock(sla, ruler, started, None))
    if not changed:
        _remember(session, case.id, case.version, rows)
        return TimerChanges()
    changes = _timer_changes(session, case.id, changed)
    for written in _write(session, definition, case, changed, now=now):
        rounds = rows.setdefault(written.sla, [])
        index = next((i for i, r in enumerate(rounds) if r.round == written.round), None)
        if index is None:
            rounds.append(written)
        else:
            rounds[index] = written
    _remember(session, case.id, case.version, rows)
    return changes


def _untouched(
    sla: SlaSpec,
    row: Kept | None,
    *,
    case: CaseRecord,
    event: EventRecord,
    definition: WorkflowDefinition,
    now: datetime,
) -> bool:
    """True when ``event`` certainly leaves this clock's kept row as it is: the row keeps a
    state on the SLA's calendar, the event does not touch that state, and the target (and
    with it the unit) cannot have moved. Decided without building the clock's ruler.

    A target written as a literal or a parameter is the case's for life (parameters are
    fixed when the case is created), so it is compared with the row directly. A target
    written as an expression moves only with the inputs it reads: its ``data`` fields, which
    change only by events (``changes``), each of which passes here; one that reads ``now``,
    or reads ``data`` in a way that names no field, is evaluated again on every event."""
    calendar = sla.calendar_for(case.params)
    if row is None or row.phase is None or row.calendar != calendar:
        return False
    phase = ClockStatus(row.phase)
    if touches(phase, bool(row.manual_pause), sla, event, definition.final_states):
        return False
    if sla.target.expr is None:
        text = sla.target.literal
        if text is None:
            assert sla.target.param is not None
            text = case.params.get(sla.target.param)
        if not isinstance(text, str):
            return False  # not a duration's text: let the ruler say what is wrong
        return (row.target_seconds, row.unit) == _measure(calendar, text)
    expression = compiled(sla.target.expr, f"{sla.path}.target.expr")
    # A decision table it reads moves with the table's inputs.
    fields = definition.decisions.data_fields_read(expression)
    reads_now = "now" in definition.decisions.variables_read(expression)
    if reads_now or fields is None or not fields.isdisjoint(event.changes):
        return False
    return bool(row.unit == "time")  # an expression's target is always working time


@functools.lru_cache(maxsize=1024)
def _measure(calendar: str | None, text: str) -> tuple[float, str] | None:
    """A literal or parameter target's seconds and unit on ``calendar`` (parsing is pure;
    a few texts per SLA of each definition in use); None for months, whose length depends on
    the clock's start (such a clock is re-measured on each event that reaches this test)."""
    return measure_of(calendar, parse_duration(text))


def recompute(
    session: Session, definition: WorkflowDefinition, case: CaseRecord, *, now: datetime
) -> TimerChanges:
    """Every clock of the case from its whole history (a calendar edited, an operator's
    request): the state kept is replaced, and the timers follow."""
    events = case_store.events_of(session.connection(), case.id)
    if not events:
        return TimerChanges()
    return sync(session, definition, case, events[-1], now=now, full=True)


def planned_from_history(
    session: Session,
    definition: WorkflowDefinition,
    case: CaseRecord,
    history: Sequence[EventRecord],
    *,
    now: datetime,
) -> list[TimerPlan]:
    """The warning and breach timers :func:`recompute` would plan for ``case`` from
    ``history``, reading only: a migration's dry run asks it so that a clock the new version
    cannot measure (a target or calendar it reads differently) is said before anything is
    written. Raises the planning error."""
    calendars = LazyCalendars(session)
    plans: list[TimerPlan] = []
    for sla in definition.slas:
        ruler = case_ruler(sla, definition, case, now, calendars)
        facts = facts_of(definition, case, calendars)
        for state in walk_rounds(sla, history, ruler, definition.final_states, facts):
            clock_at(sla, state, ruler, now)  # what the write would show: it must compute
            plans += plan_clock(sla, state, ruler)
    return plans


def _timer_changes(session: Session, case_id: int, changed: Sequence[_Clock]) -> TimerChanges:
    """Keep each armed timer whose plan is unchanged (same name, round and due instant);
    cancel the others of the changed clocks, arm the plans not already armed. Only an SLA's
    latest round can plan a timer: the rounds before it have stopped. The round counts: a
    round restarted at the instant its predecessor started is due when it was, and its
    breach must be recorded against it, not against the round that was met."""
    names = {c.sla.name for c in changed}
    armed = [
        r
        for r in session.connection().execute(_SELECT_ARMED, {"case_id": case_id})
        if r.sla in names
    ]
    wanted = [plan for c in changed for plan in plan_clock(c.sla, c.state, c.ruler)]
    have = {(r.name, r.payload.get("round"), r.due_at): r.id for r in armed}

    def key(plan: TimerPlan) -> tuple[str, Any, datetime]:
        return plan.name, plan.payload.get("round"), plan.due_at

    keep = {have[key(p)] for p in wanted if key(p) in have}
    return TimerChanges(
        cancel=[r.id for r in armed if r.id not in keep],
        arm=[p for p in wanted if key(p) not in have],
    )


def _write(
    session: Session,
    definition: WorkflowDefinition,
    case: CaseRecord,
    changed: Sequence[_Clock],
    *,
    now: datetime,
) -> list[_Kept]:
    """Write the changed clocks; returns their rows as written."""
    conn = session.connection()
    written: list[_Kept] = []
    for clock in changed:
        shown = clock_at(clock.sla, clock.state, clock.ruler, now)
        values = _values(clock, shown, _warn_at(clock), now)
        if clock.row is None:
            row_id = inserted_id(
                conn.execute(
                    _INSERT_ROW,
                    {
                        **values,
                        "case_id": case.id,
                        "definition_name": definition.name,
                        "sla": clock.sla.name,
                    },
                )
            )
        else:
            row_id = clock.row.id
            conn.execute(_UPDATE_ROW, {"b_id": row_id, **{f"v_{k}": v for k, v in values.items()}})
        written.append(
            _Kept(
                id=row_id,
                sla=clock.sla.name,
                **{name: _as_read(values[name]) for name in _KEPT_COLUMNS},
            )
        )
    return written


def _as_read(value: Any) -> Any:
    """A value as the database gives it back (instants in UTC)."""
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _warn_at(clock: _Clock) -> datetime | None:
    """The clock's first warning instant: one recorded, or the earliest still planned.

    A delivered warning is no longer planned, but the clock is still past it: without the
    recorded one the "past warning" query would only ever see warnings whose timer is late."""
    planned = [
        p.due_at for p in plan_clock(clock.sla, clock.state, clock.ruler) if p.kind == SLA_WARNING
    ]
    moments = [*planned, *([clock.state.warned_at] if clock.state.warned_at else [])]
    return min(moments) if moments else None


def _values(
    clock: _Clock, shown: SlaClock, warn_at: datetime | None, now: datetime
) -> dict[str, Any]:
    state = clock.state
    return {
        "round": state.round,
        "status": shown.status.value,
        "target_seconds": shown.target.total_seconds(),
        "elapsed_seconds": shown.elapsed.total_seconds(),
        "started_at": state.started_at,
        "stopped_at": state.stopped_at,
        "due_at": shown.due_at,
        "warn_at": warn_at,
        "updated_at": now,
        "phase": state.phase.value,
        "running_since": state.running_since,
        "banked_seconds": state.banked.total_seconds(),
        "manual_pause": state.manual_pause,
        "warned": sorted(state.warned),
        "warned_at": state.warned_at,
        "breach_recorded": state.breach_recorded,
        "paused_at": state.paused_at,
        "resume_at": state.resume_at,
        "unit": clock.ruler.unit,
        "calendar": clock.ruler.calendar.name,
    }


def clocks(
    session: Session,
    definition: WorkflowDefinition,
    case: CaseRecord,
    *,
    now: datetime,
    history: Sequence[EventRecord] | None = None,
    calendars: Calendars | None = None,
) -> list[SlaClock]:
    """The case's clocks as of ``now``, every round of each SLA (first to latest), from the
    state kept (the history is read only for a clock without one)."""
    if not definition.slas:
        return []
    rows = _rows(session, case.id, case.version)
    calendars = calendars if calendars is not None else LazyCalendars(session)
    out = []
    for sla in definition.slas:
        ruler = case_ruler(sla, definition, case, now, calendars)
        states = [kept_state(row, ruler) for row in rows.get(sla.name, [])]
        if not states or None in states:
            if history is None:
                history = case_store.events_of(session.connection(), case.id)
            states = list(
                walk_rounds(
                    sla,
                    history,
                    ruler,
                    definition.final_states,
                    facts_of(definition, case, calendars),
                )
            )
        out += [clock_at(sla, state, ruler, now) for state in states if state is not None]
    return out


_SELECT_OPEN_ROWS = select(
    case_slas.c.case_id, case_slas.c.id, case_slas.c.sla, *(case_slas.c[n] for n in _KEPT_COLUMNS)
).where(
    case_slas.c.case_id.in_(bindparam("case_ids", expanding=True)),
    case_slas.c.stopped_at.is_(None),
    case_slas.c.status.in_(
        [ClockStatus.RUNNING.value, ClockStatus.PAUSED.value, ClockStatus.BREACHED.value]
    ),
)


def open_clocks(
    session: Session,
    of: Sequence[tuple[WorkflowDefinition, CaseRecord]],
    *,
    now: datetime,
) -> dict[int, list[SlaClock]]:
    """The clocks started and not stopped of many cases (a page of the workbench), as of
    ``now``: the rows of all of them in one query, a clock computed only for those. A row that
    keeps no state (or not in the unit measured now) is recomputed from its case's history,
    as :func:`clocks` does."""
    found: dict[int, dict[str, Kept]] = {}
    if of:
        ids = sorted({case.id for _, case in of})
        for row in session.connection().execute(_SELECT_OPEN_ROWS, {"case_ids": ids}):
            found.setdefault(row.case_id, {})[row.sla] = cast(Kept, row)
    calendars = LazyCalendars(session)
    out: dict[int, list[SlaClock]] = {}
    for definition, case in of:
        rows = found.get(case.id, {})
        history: Sequence[EventRecord] | None = None
        out[case.id] = []
        for sla in definition.slas:
            if sla.name not in rows:
                continue
            ruler = case_ruler(sla, definition, case, now, calendars)
            state = kept_state(rows[sla.name], ruler)
            if state is None:
                if history is None:
                    history = case_store.events_of(session.connection(), case.id)
                state = walk(
                    sla,
                    history,
                    ruler,
                    definition.final_states,
                    facts_of(definition, case, calendars),
                )
            out[case.id].append(clock_at(sla, state, ruler, now))
    return out
