"""Stuck-case inspection: what a supervisor must look at this morning, and why.

Every finding has a reason code, the case, since when, and the suggested action. The rules:

``sla_breached``            an SLA clock still running (or paused) past its target
``sla_warning``             a running clock past its warning threshold
``sla_paused``              a clock paused by an operator (no timer runs for it unless the
                            pause was given a resume time)
``timer_failed``            a timer failed (its error is in the detail)
``timer_late``              an armed timer overdue beyond a tolerance: delivery is behind
``silent_stall``            an open case with no armed timer and no activity for a while
``dwelling``                in a state longer than the 95th percentile of that state's dwell
                            time for the definition version (statistics from the history)

Neither of those two is raised for a case resting in a state its definition version lists
under ``supervision.expected_waits`` (a loaner in use, a device file in warranty): waiting
there is the case's normal life, not a stall.
``orphaned_wait``           a child's news reached the parent, which could not take it and has
                            not moved since
``waiting_on_cancelled``    an open parent whose child was cancelled and that has not moved

Each rule is one query on indexed columns (the SLA projection, timer status and due time,
case status and update time, the dwell index), bounded by ``limit``: the cost does not grow
with the history's length (bench/stuck.py measures it at 1,000,000 cases).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from itertools import groupby
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    bindparam,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import Session

from engine.core.durations import format_timedelta
from engine.core.migration import as_current
from engine.core.records import EventRecord
from engine.services.definitions import get_definition
from engine.store.case_store import event_record
from engine.store.models import (
    Case,
    CaseEvent,
    CaseSla,
    CaseStatus,
    CaseWait,
    DefinitionVersion,
    DwellStat,
    EventType,
    Timer,
    TimerStatus,
)

cases = Case.__table__
events = CaseEvent.__table__
slas = CaseSla.__table__
timers = Timer.__table__
stats = DwellStat.__table__
waits = CaseWait.__table__
OPEN = CaseStatus.OPEN.value


class Reason(str, Enum):
    SLA_BREACHED = "sla_breached"
    SLA_WARNING = "sla_warning"
    SLA_PAUSED = "sla_paused"
    TIMER_FAILED = "timer_failed"
    TIMER_LATE = "timer_late"
    SILENT_STALL = "silent_stall"
    DWELLING = "dwelling"
    ORPHANED_WAIT = "orphaned_wait"
    WAITING_ON_CANCELLED = "waiting_on_cancelled"


ACTIONS = {
    Reason.SLA_BREACHED: "Act now: fire the case's next step, or escalate; the breach is "
    "recorded in its history for the deduction claim (R-REP-12).",
    Reason.SLA_WARNING: "Chase it before it breaches: check who holds it and what it waits for.",
    Reason.SLA_PAUSED: "A paused promise does not resume by itself unless it was given a "
    "resume time: resume it when the wait is over.",
    Reason.TIMER_FAILED: "Read the error, fix its cause (data, guard, definition), then retry "
    "the timer.",
    Reason.TIMER_LATE: "Delivery is behind: check that workers and their scheduler run, then "
    "run `svcflow timers sweep`.",
    Reason.SILENT_STALL: "Nothing will move this case by itself: fire its next trigger, "
    "reassign it, or cancel it.",
    Reason.DWELLING: "It has waited longer than 95% of cases in this state: find out why.",
    Reason.ORPHANED_WAIT: "A child case finished but the parent could not take the news: fire "
    "the parent's next trigger by hand.",
    Reason.WAITING_ON_CANCELLED: "A child case it depends on was cancelled: start a new one or "
    "move the parent on.",
}


@dataclass(frozen=True)
class Settings:
    timer_tolerance: timedelta = timedelta(minutes=5)
    stall_after: timedelta = timedelta(days=3)
    min_dwell_samples: int = 20


@dataclass(frozen=True)
class Finding:
    reason: Reason
    case_id: int
    definition: str
    state: str
    since: datetime | None
    detail: str
    ref: Any = None
    until: datetime | None = None  # when the finding ends by itself (a pause's resume time)
    contract: str | None = None  # the service contract the case was created under
    # What the English detail was made from, for a reader that words it in another language:
    # a failed timer's ``error``, an orphaned wait's child, trigger and refusal.
    facts: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def action(self) -> str:
        return ACTIONS[self.reason]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason.value,
            "case_id": self.case_id,
            "definition": self.definition,
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "detail": self.detail,
            "action": self.action,
            "ref": self.ref,
            "until": self.until.isoformat() if self.until else None,
            "contract": self.contract,
        }


_CASE_COLUMNS = (cases.c.id, cases.c.definition_name, cases.c.state, cases.c.contract_name)


def _rows_of(
    table: Any, since: Any, ref: Any, *where: ColumnElement[bool], detail: Any = None
) -> Select[Any]:
    """The rows of ``table`` (SLA clocks, timers, waits) that ``where`` picks, each with its
    case's columns, its ``since``, ``ref`` and ``detail``, oldest ``since`` first: the shape
    of every rule's query. The conditions keep their order, so each still matches its index."""
    columns = [since.label("since"), ref.label("ref")]
    if detail is not None:
        columns.append(detail.label("detail"))
    return (
        select(*_CASE_COLUMNS, *columns)
        .join(cases, cases.c.id == table.c.case_id)
        .where(*where)
        .order_by(since)
    )


