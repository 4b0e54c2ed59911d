"""The supervisor's case workbench: open cases with who holds them, for which customer and how
late, filtered, sorted and paged (docs/dashboard.md, "Workbench").

Filters and sorts read columns of the case row (its supervisor labels, engine/services/
case_labels.py) and, for urgency, the open SLA clocks' due instants (``case_slas``): nothing
reads the cases' data except a filter on a field the definition offers. Pages are keyset
pages on (sort value, id), so page 200 costs what page 1 costs and a case that changes while
a supervisor pages moves instead of shifting every later page. Only the rows of one page are
read in full: their most urgent clock (exact, from the kept clock state) and why each is
stuck.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, literal, select, tuple_
from sqlalchemy.orm import Session

from engine.core.definition import WorkflowDefinition
from engine.core.records import CaseRecord
from engine.core.sla import ClockStatus, SlaClock
from engine.errors import WorkbenchQueryInvalid
from engine.services import inspection, sla_clocks
from engine.services.definitions import get_definition
from engine.services.inspection import Reason
from engine.services.kpis import KpiSelection
from engine.store.case_store import case_record
from engine.store.models import Case, CaseSla, CaseStatus, UtcDateTime

cases = Case.__table__
slas = CaseSla.__table__
OPEN = CaseStatus.OPEN.value
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE = 50
EXPORT_MAX = 10_000  # rows one export holds; a wider filter is refused with a hint
# Cases without an open clock sort after every case with one (ascending urgency).
_NO_DEADLINE = datetime(9999, 12, 31, tzinfo=UTC)
LABELS = ("customer", "team", "assignee", "priority")
DEFAULT_SETTINGS = inspection.Settings()


class Sort(str, Enum):
    URGENCY = "urgency"  # the most urgent open SLA clock's due instant
    UPDATED = "updated"
    CREATED = "created"
    BUSINESS_KEY = "business_key"
    CUSTOMER = "customer"
    TEAM = "team"
    ASSIGNEE = "assignee"
    PRIORITY = "priority"
    STATE = "state"
    DEFINITION = "definition"


@dataclass(frozen=True)
class WorkbenchQuery:
    """Which open cases, in which order. ``data`` holds (data path, value) pairs, each a
    field the chosen definition offers under ``supervision.filters``."""

    definition: str | None = None
    state: str | None = None
    customer: str | None = None
    team: str | None = None
    assignee: str | None = None
    priority: str | None = None
    reason: Reason | None = None
    data: tuple[tuple[str, str], ...] = ()
    sort: Sort = Sort.URGENCY
    descending: bool = False
    # A KPI figure's drill-down: exactly the cases it counted (``counted_in``, resolved by
    # engine/services/kpis.py ``selected_cases``), closed ones included, since a month's
    # figures count finished work.
    kpi: KpiSelection | None = None
    counted_in: frozenset[int] = frozenset()

    @property
    def narrowed(self) -> bool:
        """Whether anything but the order was chosen (bulk actions on a filter need it)."""
        labels = (self.customer, self.team, self.assignee, self.priority)
        chosen = (self.definition, self.state, self.reason, self.data, self.kpi)
        return any(chosen) or any(labels)


@dataclass(frozen=True)
class WorkbenchRow:
    case: CaseRecord
    definition: WorkflowDefinition
    labels: dict[str, str | None]
    urgent: SlaClock | None  # the most urgent clock still open, exact as of ``now``
    reasons: tuple[Reason, ...] = ()

    def due_in(self, now: datetime) -> timedelta | None:
        """Wall time until the urgent clock's deadline; negative once overdue."""
        if self.urgent is None or self.urgent.due_at is None:
            return None
        return self.urgent.due_at - now


@dataclass(frozen=True)
class WorkbenchPage:
    rows: list[WorkbenchRow]
    total: int
    next_cursor: str | None
    sizes: Sequence[int] = field(default=PAGE_SIZES)


# --- the query ---------------------------------------------------------------------------------


def _earliest_due() -> Any:
    """Each case's earliest due instant of its open clocks (breached ones included), read
    once for all cases: a correlated subquery was evaluated again for every comparison of
    the sort and of the keyset condition (page 2 cost three times page 1)."""
    return (
        select(slas.c.case_id, func.min(slas.c.due_at).label("due_at"))
        .where(slas.c.stopped_at.is_(None))
        .group_by(slas.c.case_id)
        .subquery("earliest_due")
    )


