"""Business calendars kept in the database, on top of the built-in ones.

``24x7`` and ``cn-workdays`` always exist. An administrator can store overrides for
``cn-workdays`` (next year's State Council schedule before chinesecalendar ships it, or a
company's extra days off) and create custom calendars. Saving a calendar re-plans the armed
timers that use it, so deadlines follow the new schedule, and provisional deadlines become
final once their year is covered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.calendar import BusinessCalendar
from engine.errors import CalendarError
from engine.services import scheduling
from engine.store import calendar_store
from engine.store.calendar_store import BUILTIN_BASES, LazyCalendars, load_calendars
from engine.store.models import CalendarRecord

__all__ = [
    "BUILTIN_BASES",
    "CalendarInfo",
    "LazyCalendars",
    "calendar_names",
    "get_calendar_info",
    "list_calendars",
    "load_calendars",
    "save_calendar",
]


@dataclass(frozen=True)
class CalendarInfo:
    name: str
    builtin: bool
    base: str | None
    revision: int
    calendar: BusinessCalendar
    overrides: Mapping[str, Any]


def list_calendars(session: Session) -> list[CalendarInfo]:
    rows = {row.name: row for row in session.execute(select(CalendarRecord)).scalars()}
    calendars = load_calendars(session)
    out = []
    for name in sorted(calendars):
        row = rows.get(name)
        out.append(
            CalendarInfo(
                name=name,
                builtin=name in BUILTIN_BASES,
                base=row.base if row else (name if name in BUILTIN_BASES else None),
                revision=row.revision if row else 0,
                calendar=calendars[name],
                overrides=dict(row.spec) if row and row.base else {},
            )
        )
    return out


def get_calendar_info(session: Session, name: str) -> CalendarInfo:
    for info in list_calendars(session):
        if info.name == name:
            return info
    raise CalendarError(
        f"No calendar named {name!r}.",
        hint="List calendars with `svcflow calendars list`; built in: 24x7, cn-workdays.",
        calendar=name,
    )


def save_calendar(
    session: Session,
    name: str,
    *,
    actor: str,
    now: datetime,
    overrides: Mapping[str, Any] | None = None,
    definition: Mapping[str, Any] | None = None,
    base: str | None = None,
) -> CalendarInfo:
    """Store overrides on a built-in base, or a whole custom calendar; re-plan its timers.

    ``overrides`` replace the stored ones as a whole (send the full set you want).
    """
    if (overrides is None) == (definition is None):
        raise CalendarError(
            "Give either overrides (on a built-in base) or a full calendar definition.",
            calendar=name,
        )
    if name == "24x7":
        raise CalendarError("The 24x7 calendar cannot be changed.", calendar=name)
    if overrides is not None:
        base = base or (name if name in BUILTIN_BASES else "cn-workdays")
        if base not in BUILTIN_BASES:
            raise CalendarError(
                f"Overrides need a built-in base, not {base!r}.", hint="Use base: cn-workdays."
            )
        parsed = calendar_store.parse_overrides(overrides, name)
        candidate = calendar_store.on_base(base, name, parsed)
        spec: dict[str, Any] = calendar_store.overrides_json(parsed)
    else:
        assert definition is not None
        if name in BUILTIN_BASES:
            raise CalendarError(
                f"{name!r} is built in: store overrides on it instead of a full definition.",
                calendar=name,
            )
        candidate = BusinessCalendar.from_dict({**definition, "name": name})
        spec, base = candidate.to_dict(), None
    row = session.execute(
        select(CalendarRecord).where(CalendarRecord.name == name)
    ).scalar_one_or_none()
    if row is None:
        row = CalendarRecord(
            name=name, base=base, spec=spec, revision=1, updated_at=now, updated_by=actor
        )
        session.add(row)
    else:
        row.base, row.spec, row.updated_at, row.updated_by = base, spec, now, actor
        row.revision += 1
    session.flush()
    calendar_store.forget(session)
    scheduling.replan_calendar(session, name, now=now)
    return get_calendar_info(session, name)


def calendar_names(session: Session) -> Iterable[str]:
    return load_calendars(session).keys()