def _open_case_clocks(
    definition: str | None, since: Any, *where: ColumnElement[bool], detail: Any = None
) -> Select[Any]:
    """The SLA clocks of open cases (of ``definition``, if given) that ``where`` picks, each
    named by its SLA: the shape of the three SLA rules."""
    return _rows_of(
        slas,
        since,
        slas.c.sla,
        *where,
        cases.c.status == OPEN,
        *_def(definition, slas.c.definition_name),
        detail=detail,
    )


def _sla_breached(now: datetime, s: Settings, definition: str | None) -> Any:
    # Only clocks that have not stopped can still be acted on; ``stopped_at IS NULL`` also
    # lets the partial index ix_case_slas_open_due skip every stopped clock in history
    # (bench/stuck.py: 133 ms -> under 1 ms at 1M cases).
    late = or_(
        and_(slas.c.status == "running", slas.c.due_at <= now),
        slas.c.status == "breached",
    )
    return _open_case_clocks(definition, slas.c.due_at, slas.c.stopped_at.is_(None), late)


def _sla_warning(now: datetime, s: Settings, definition: str | None) -> Any:
    return _open_case_clocks(
        definition,
        slas.c.warn_at,
        slas.c.status == "running",
        slas.c.warn_at <= now,
        slas.c.due_at > now,
    )


def _sla_paused(now: datetime, s: Settings, definition: str | None) -> Any:
    # Paused by an operator, still open: since the pause began, with its resume time, if any.
    # ``== true()`` (not IS TRUE) so that both planners match ix_case_slas_paused.
    return _open_case_clocks(
        definition,
        slas.c.paused_at,
        slas.c.manual_pause == true(),
        slas.c.stopped_at.is_(None),
        slas.c.phase == "paused",
        detail=slas.c.resume_at,
    )


def _timer_failed(now: datetime, s: Settings, definition: str | None) -> Any:
    # The failed timers of closed cases stay failed, so this reads every failed timer in
    # history (0.1% of cases in bench/stuck.py). ``ix_timers_failed`` holds only those, with
    # case_id and id, so the scan does not touch the timers' heap; the error is read, by a
    # subquery (a self-join would be merged back into the scan), for the rows returned.
    failed = timers.alias("failed")

    def of_timer(column: Any) -> Any:
        return select(column).where(timers.c.id == failed.c.id).scalar_subquery()

    return _rows_of(
        failed,
        failed.c.updated_at,
        failed.c.id,
        failed.c.status == TimerStatus.FAILED.value,
        cases.c.status == OPEN,
        *_def(definition, cases.c.definition_name),
        detail=of_timer(timers.c.last_error),
    ).add_columns(
        # What the detail is made of, for a reader in another language.
        of_timer(timers.c.name).label("timer_name"),
        of_timer(timers.c.attempts).label("attempts"),
        of_timer(timers.c.failure).label("failure"),
    )


