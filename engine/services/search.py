"""Finding cases: filters and keyset pagination (newest first, by id).

Keyset pagination (``id < cursor``) costs the same on page 1 and page 10,000, and a case
created while a client pages never shifts the pages it has not read yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, cast, exists, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from engine.core.records import CaseRecord
from engine.store.case_store import case_record
from engine.store.models import Case, CaseEvent, CaseStatus, EventType, Timer, TimerStatus

cases = Case.__table__
events = CaseEvent.__table__
timers = Timer.__table__
MAX_PAGE = 500


@dataclass(frozen=True)
class CaseFilter:
    definition: str | None = None
    state: str | None = None
    status: str | None = None
    business_key: str | None = None
    data_field: str | None = None
    data_value: Any = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    overdue: bool | None = None
    contract: str | None = None  # created under this service contract


def _data_equals(field: str, value: Any, dialect: str) -> ColumnElement[bool]:
    element = cases.c.data[field]
    if dialect == "postgresql":
        # jsonb equality compares type and value, so a field holding text never meets a
        # number. Casting each row's field instead fails on the first row holding text, and
        # an INTEGER cast on any number beyond 32 bits.
        return element == cast(value, JSONB)
    # SQLite's casts never fail, but they turn text into 0 and false: check the JSON type too.
    kind = func.json_type(cases.c.data, f'$."{field}"')
    if isinstance(value, bool):
        return kind == ("true" if value else "false")
    if isinstance(value, int):
        return and_(kind == "integer", element.as_integer() == value)
    if isinstance(value, float):
        return and_(kind.in_(("integer", "real")), element.as_float() == value)
    if isinstance(value, str):
        return and_(kind == "text", element.as_string() == value)
    # as_string() comes from the JSON comparator, which the stubs reach only through __getattr__.
    other: ColumnElement[bool] = element.as_string() == str(value)
    return other


def _overdue(now: datetime) -> ColumnElement[bool]:
    """Open cases with a recorded SLA breach, or a breach timer already past due."""
    breach_event = exists().where(
        events.c.case_id == cases.c.id, events.c.event_type == EventType.SLA_BREACHED.value
    )
    late_timer = exists().where(
        timers.c.case_id == cases.c.id,
        timers.c.status == TimerStatus.ARMED.value,
        timers.c.kind == EventType.SLA_BREACHED.value,
        timers.c.due_at <= now,
    )
    return and_(cases.c.status == CaseStatus.OPEN.value, or_(breach_event, late_timer))


def _conditions(f: CaseFilter, now: datetime, dialect: str) -> list[ColumnElement[bool]]:
    simple: list[tuple[Any, Any]] = [
        (f.definition, cases.c.definition_name),
        (f.state, cases.c.state),
        (f.status, cases.c.status),
        (f.business_key, cases.c.business_key),
        (f.contract, cases.c.contract_name),
    ]
    out: list[ColumnElement[bool]] = [col == value for value, col in simple if value is not None]
    if f.data_field is not None:
        out.append(_data_equals(f.data_field, f.data_value, dialect))
    ranges = [
        (f.created_after, cases.c.created_at, True),
        (f.created_before, cases.c.created_at, False),
        (f.updated_after, cases.c.updated_at, True),
        (f.updated_before, cases.c.updated_at, False),
    ]
    out += [col >= v if lower else col < v for v, col, lower in ranges if v is not None]
    if f.overdue:
        out.append(_overdue(now))
    return out


def search_cases(
    session: Session, f: CaseFilter, *, now: datetime, before_id: int | None, limit: int
) -> tuple[list[CaseRecord], int | None]:
    """One page of cases matching ``f``; returns the page and the cursor of the next one."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(cases).where(*_conditions(f, now, session.get_bind().dialect.name))
    if before_id is not None:
        query = query.where(cases.c.id < before_id)
    rows = session.execute(query.order_by(cases.c.id.desc()).limit(limit + 1)).all()
    page = [case_record(r) for r in rows[:limit]]
    return page, (page[-1].id if len(rows) > limit else None)


def collect_cases(
    session: Session,
    f: CaseFilter,
    *,
    now: datetime,
    limit: int,
    before_id: int | None = None,
) -> tuple[list[CaseRecord], int | None]:
    """Up to ``limit`` cases matching ``f``, newest first below ``before_id``, read page by
    page; returns them and the cursor to continue from (None when no more match)."""
    found: list[CaseRecord] = []
    cursor = before_id
    while len(found) < limit:
        page, cursor = search_cases(
            session, f, now=now, before_id=cursor, limit=min(MAX_PAGE, limit - len(found))
        )
        found += page
        if cursor is None:
            return found, None
    # Exactly ``limit`` found: whether another one matches decides the cursor.
    more, _ = search_cases(session, f, now=now, before_id=found[-1].id, limit=1)
    return found, (found[-1].id if more else None)


SEARCH_CHOICES = 20  # customers a search box lists at most


def with_business_key(session: Session, key: str) -> list[CaseRecord]:
    """The cases of every workflow whose business key is ``key`` (unique per workflow, so
    at most one each), oldest first."""
    rows = session.execute(
        select(cases).where(cases.c.business_key == key).order_by(cases.c.id)
    ).all()
    return [case_record(r) for r in rows]


def customers_named(session: Session, text: str) -> list[str]:
    """The customers a search for ``text`` means: the one named exactly, else those of open
    cases whose name contains it (at most :data:`SEARCH_CHOICES`, alphabetically)."""
    exact = session.execute(
        select(cases.c.customer).where(cases.c.customer == text).limit(1)
    ).scalar_one_or_none()
    if exact is not None:
        return [exact]
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = session.execute(
        select(cases.c.customer)
        .where(
            cases.c.status == CaseStatus.OPEN.value,
            cases.c.customer.like(pattern, escape="\\"),
        )
        .distinct()
        .order_by(cases.c.customer)
        .limit(SEARCH_CHOICES)
    ).scalars()
    return [name for name in found if name is not None]
