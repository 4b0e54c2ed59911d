"""A contract's monthly compliance report: each promise kept or broken, with the evidence.

When a supplier is late the customer may hire a third party and deduct the cost from the
deposit (R-REP-12); the supplier brings this report to that dispute. For one contract and one
month it lists every promise (an SLA of a definition) with how many clocks met it and how
many breached it, and every breach with its evidence: the due instant, the instant the
promise was actually kept (none yet, if it still is not), and the case's history over the
clock's run.

A clock counts in the month it was decided: a met one when it stopped, a breached one when
its due instant passed (a clock still running past due is breached already, as the KPIs count
it; for one that stopped late, the due instant is replayed from its history, since the
projection keeps none once a clock stops). A month is a calendar month in the deployment's
zone (Beijing by default).

The printable HTML is rendered here, so that the CLI and the dashboard hand out one page.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from importlib import resources
from typing import Any

import jinja2
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.core.contracts import Contract
from engine.core.durations import format_timedelta
from engine.core.local_time import local
from engine.core.records import EventRecord
from engine.core.sla import compute_clock
from engine.services.contracts import get_contract
from engine.services.definitions import get_definition
from engine.services.kpis import month_bounds
from engine.store import case_store
from engine.store.calendar_store import load_calendars
from engine.store.models import Case, CaseSla

cases = Case.__table__
slas = CaseSla.__table__
EXCERPT_MAX_EVENTS = 40  # of a clock's run; the breach itself is always in the excerpt


@dataclass(frozen=True)
class PromiseTally:
    definition: str
    sla: str
    met: int
    breached: int


@dataclass(frozen=True)
class Breach:
    case_id: int
    definition: str
    sla: str
    business_key: str | None
    customer: str | None
    contract_version: int | None
    started_at: datetime | None
    due_at: datetime
    actual_at: datetime | None  # when the promise was kept after all; None: not yet
    excerpt: list[EventRecord] = field(default_factory=list)

    def late_by(self, now: datetime) -> timedelta:
        return (self.actual_at or now) - self.due_at


@dataclass(frozen=True)
class ComplianceReport:
    contract: Contract
    month: str
    start: datetime
    end: datetime
    now: datetime
    promises: list[PromiseTally]
    breaches: list[Breach]


def compliance_report(
    session: Session, contract_id: str, *, month: str, now: datetime, timezone: str
) -> ComplianceReport:
    """The report of ``contract_id`` (its cases under every version) for ``month``
    (YYYY-MM in ``timezone``), as of ``now``."""
    contract = get_contract(session, contract_id)
    start, end = month_bounds(month, timezone)
    decided_by = min(end, now)
    # Every clock that may have been decided in the month: a met one stopped in it; a
    # breached one fell due in it, and so stopped after the month began, or runs still.
    rows = session.execute(
        select(
            cases.c.id,
            cases.c.business_key,
            cases.c.data,
            cases.c.params,
            cases.c.definition_version,
            cases.c.contract_version,
            slas.c.definition_name,
            slas.c.sla,
            slas.c.status,
            slas.c.started_at,
            slas.c.stopped_at,
            slas.c.due_at,
        )
        .join(slas, slas.c.case_id == cases.c.id)
        .where(
            cases.c.contract_name == contract_id,
            slas.c.status.in_(("met", "breached", "running", "paused")),
            slas.c.started_at < decided_by,
            or_(slas.c.stopped_at.is_(None), slas.c.stopped_at >= start),
        )
        .order_by(cases.c.id, slas.c.sla)
    ).all()
    tallies: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    found: list[Breach] = []
    for r in rows:
        if r.status == "met":
            if start <= r.stopped_at < decided_by:
                tallies[(r.definition_name, r.sla)][0] += 1
            continue
        due = r.due_at if r.stopped_at is None else _due_of_stopped(session, r)
        if r.status != "breached" and (due is None or due > now):
            continue  # running within its target: not decided yet
        if due is None or not start <= due < decided_by:
            continue
        tallies[(r.definition_name, r.sla)][1] += 1
        customer = r.data.get("customer")
        found.append(
            Breach(
                case_id=r.id,
                definition=r.definition_name,
                sla=r.sla,
                business_key=r.business_key,
                customer=customer if isinstance(customer, str) else None,
                contract_version=r.contract_version,
                started_at=r.started_at,
                due_at=due,
                actual_at=r.stopped_at,
                excerpt=_excerpt(session, r.id, r.sla, r.started_at, r.stopped_at or now),
            )
        )
    found.sort(key=lambda b: (b.due_at, b.case_id))
    promises = [
        PromiseTally(definition, sla, met, broken)
        for (definition, sla), (met, broken) in sorted(tallies.items())
    ]
    return ComplianceReport(contract, month, start, end, now, promises, found)


def _due_of_stopped(session: Session, row: Any) -> datetime | None:
    """When a clock that has stopped was due: its projection keeps no due instant once it
    stops, so the clock is replayed over the history up to its stop, pauses and business
    calendar included (engine/core/sla.py)."""
    definition = get_definition(session, row.definition_name, row.definition_version)
    spec = next((s for s in definition.slas if s.name == row.sla), None)
    if spec is None:
        return None
    before = [
        e for e in case_store.events_of(session.connection(), row.id) if e.at < row.stopped_at
    ]
    clock = compute_clock(
        spec,
        before,
        data=row.data,
        params=row.params,
        now=row.stopped_at,
        calendars=load_calendars(session),
        finals=definition.final_states,
    )
    return clock.due_at


def _excerpt(
    session: Session, case_id: int, sla: str, since: datetime | None, until: datetime
) -> list[EventRecord]:
    """The case's events over the clock's run, and its breach record, whenever that was."""
    history = case_store.events_of(session.connection(), case_id)
    breach = [e for e in history if e.event_type == "sla_breached" and e.payload.get("sla") == sla]
    window = [e for e in history if (since is None or e.at >= since) and e.at <= until]
    chosen = {e.seq: e for e in [*window[:EXCERPT_MAX_EVENTS], *breach]}
    return [chosen[seq] for seq in sorted(chosen)]


def event_line(event: EventRecord, zone: tzinfo) -> str:
    """One event of an excerpt as a line of evidence."""
    move = (
        f"{event.from_state} -> {event.to_state}"
        if event.from_state and event.from_state != event.to_state
        else event.to_state
    )
    what = event.trigger or event.event_type
    sla = f" ({event.payload['sla']})" if isinstance(event.payload.get("sla"), str) else ""
    return f"#{event.seq} {local(event.at, zone)} {what}{sla} {move} by {event.actor}"


# --- CSV and HTML --------------------------------------------------------------------------------

CSV_HEADER = [
    "section",
    "definition",
    "sla",
    "met",
    "breached",
    "case_id",
    "business_key",
    "customer",
    "contract_version",
    "due_at",
    "actual_at",
    "late_by",
    "history",
]


def to_csv(report: ComplianceReport, zone: tzinfo) -> str:
    """One table: a ``promise`` row per SLA with its counts, then a ``breach`` row per broken
    promise with its evidence (instants in ``zone``, with their offset)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for p in report.promises:
        writer.writerow(["promise", p.definition, p.sla, p.met, p.breached, *[""] * 8])
    for b in report.breaches:
        writer.writerow(
            [
                "breach",
                b.definition,
                b.sla,
                "",
                "",
                b.case_id,
                b.business_key or "",
                b.customer or "",
                b.contract_version or "",
                local(b.due_at, zone),
                local(b.actual_at, zone) if b.actual_at else "",
                format_timedelta(b.late_by(report.now)),
                "\n".join(event_line(e, zone) for e in b.excerpt),
            ]
        )
    return out.getvalue()