def _timer_late(now: datetime, s: Settings, definition: str | None) -> Any:
    return _rows_of(
        timers,
        timers.c.due_at,
        timers.c.id,
        timers.c.status == TimerStatus.ARMED.value,
        timers.c.due_at < now - s.timer_tolerance,
        *_def(definition, cases.c.definition_name),
    )


def _silent_stall(now: datetime, s: Settings, definition: str | None) -> Any:
    armed = exists().where(
        timers.c.case_id == cases.c.id, timers.c.status == TimerStatus.ARMED.value
    )
    return (
        select(*_CASE_COLUMNS, cases.c.updated_at.label("since"), literal(None).label("ref"))
        .where(
            cases.c.status == OPEN,
            cases.c.updated_at < now - s.stall_after,
            ~armed,
            *_def(definition, cases.c.definition_name),
        )
        .order_by(cases.c.updated_at)
    )


def _orphaned_wait(now: datetime, s: Settings, definition: str | None) -> Any:
    # case_waits holds the child_update events of open parents that have not entered a state
    # since (links.py); a later self-loop transition resolves the news too, hence the check
    # on the parent's later events (a primary-key range probe per row).
    moved_since = exists().where(
        events.c.case_id == waits.c.case_id,
        events.c.seq > waits.c.event_seq,
        events.c.event_type.in_([EventType.TRANSITION.value, "forced"]),
    )
    return _rows_of(
        waits,
        waits.c.since,
        waits.c.detail,
        waits.c.reason == Reason.ORPHANED_WAIT.value,
        cases.c.status == OPEN,
        ~moved_since,
        *_def(definition, cases.c.definition_name),
    )


def _waiting_on_cancelled(now: datetime, s: Settings, definition: str | None) -> Any:
    # case_waits holds the children cancelled while their parent was open (links.py).
    return _rows_of(
        waits,
        waits.c.since,
        waits.c.child_id,
        waits.c.reason == Reason.WAITING_ON_CANCELLED.value,
        cases.c.status == OPEN,
        # Moved = entered a state: an event that leaves it where it was (an SLA warning, a
        # reassignment) bumps updated_at but resolves nothing.
        cases.c.state_entered_at <= waits.c.since,
        *_def(definition, cases.c.definition_name),
    )


def _def(definition: str | None, column: Any) -> list[ColumnElement[bool]]:
    return [column == definition] if definition else []


ExpectedWaits = frozenset[tuple[str, int, str]]  # (definition, version, state)
# Per session, by the versions published: a page asks once per rule, and building each
# version's definition (even from its cache) costs more than the query of the versions.
_WAITS_KEY = "svcflow.expected_waits"


def expected_waits(session: Session, definition: str | None = None) -> ExpectedWaits:
    """The states each published definition version lists as expected waits. Versions are
    few and each is built once per process (get_definition's cache), so this is one small
    query of the versions table."""
    query = select(DefinitionVersion.name, DefinitionVersion.version).where(
        *_def(definition, DefinitionVersion.name)
    )
    versions = tuple(sorted((name, version) for name, version in session.execute(query).all()))
    memo: dict[tuple[tuple[str, int], ...], ExpectedWaits] = session.info.setdefault(_WAITS_KEY, {})
    if versions not in memo:
        memo[versions] = frozenset(
            (name, version, state)
            for name, version in versions
            for state in get_definition(session, name, version).supervision.expected_waits
        )
    return memo[versions]


def _outside(query: Select[Any], waits: ExpectedWaits) -> Select[Any]:
    """``query`` (over ``cases``) without the cases resting in an expected wait. The pairs
    are bound as one expanding parameter: coercing each literal costs more than the query."""
    if not waits:
        return query
    where = tuple_(cases.c.definition_name, cases.c.definition_version, cases.c.state)
    return query.where(where.not_in(bindparam("expected_waits", sorted(waits), expanding=True)))