def _urgency(due: Any) -> Any:
    return func.coalesce(due.c.due_at, literal(_NO_DEADLINE, UtcDateTime()), type_=UtcDateTime())


def _sort_key(sort: Sort, due: Any) -> Any:
    if sort is Sort.URGENCY:
        return _urgency(due)
    if sort is Sort.UPDATED:
        return cases.c.updated_at
    if sort is Sort.CREATED:
        return cases.c.id
    if sort is Sort.STATE:
        return cases.c.state
    if sort is Sort.DEFINITION:
        return cases.c.definition_name
    column = cases.c["business_key" if sort is Sort.BUSINESS_KEY else sort.value]
    return func.coalesce(column, "")  # cases without the label sort first, not at random


def _data_field(path: str) -> Any:
    parts = tuple(path.split("."))
    element = cases.c.data[parts if len(parts) > 1 else parts[0]]
    return cast(element.as_string(), String)  # text on both databases, numbers included


def _conditions(
    session: Session, q: WorkbenchQuery, now: datetime, settings: inspection.Settings
) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [
        cases.c.status == OPEN if q.kpi is None else cases.c.id.in_(sorted(q.counted_in))
    ]
    equal = [
        (q.definition, cases.c.definition_name),
        (q.state, cases.c.state),
        *((getattr(q, label), cases.c[label]) for label in LABELS),
    ]
    out += [column == value for value, column in equal if value]
    if q.data:
        offered = _offered_filters(session, q.definition)
        for path, value in q.data:
            if path not in offered:
                raise WorkbenchQueryInvalid(
                    f"{path!r} is not a filter of "
                    + (f"{q.definition!r}." if q.definition else "every definition."),
                    hint="Choose a definition first; its supervision.filters lists the data "
                    f"fields offered: {', '.join(offered) or 'none'}.",
                    field=path,
                )
            out.append(_data_field(path) == value)
    if q.reason is not None:
        found = inspection.cases_found(
            session, q.reason, now=now, settings=settings, definition=q.definition
        )
        out.append(cases.c.id.in_(found))
    return out


def _offered_filters(session: Session, definition: str | None) -> tuple[str, ...]:
    if definition is None:
        return ()
    return get_definition(session, definition).supervision.filters


