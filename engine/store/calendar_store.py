"""Business calendars as stored in the database, built into the core's
:class:`~engine.core.calendar.BusinessCalendar` values.

``24x7`` and ``cn-workdays`` always exist; a stored row either overrides a built-in base
(``cn-workdays`` with next year's State Council schedule, a company's extra days off) or
defines a whole custom calendar. Built calendars are kept in a bounded cache: their arithmetic
index is costly to build and a calendar only changes by a save.

The rows themselves are read once per transaction (one small Core SELECT, the first time a
business calendar is asked for) and kept in the session until the transaction ends: an edit
made by another process is therefore seen by the next transaction that needs a calendar, as
before, and an edit in this transaction (:func:`forget`) by the rest of it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any

from cachetools import LRUCache
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from engine.core.calendar import BusinessCalendar, apply_overrides, calendar_24x7, cn_workdays
from engine.errors import CalendarError, written
from engine.store.models import CalendarRecord

BUILTIN_BASES = ("24x7", "cn-workdays")
OVERRIDE_KEYS = (
    "holidays_add",
    "holidays_remove",
    "workdays_add",
    "workdays_remove",
    "covered_years_add",
)


def _builtin(name: str) -> BusinessCalendar:
    return calendar_24x7() if name == "24x7" else cn_workdays()


def parse_overrides(raw: Mapping[str, Any], name: str) -> dict[str, Any]:
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
        out[key] = [_override_value(key, v, name) for v in values]
    return out


def _override_value(key: str, value: Any, name: str) -> Any:
    try:
        return int(value) if key == "covered_years_add" else date.fromisoformat(str(value))
    except (TypeError, ValueError) as exc:
        kind = "a year" if key == "covered_years_add" else "a date (YYYY-MM-DD)"
        raise CalendarError(
            f"{key} of calendar {name!r} has a bad value: {written(value)} is not {kind}.",
            hint="Dates are YYYY-MM-DD; years are whole numbers.",
            calendar=name,
        ) from exc


def overrides_json(parsed: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: sorted(v.isoformat() if isinstance(v, date) else v for v in vals)
        for k, vals in parsed.items()
        if vals
    }


def on_base(base: str, name: str, parsed: Mapping[str, Any]) -> BusinessCalendar:
    calendar = apply_overrides(_builtin(base), **parsed)
    return calendar if calendar.name == name else dataclasses.replace(calendar, name=name)


def _build(row: Any) -> BusinessCalendar:
    """A calendar from its stored row (a ``CalendarRecord`` or a Core row of its columns)."""
    if row.base in BUILTIN_BASES:
        return on_base(row.base, row.name, parse_overrides(row.spec, row.name))
    return BusinessCalendar.from_dict(row.spec)


# (name, revision, stored content) -> calendar; a few per database, a few databases per process
_BUILT: LRUCache[tuple[Any, ...], BusinessCalendar] = LRUCache(maxsize=64)
_LOCK = threading.Lock()
_table = CalendarRecord.__table__
_SELECT_ROWS = select(_table.c.name, _table.c.revision, _table.c.base, _table.c.spec)
# The calendars read in the session's current transaction (see the module docstring).
_MEMO_KEY = "svcflow.calendars"


def load_calendars(session: Session) -> dict[str, BusinessCalendar]:
    """Every calendar by name: built-ins (with stored overrides) and custom ones.

    Built calendars are cached per (name, revision, stored content): their arithmetic index is
    costly to build and a calendar only changes by a save. The content is part of the key
    because revisions count per database, and one process may use several (the simulator makes
    a scratch database per scenario): revision 1 of ``cn-workdays`` in one is not in another.
    """
    memo: dict[str, BusinessCalendar] | None = session.info.get(_MEMO_KEY)
    if memo is not None:
        return dict(memo)
    calendars = {
        name: _cached((name, 0), functools.partial(_builtin, name)) for name in BUILTIN_BASES
    }
    for row in session.connection().execute(_SELECT_ROWS):
        content = json.dumps([row.base, row.spec], sort_keys=True)
        key = (row.name, row.revision, content)
        calendars[row.name] = _cached(key, functools.partial(_build, row))
    session.info[_MEMO_KEY] = calendars
    return dict(calendars)


def forget(session: Session) -> None:
    """Drop the calendars kept for this transaction (a calendar was just saved in it)."""
    session.info.pop(_MEMO_KEY, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_transaction_end(session: Session, _transaction: Any) -> None:
    # Any end, a savepoint's included (what was read inside it may have been read after a
    # write it undid); the next read in the enclosing transaction reads again.
    session.info.pop(_MEMO_KEY, None)


def _cached(key: tuple[Any, ...], build: Callable[[], BusinessCalendar]) -> BusinessCalendar:
    with _LOCK:
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