def _of_contract(contract: str | None) -> list[ColumnElement[bool]]:
    """Every rule's query joins the case row: one contract's cases are a condition on it."""
    return [cases.c.contract_name == contract] if contract else []


RULES = {
    Reason.SLA_BREACHED: _sla_breached,
    Reason.SLA_WARNING: _sla_warning,
    Reason.SLA_PAUSED: _sla_paused,
    Reason.TIMER_FAILED: _timer_failed,
    Reason.TIMER_LATE: _timer_late,
    Reason.SILENT_STALL: _silent_stall,
    Reason.ORPHANED_WAIT: _orphaned_wait,
    Reason.WAITING_ON_CANCELLED: _waiting_on_cancelled,
}


def _detail(reason: Reason, row: Any) -> str:
    if reason in (Reason.SLA_BREACHED, Reason.SLA_WARNING):
        return f"SLA {row.ref}"
    if reason is Reason.SLA_PAUSED:
        if row.detail:
            return f"SLA {row.ref} paused by an operator until its resume time"
        return f"SLA {row.ref} paused by an operator with no resume time"
    if reason is Reason.TIMER_FAILED:
        return f"timer {row.ref}: {row.detail or 'no error recorded'}"
    if reason is Reason.TIMER_LATE:
        return f"timer {row.ref} not delivered"
    if reason is Reason.ORPHANED_WAIT:
        ref = row.ref or {}
        return (
            f"child {ref.get('child_id')} ({ref.get('child_definition')}) could not fire "
            f"{ref.get('trigger')!r}: {ref.get('reason')}"
        )
    if reason is Reason.WAITING_ON_CANCELLED:
        return f"child case {row.ref} cancelled"
    return "no activity and no timer armed"


def _facts(reason: Reason, row: Any) -> dict[str, Any]:
    if reason is Reason.TIMER_FAILED:
        failure = row.failure if isinstance(row.failure, dict) else {}
        return {
            "error": row.detail,
            "timer": row.timer_name,
            "attempts": row.attempts,
            "error_detail": failure.get("error"),
        }
    if reason is Reason.ORPHANED_WAIT and isinstance(row.ref, dict):
        return dict(row.ref)
    return {}


def _dwell_stats(
    session: Session, s: Settings, definition: str | None, waits: ExpectedWaits
) -> list[Any]:
    """The statistics to compare against: enough samples, and not an expected wait."""
    query = select(stats).where(
        stats.c.samples >= s.min_dwell_samples, *_def(definition, stats.c.definition_name)
    )
    return [
        stat
        for stat in session.execute(query).all()
        if (stat.definition_name, stat.definition_version, stat.state) not in waits
    ]


def _dwelling(
    session: Session,
    now: datetime,
    s: Settings,
    definition: str | None,
    limit: int,
    *,
    contract: str | None = None,
) -> list[Finding]:
    """One indexed query per (definition version, state) with statistics."""
    found: list[Finding] = []
    for stat in _dwell_stats(session, s, definition, expected_waits(session, definition)):
        threshold = now - timedelta(seconds=stat.p95_seconds)
        rows = session.execute(
            select(*_CASE_COLUMNS, cases.c.state_entered_at.label("since"))
            .where(
                cases.c.status == OPEN,
                cases.c.definition_name == stat.definition_name,
                cases.c.state == stat.state,
                cases.c.state_entered_at < threshold,
                cases.c.definition_version == stat.definition_version,
                *_of_contract(contract),
            )
            .order_by(cases.c.state_entered_at)
            .limit(limit - len(found))
        ).all()
        found += [
            Finding(
                Reason.DWELLING,
                r.id,
                r.definition_name,
                r.state,
                r.since,
                # The entry instant is the finding's own `since`, which each reader shows
                # in the zone it reads times in; the detail says only how long is usual.
                f"in {r.state!r}; 95% of cases leave within "
                f"{format_timedelta(timedelta(seconds=round(stat.p95_seconds)))}",
                ref=stat.p95_seconds,
                contract=r.contract_name,
            )
            for r in rows
        ]
        if len(found) >= limit:
            break
    return found


