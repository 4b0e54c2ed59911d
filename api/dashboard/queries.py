"""The dashboard's own reads: counts for the diagrams and the cases of one device.

Everything else the pages show comes from the engine's services (inspection, cases, links,
timers, KPIs); these are the two questions no service answers yet. Like the services they
take the request's session and never commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import db
from engine.core.records import CaseRecord
from engine.errors import CaseNotFound
from engine.services import links
from engine.services.cases import find_case
from engine.services.search import CaseFilter, collect_cases, search_cases
from engine.store import case_store
from engine.store.database import READ_ONLY
from engine.store.models import Case, CaseStatus

cases = Case.__table__
DEVICE_FIELD = "device_serial"
DEVICE_CASES_LIMIT = 1000  # a device's file lists at most this many cases


@contextmanager
def reading() -> Iterator[Session]:
    """The request's session in a read-only transaction: on SQLite a plain ``BEGIN``, so
    pages never queue behind writers for a write lock they do not need."""
    s = db.session()
    if s.in_transaction():
        yield s
        return
    with s.begin():
        s.connection(execution_options={READ_ONLY: True})
        yield s


def open_counts(session: Session) -> dict[str, dict[str, int]]:
    """Open cases per definition and state (all versions: a state is counted by its name)."""
    rows = session.execute(
        select(cases.c.definition_name, cases.c.state, func.count())
        .where(cases.c.status == CaseStatus.OPEN.value)
        .group_by(cases.c.definition_name, cases.c.state)
    ).all()
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for name, state, count in rows:
        out[name][state] = int(count)
    return dict(out)


def cases_by_id(session: Session, ids: Iterable[int]) -> dict[int, CaseRecord]:
    wanted = sorted(set(ids))
    found: dict[int, CaseRecord] = {}
    for start in range(0, len(wanted), 500):
        rows = session.execute(select(cases).where(cases.c.id.in_(wanted[start : start + 500])))
        found.update({row.id: case_store.case_record(row) for row in rows})
    return found


def device_file(
    session: Session, device_definition: str, serial: str, *, now: datetime
) -> CaseRecord | None:
    """The device's own case: the one whose business key is the serial (how device files are
    opened), else one whose data names the serial."""
    try:
        return find_case(session, device_definition, serial)
    except CaseNotFound:
        pass
    page, _ = search_cases(
        session,
        CaseFilter(definition=device_definition, data_field=DEVICE_FIELD, data_value=serial),
        now=now,
        before_id=None,
        limit=1,
    )
    return page[0] if page else None


def device_cases(
    session: Session, device: CaseRecord | None, serial: str, *, now: datetime
) -> list[CaseRecord]:
    """Every case of the device (R-KPI-01), newest first: the device file's children and any
    case whose ``data.device_serial`` is the serial, without the device file itself."""
    found: dict[int, CaseRecord] = {}
    if device is not None:
        found.update((c.id, c) for c in links.children(session, device.id))
    query = CaseFilter(data_field=DEVICE_FIELD, data_value=serial)
    matched, _ = collect_cases(session, query, now=now, limit=DEVICE_CASES_LIMIT)
    found.update((c.id, c) for c in matched)
    if device is not None:
        found.pop(device.id, None)
    ordered = sorted(found.values(), key=lambda c: (c.created_at, c.id), reverse=True)
    return ordered[:DEVICE_CASES_LIMIT]