def _cursor(value: Any, case_id: int) -> str:
    shown = value.isoformat() if isinstance(value, datetime) else value
    raw = json.dumps([shown, case_id], ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _read_cursor(text: str, sort: Sort) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value, case_id = json.loads(raw)
        if not isinstance(case_id, int):
            raise TypeError(case_id)
        if sort in (Sort.URGENCY, Sort.UPDATED):
            value = datetime.fromisoformat(value)
        elif sort is Sort.CREATED:
            value = int(value)
        elif not isinstance(value, str):
            raise TypeError(value)
        return value, case_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise WorkbenchQueryInvalid(
            f"The page cursor {text[:40]!r} cannot be read for the sort {sort.value!r}.",
            hint="Start again from the first page; a cursor belongs to the sort it came from.",
        ) from exc


def _matching(
    session: Session, q: WorkbenchQuery, now: datetime, settings: inspection.Settings
) -> tuple[Any, Any, Any]:
    """The ordered query of matching cases, its sort key, and the count of them (which
    leaves the sort key out: computing urgency for every case only to count them is waste)."""
    due = _earliest_due()
    key = _sort_key(q.sort, due)
    conditions = _conditions(session, q, now, settings)
    query = select(cases, key.label("sort_value")).where(*conditions)
    if q.sort is Sort.URGENCY:
        query = query.select_from(cases.outerjoin(due, due.c.case_id == cases.c.id))
    count = select(func.count()).select_from(cases).where(*conditions)
    if q.descending:
        return query.order_by(key.desc(), cases.c.id.desc()), key, count
    return query.order_by(key, cases.c.id), key, count


def page(
    session: Session,
    q: WorkbenchQuery,
    *,
    now: datetime,
    after: str | None = None,
    limit: int = DEFAULT_PAGE,
    settings: inspection.Settings = DEFAULT_SETTINGS,
) -> WorkbenchPage:
    """One page of open cases matching ``q``, after the cursor ``after``."""
    if limit not in PAGE_SIZES:
        raise WorkbenchQueryInvalid(
            f"A page holds {', '.join(map(str, PAGE_SIZES))} cases, not {limit}.",
            hint="Choose one of those page sizes.",
        )
    query, key, count = _matching(session, q, now, settings)
    total = session.execute(count).scalar_one()
    if after:
        value, case_id = _read_cursor(after, q.sort)
        bound = literal(value, UtcDateTime()) if isinstance(value, datetime) else literal(value)
        mark = tuple_(bound, literal(case_id))
        position = tuple_(key, cases.c.id)
        query = query.where(position < mark if q.descending else position > mark)
    rows = session.execute(query.limit(limit + 1)).all()
    shown = rows[:limit]
    cursor = _cursor(shown[-1].sort_value, shown[-1].id) if len(rows) > limit else None
    return WorkbenchPage(_rows(session, shown, now, settings), int(total), cursor)


def export(
    session: Session,
    q: WorkbenchQuery,
    *,
    now: datetime,
    settings: inspection.Settings = DEFAULT_SETTINGS,
    batch: int = 500,
) -> Iterator[WorkbenchRow]:
    """Every open case matching ``q`` in its order, for a CSV or XLSX file: at most
    :data:`EXPORT_MAX`, refused before anything is read when more match."""
    query, _, count = _matching(session, q, now, settings)
    total = session.execute(count).scalar_one()
    if total > EXPORT_MAX:
        raise WorkbenchQueryInvalid(
            f"{total:,} cases match; an export holds at most {EXPORT_MAX:,}.",
            hint="Narrow the filter (a definition, a team, a reason) and export again.",
            matched=total,
        )
    rows = session.execute(query).all()
    for start in range(0, len(rows), batch):
        yield from _rows(session, rows[start : start + batch], now, settings)


def matching_ids(
    session: Session,
    q: WorkbenchQuery,
    *,
    now: datetime,
    limit: int,
    settings: inspection.Settings = DEFAULT_SETTINGS,
) -> tuple[list[int], int]:
    """The first ``limit`` case ids matching ``q`` in its order, and how many match: the
    targets of a bulk action on the filter."""
    if not q.narrowed:
        raise WorkbenchQueryInvalid(
            "A bulk action on the filter needs a filter: every open case is too many.",
            hint="Choose a definition, a state, a team, a customer, an assignee or a reason.",
        )
    query, _, count = _matching(session, q, now, settings)
    total = session.execute(count).scalar_one()
    ids = session.execute(query.with_only_columns(cases.c.id).limit(limit)).scalars().all()
    return list(ids), int(total)


# --- the rows of one page ----------------------------------------------------------------------


def _rows(
    session: Session, rows: Sequence[Any], now: datetime, settings: inspection.Settings
) -> list[WorkbenchRow]:
    reasons = inspection.reasons_of(session, (r.id for r in rows), now=now, settings=settings)
    shown = [case_record(row) for row in rows]
    definitions = [
        get_definition(session, case.definition_name, case.definition_version) for case in shown
    ]
    clocks = sla_clocks.open_clocks(session, list(zip(definitions, shown, strict=True)), now=now)
    return [
        WorkbenchRow(
            case=case,
            definition=definition,
            labels={label: getattr(row, label) for label in LABELS},
            urgent=most_urgent(clocks[case.id]),
            reasons=tuple(reasons.get(case.id, ())),
        )
        for row, case, definition in zip(rows, shown, definitions, strict=True)
    ]


def most_urgent(clocks: Sequence[SlaClock]) -> SlaClock | None:
    """The open clock to chase first: the earliest deadline (an overdue one first of all),
    else the paused clock with most of its time used."""
    running = [
        c
        for c in clocks
        if c.stopped_at is None
        and c.due_at is not None
        and c.status in (ClockStatus.RUNNING, ClockStatus.BREACHED)
    ]
    if running:
        return min(running, key=lambda c: (c.due_at, c.name))
    paused = [c for c in clocks if c.status is ClockStatus.PAUSED]
    return max(paused, key=lambda c: (c.fraction, c.name)) if paused else None