def inspect(
    session: Session,
    *,
    now: datetime,
    settings: Settings = Settings(),
    reasons: Iterable[Reason] | None = None,
    definition: str | None = None,
    limit: int = 500,
    contract: str | None = None,
) -> list[Finding]:
    """Findings, at most ``limit`` per reason, oldest first within each reason; with
    ``contract``, those of the cases created under it."""
    wanted = list(reasons) if reasons is not None else list(Reason)
    findings: list[Finding] = []
    for reason in wanted:
        if reason is Reason.DWELLING:
            findings += _dwelling(session, now, settings, definition, limit, contract=contract)
            continue
        query = RULES[reason](now, settings, definition).where(*_of_contract(contract))
        if reason is Reason.SILENT_STALL:
            query = _outside(query, expected_waits(session, definition))
        rows = session.execute(query.limit(limit)).all()
        findings += [
            Finding(
                reason,
                r.id,
                r.definition_name,
                r.state,
                r.since,
                _detail(reason, r),
                ref=r.ref if isinstance(r.ref, int | str | float) or r.ref is None else None,
                until=r.detail if reason is Reason.SLA_PAUSED else None,
                contract=r.contract_name,
                facts=_facts(reason, r),
            )
            for r in rows
        ]
    return findings


def cases_found(
    session: Session,
    reason: Reason,
    *,
    now: datetime,
    settings: Settings = Settings(),
    definition: str | None = None,
) -> Select[Any]:
    """The ids of the open cases one rule finds, as a query to filter cases by (the
    workbench's reason filter); unordered and unbounded."""
    if reason is Reason.DWELLING:
        over = [
            and_(
                cases.c.definition_name == stat.definition_name,
                cases.c.definition_version == stat.definition_version,
                cases.c.state == stat.state,
                cases.c.state_entered_at < now - timedelta(seconds=stat.p95_seconds),
            )
            for stat in _dwell_stats(session, settings, definition, expected_waits(session))
        ]
        return select(cases.c.id).where(cases.c.status == OPEN, or_(false(), *over))
    query: Select[Any] = RULES[reason](now, settings, definition)
    if reason is Reason.SILENT_STALL:
        query = _outside(query, expected_waits(session, definition))
    return query.with_only_columns(cases.c.id).order_by(None)


def reasons_of(
    session: Session, case_ids: Iterable[int], *, now: datetime, settings: Settings = Settings()
) -> dict[int, list[Reason]]:
    """Why each of these cases is stuck (one query per rule, by primary key), for a page of
    the workbench; cases stuck for no reason are left out."""
    wanted = sorted(set(case_ids))
    found: dict[int, list[Reason]] = {}
    if not wanted:
        return found
    ids: Any = bindparam("page_ids", wanted, expanding=True)
    for reason in Reason:
        query = cases_found(session, reason, now=now, settings=settings)
        for case_id in session.execute(query.where(cases.c.id.in_(ids))).scalars():
            if reason not in found.setdefault(case_id, []):
                found[case_id].append(reason)
    return found


COUNT_CAP = 10_000  # counts() counts dwelling cases up to this many


def count_reason(
    session: Session,
    reason: Reason,
    *,
    now: datetime,
    settings: Settings = Settings(),
    definition: str | None = None,
    contract: str | None = None,
) -> int:
    """How many cases one rule finds (the dwelling count stops at ``COUNT_CAP``)."""
    if reason is Reason.DWELLING:
        return _count_dwelling(session, now, settings, definition, COUNT_CAP, contract=contract)
    if reason is Reason.TIMER_LATE and definition is None and contract is None:
        # Every timer has a case: without a definition filter the join adds nothing but a
        # hash join over all cases (bench/stuck.py: 205 ms -> 5 ms at 1M cases).
        query: Any = select(func.count()).where(
            timers.c.status == TimerStatus.ARMED.value,
            timers.c.due_at < now - settings.timer_tolerance,
        )
        return int(session.execute(query).scalar_one())
    query = RULES[reason](now, settings, definition).where(*_of_contract(contract))
    if reason is Reason.SILENT_STALL:
        query = _outside(query, expected_waits(session, definition))
    sub = query.order_by(None).subquery()
    return int(session.execute(select(func.count()).select_from(sub)).scalar_one())