_TEMPLATES = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: (
            resources.files("engine").joinpath(f"services/templates/{name}").read_text("utf-8")
        )
    ),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def stylesheet() -> str:
    """The page's print-friendly styles: inline in a file written by the CLI, served apart
    by the dashboard (whose Content-Security-Policy allows no inline style)."""
    return (
        resources.files("engine").joinpath("services/templates/compliance.css").read_text("utf-8")
    )


def to_html(
    report: ComplianceReport,
    zone: tzinfo,
    *,
    csv_link: str | None = None,
    stylesheet_url: str | None = None,
) -> str:
    """A page to print and sign: the promises, then each breach with its evidence. Its
    styles are inline unless ``stylesheet_url`` says where they are served."""
    return _TEMPLATES.get_template("compliance.html").render(
        stylesheet=stylesheet() if stylesheet_url is None else "",
        stylesheet_url=stylesheet_url,
        report=report,
        contract=report.contract,
        when=lambda instant: local(instant, zone) if instant else "",
        late_by=lambda breach: format_timedelta(breach.late_by(report.now)),
        line=lambda event: event_line(event, zone),
        csv_link=csv_link,
        total_met=sum(p.met for p in report.promises),
        total_breached=sum(p.breached for p in report.promises),
    )


def report_filename(report: ComplianceReport, extension: str) -> str:
    return f"compliance-{report.contract.id}-{report.month}.{extension}"


def describe(report: ComplianceReport) -> dict[str, Any]:
    """The report as JSON values (instants in UTC), for the API."""
    return {
        "contract": report.contract.id,
        "contract_version": report.contract.version,
        "month": report.month,
        "promises": [p.__dict__ for p in report.promises],
        "breaches": [
            {
                "case_id": b.case_id,
                "definition": b.definition,
                "sla": b.sla,
                "business_key": b.business_key,
                "customer": b.customer,
                "contract_version": b.contract_version,
                "started_at": b.started_at.isoformat() if b.started_at else None,
                "due_at": b.due_at.isoformat(),
                "actual_at": b.actual_at.isoformat() if b.actual_at else None,
                "late_by_seconds": b.late_by(report.now).total_seconds(),
                "history": [
                    {
                        "seq": e.seq,
                        "at": e.at.isoformat(),
                        "event_type": e.event_type,
                        "trigger": e.trigger,
                        "from_state": e.from_state,
                        "to_state": e.to_state,
                        "actor": e.actor,
                    }
                    for e in b.excerpt
                ],
            }
            for b in report.breaches
        ],
    }
