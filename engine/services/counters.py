"""Counters shared across cases (declared under ``counters:`` in a definition).

Increments are a single ``UPDATE ... SET value = value + :by``, so two cases counting on the
same key at once never lose an update; the first increment of a key inserts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.store.models import Counter

counters = Counter.__table__
# Bind names differ from column names: an UPDATE reserves those for its SET clause.
_READ = select(counters.c.value).where(
    counters.c.name == bindparam("b_name"), counters.c.key == bindparam("b_key")
)
_ADD = (
    update(counters)
    .where(counters.c.name == bindparam("b_name"), counters.c.key == bindparam("b_key"))
    .values(value=counters.c.value + bindparam("b_by"), updated_at=bindparam("b_now"))
)


def read(conn: Connection, keys: Mapping[str, str]) -> dict[str, int]:
    """Current value of each named counter at its key (0 if never counted)."""
    return {
        name: conn.execute(_READ, {"b_name": name, "b_key": key}).scalar_one_or_none() or 0
        for name, key in keys.items()
    }


def add(conn: Connection, name: str, key: str, by: int, now: datetime) -> None:
    params = {"b_name": name, "b_key": key, "b_by": by, "b_now": now}
    if conn.execute(_ADD, params).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(counters).values(name=name, key=key, value=by, updated_at=now))
    except IntegrityError:  # another transaction inserted it first: add to theirs
        conn.execute(_ADD, params)