def _count_dwelling(
    session: Session,
    now: datetime,
    s: Settings,
    definition: str | None,
    cap: int,
    *,
    contract: str | None = None,
) -> int:
    """``len(_dwelling(..., cap))`` without building the findings: a count per statistic."""
    total = 0
    for stat in _dwell_stats(session, s, definition, expected_waits(session, definition)):
        threshold = now - timedelta(seconds=stat.p95_seconds)
        matching = (
            select(literal(1).label("one"))
            .where(
                cases.c.status == OPEN,
                cases.c.definition_name == stat.definition_name,
                cases.c.state == stat.state,
                cases.c.state_entered_at < threshold,
                cases.c.definition_version == stat.definition_version,
                *_of_contract(contract),
            )
            .limit(cap - total)
            .subquery()
        )
        total += int(session.execute(select(func.count()).select_from(matching)).scalar_one())
        if total >= cap:
            break
    return total


def counts(
    session: Session,
    *,
    now: datetime,
    settings: Settings = Settings(),
    definition: str | None = None,
    contract: str | None = None,
) -> dict[str, int]:
    """How many cases each rule finds (for the dashboard and /metrics)."""
    out = {
        reason.value: count_reason(
            session, reason, now=now, settings=settings, definition=definition, contract=contract
        )
        for reason in [*RULES, Reason.DWELLING]
    }
    return out


# --- dwell statistics --------------------------------------------------------------------------


def _seconds_between(dialect: str, later: Any, earlier: Any) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


_DWELL_EVENTS = (EventType.TRANSITION.value, EventType.FORCED.value)
# Cases whose history holds a migration: their past states are read in the words of the
# version they are on now (engine/core/migration.py as_current), which SQL cannot do.
_MIGRATED_CASES = (
    select(events.c.case_id).where(events.c.event_type == EventType.MIGRATED.value).distinct()
)
DwellKey = tuple[str, int, str]  # definition, version, state


def refresh_dwell_stats(session: Session, *, now: datetime) -> int:
    """Recompute how long cases stay in each state, from every state change in the history.

    A dwell is the time from the event that entered a state to the event that left it; a
    state a case is still in is not counted (its dwell is not known yet). It counts for the
    definition version the case is on now, under that version's name of the state: a case
    migrated with ``--map-state OLD=NEW`` spent its time in OLD in NEW, so a dwell begun in
    OLD and ended in NEW is one dwell, and the time cases spent in OLD before they moved
    sets what is usual for NEW (the stuck list's ``dwelling`` compares a case's time since
    its entry into OLD with it). The workers run it hourly
    (engine/runtime/housekeeping.py); returns the number of (definition version, state)
    rows written.
    """
    dialect = session.get_bind().dialect.name
    in_python: dict[DwellKey, list[float]] = _migrated_dwells(session)
    pairs = sorted({(name, version) for name, version, _ in in_python})
    base, dwell = _unmigrated_dwells(dialect)
    summary: list[tuple[str, int, str, int, float, float]] = []
    if dialect == "postgresql":  # percentiles in the database: no rows leave it ...
        keys = (cases.c.definition_name, cases.c.definition_version, base.c.state)
        query = select(
            *keys,
            func.count(),
            func.percentile_cont(0.5).within_group(dwell),
            func.percentile_cont(0.95).within_group(dwell),
        ).group_by(*keys)
        query = query.select_from(base.join(cases, cases.c.id == base.c.case_id))
        if pairs:  # ... but those of versions with migrated cases, merged with theirs below
            query = query.where(
                tuple_(cases.c.definition_name, cases.c.definition_version).not_in(pairs)
            )
        summary += [(n, v, st, c, p50, p95) for n, v, st, c, p50, p95 in session.execute(query)]
        raw = _raw_dwells(base, dwell).where(
            tuple_(cases.c.definition_name, cases.c.definition_version).in_(pairs)
        )
        rows = session.execute(raw).all() if pairs else []
    else:
        rows = session.execute(_raw_dwells(base, dwell)).all()
    for name, version, state, seconds in rows:
        in_python.setdefault((name, version, state), []).append(float(seconds))
    summary += [
        (n, v, st, len(vals), _percentile(vals, 0.5), _percentile(vals, 0.95))
        for (n, v, st), vals in in_python.items()
    ]
    session.execute(stats.delete())
    if summary:
        session.execute(
            stats.insert(),
            [
                {
                    "definition_name": n,
                    "definition_version": v,
                    "state": st,
                    "samples": c,
                    "p50_seconds": float(p50),
                    "p95_seconds": float(p95),
                    "computed_at": now,
                }
                for n, v, st, c, p50, p95 in summary
            ],
        )
    return len(summary)


