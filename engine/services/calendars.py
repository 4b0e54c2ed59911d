"""Business calendars kept in the database, on top of the built-in ones.

``24x7`` and ``cn-workdays`` always exist. An administrator can store overrides for
``cn-workdays`` (next year's State Council schedule before chinesecalendar ships it, or a
company's extra days off) and create custom calendars. Saving a calendar re-plans the armed
timers that use it, so deadlines follow the new schedule, and provisional deadlines become
final once their year is covered.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.calendar import BusinessCalendar, apply_overrides, calendar_24x7, cn_workdays
from engine.errors import CalendarError
from engine.store.models import CalendarRecord

BUILTIN_BASES = ("24x7", "cn-workdays")
OVERRIDE_KEYS = (
    "holidays_add",
    "holidays_remove",
    "workdays_add",
    "workdays_remove",
    "covered_years_add",
)


@dataclass(frozen=True)
class CalendarInfo:
    name: str
    builtin: bool
    base: str | None
    revision: int
    calendar: BusinessCalendar
    overrides: Mapping[str, Any]


def _builtin(name: str) -> BusinessCalendar:
    return calendar_24x7() if name == "24x7" else cn_workdays()


def _parse_overrides(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
    unknown = set(raw) - set(OVERRIDE_KEYS)
    if unknown:
        raise CalendarError(
            f"Unknown override key(s) for calendar {name!r}: {', '.join(sorted(unknown))}.",
            hint=f"Allowed: {', '.join(OVERRIDE_KEYS)}.",
            calendar=name,
        )
    out: dict[str, Any] = {}
    for key in OVERRIDE_KEYS:
        values = raw.get(key, [])
        if not isinstance(values, list):
            raise CalendarError(f"{key} must be a list.", calendar=name)
        try:
            if key == "covered_years_add":
                out[key] = [int(v) for v in values]
            else:
                out[key] = [date.fromisoformat(str(v)) for v in values]
        except ValueError as exc:
            raise CalendarError(
                f"{key} of calendar {name!r} has a bad value: {exc}.",
                hint="Dates are YYYY-MM-DD; years are whole numbers.",
                calendar=name,
            ) from exc
    return out


def _overrides_json(parsed: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: sorted(v.isoformat() if isinstance(v, date) else v for v in vals)
        for k, vals in parsed.items()
        if vals
    }


def _on_base(base: str, name: str, parsed: Mapping[str, Any]) -> BusinessCalendar:
    calendar = apply_overrides(_builtin(base), **parsed)
    return calendar if calendar.name == name else dataclasses.replace(calendar, name=name)


def _build(row: CalendarRecord) -> BusinessCalendar:
    if row.base in BUILTIN_BASES:
        return _on_base(row.base, row.name, _parse_overrides(row.spec, row.name))
    return BusinessCalendar.from_dict(row.spec)


_BUILT: dict[tuple[Any, ...], BusinessCalendar] = {}
_LOCK = threading.Lock()


def load_calendars(session: Session) -> dict[str, BusinessCalendar]:
    """Every calendar by name: built-ins (with stored overrides) and custom ones.

    Built calendars are cached per (name, revision, stored content): their arithmetic index is
    costly to build and a calendar only changes by a save. The content is part of the key
    because revisions count per database, and one process may use several (the simulator makes
    a scratch database per scenario): revision 1 of ``cn-workdays`` in one is not in another.
    """
    calendars = {name: _cached((name, 0), lambda n=name: _builtin(n)) for name in BUILTIN_BASES}
    for row in session.execute(select(CalendarRecord)).scalars():
        content = json.dumps([row.base, row.spec], sort_keys=True)
        calendars[row.name] = _cached((row.name, row.revision, content), lambda r=row: _build(r))
    return calendars


def _cached(key: tuple[Any, ...], build: Any) -> BusinessCalendar:
    found = _BUILT.get(key)
    if found is None:
        found = build()
        with _LOCK:
            _BUILT[key] = found
    return found


class LazyCalendars(Mapping[str, BusinessCalendar]):
    """The calendars, read from the database only when a business calendar is first asked
    for: planning wall-clock timers (the common case) costs no query."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._loaded: dict[str, BusinessCalendar] | None = None

    def _all(self) -> dict[str, BusinessCalendar]:
        if self._loaded is None:
            self._loaded = load_calendars(self._session)
        return self._loaded

    def __getitem__(self, name: str) -> BusinessCalendar:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


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
        parsed = _parse_overrides(overrides, name)
        candidate = _on_base(base, name, parsed)
        spec: dict[str, Any] = _overrides_json(parsed)
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
    from engine.services import scheduling  # late import: scheduling needs these calendars

    scheduling.replan_calendar(session, name, now=now)
    return get_calendar_info(session, name)


def calendar_names(session: Session) -> Iterable[str]:
    return load_calendars(session).keys()