def _unmigrated_dwells(dialect: str) -> tuple[Any, Any]:
    """Each ended dwell of a case never migrated, as a subquery (case, state left, seconds)."""
    moves = (
        select(
            events.c.case_id,
            events.c.from_state,
            events.c.at,
            func.lag(events.c.at)
            .over(partition_by=events.c.case_id, order_by=events.c.seq)
            .label("entered_at"),
        )
        .where(
            or_(
                events.c.event_type == EventType.CREATED.value,
                and_(
                    events.c.event_type.in_(_DWELL_EVENTS),
                    events.c.from_state != events.c.to_state,
                ),
            ),
            events.c.case_id.not_in(_MIGRATED_CASES),
        )
        .subquery()
    )
    dwell = cast(_seconds_between(dialect, moves.c.at, moves.c.entered_at), Float)
    ended = (
        select(moves.c.case_id, moves.c.from_state.label("state"), dwell.label("seconds"))
        .where(moves.c.entered_at.is_not(None), moves.c.from_state.is_not(None))
        .subquery()
    )
    return ended, ended.c.seconds


def _raw_dwells(ended: Any, seconds: Any) -> Select[Any]:
    return select(cases.c.definition_name, cases.c.definition_version, ended.c.state, seconds).join(
        cases, cases.c.id == ended.c.case_id
    )


def _migrated_dwells(session: Session) -> dict[DwellKey, list[float]]:
    """The ended dwells of migrated cases, their states named as their version names them."""
    wanted = events.c.event_type.in_(
        [EventType.CREATED.value, EventType.MIGRATED.value, *_DWELL_EVENTS]
    )
    history = (
        select(cases.c.definition_name, cases.c.definition_version, events)
        .join(cases, cases.c.id == events.c.case_id)
        .where(wanted, events.c.case_id.in_(_MIGRATED_CASES))
        .order_by(events.c.case_id, events.c.seq)
    )
    found: dict[DwellKey, list[float]] = {}
    for (_case, name, version), rows in groupby(
        session.execute(history), key=lambda r: (r.case_id, r.definition_name, r.definition_version)
    ):
        for state, seconds in ended_dwells(as_current([event_record(r) for r in rows])):
            found.setdefault((name, version, state), []).append(seconds)
    return found


def ended_dwells(history: Sequence[EventRecord]) -> list[tuple[str, float]]:
    """(state left, seconds in it) for each state change of a history, as the SQL above
    counts them: from the event that entered the state to the state change that left it
    (created, transitions and forced moves that change the state; nothing else)."""
    out: list[tuple[str, float]] = []
    entered: datetime | None = None
    for event in history:
        if event.event_type == EventType.CREATED.value:
            entered = event.at
        elif event.event_type in _DWELL_EVENTS and event.from_state != event.to_state:
            if entered is not None and event.from_state is not None:
                out.append((event.from_state, (event.at - entered).total_seconds()))
            entered = event.at
    return out
