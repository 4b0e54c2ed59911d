"""Monthly KPIs (R-KPI-02, R-KPI-03) and the quarterly audit sample (R-KPI-04).

Which definition, SLA or data field feeds which KPI is configuration
(workflows/catalog/kpis.yaml), so a deployment with other workflows maps its own. KPIs are
computed from the SLA projection (``case_slas``), case data and the history; a month is a
calendar month in the configured time zone (Asia/Shanghai by default), and a case belongs to
the month it was created in.

Each KPI row says what was counted (numerator, denominator), the value, the target and
whether it was met, per group (team, customer or device, each a data field, or the service
contract the case was created under), for every case or those of one contract.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from engine.core.migration import MIGRATED, as_current
from engine.errors import KpiError
from engine.store import case_store
from engine.store.models import Case, CaseEvent, CaseSla, CaseStatus, EventType

cases = Case.__table__
events = CaseEvent.__table__
slas = CaseSla.__table__
TOTAL = "(all)"
NONE = "(none)"  # the group of cases without the grouped label
# What a drill-down lists of a figure: every case counted, or those that met or missed.
COUNTED, MET, BREACHED = "counted", "met", "breached"
OUTCOMES = (COUNTED, MET, BREACHED)
BY_CONTRACT = "contract"  # a group every deployment has: the case's contract, not a data field
_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")


@dataclass(frozen=True)
class KpiRow:
    kpi: str
    group: str
    numerator: float
    denominator: float
    value: float | None
    target: float | None

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value >= self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "group": self.group,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "value": None if self.value is None else round(self.value, 6),
            "target": self.target,
            "met": self.met,
        }


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise KpiError(f"Month {month!r} is not YYYY-MM.", hint="Write e.g. 2025-10.") from None
    if not 2000 <= first.year <= 2199:  # the range business calendars compute in
        raise KpiError(
            f"Month {month!r} is outside the years svcflow keeps figures for.",
            hint="Ask for a month from 2000-01 to 2199-12.",
        )
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    zone = ZoneInfo(timezone)
    return (
        datetime(first.year, first.month, 1, tzinfo=zone),
        datetime(nxt.year, nxt.month, 1, tzinfo=zone),
    )


def last_full_month(now: datetime, timezone: str) -> str:
    """The month KPIs are judged on when none is named: the last whole month in the
    configured zone (the bids' targets are monthly, and the current month is partial)."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


# A group field ``case.team`` or ``case.customer`` reads the case row's label (the field the
# definition names under ``supervision``, a child's inherited from its parent) instead of a
# data field: a complaint's team, a survey's team (its ticket's) group as people mean them.
CASE_LABELS = {"case.team": "team", "case.customer": "customer"}


def _group(row: Any, field: str | None) -> str:
    if field is None:
        return TOTAL
    value = getattr(row, CASE_LABELS[field]) if field in CASE_LABELS else row.data.get(field)
    return str(value) if value not in (None, "") else NONE


def _rows(
    kpi: str, tallies: Mapping[str, list[float]], target: float | None, ratio: bool = True
) -> list[KpiRow]:
    out = []
    for group, (num, den) in sorted(tallies.items()):
        value = (num / den if den else None) if ratio else num
        out.append(KpiRow(kpi, group, num, den, value, target))
    return out


class _Month:
    def __init__(
        self,
        session: Session,
        config: Mapping[str, Any],
        month: str,
        group_by: str | None,
        now: datetime,
        *,
        contract: str | None = None,
    ) -> None:
        self.session = session
        self.config = config
        self.start, self.end = month_bounds(month, config.get("timezone", "Asia/Shanghai"))
        groups = config.get("groups", {})
        if group_by is not None and group_by not in groups and group_by != BY_CONTRACT:
            raise KpiError(
                f"Cannot group KPIs by {group_by!r}.",
                hint="Group by one of: " + ", ".join([*groups, BY_CONTRACT]) + ".",
            )
        self.by_contract = group_by == BY_CONTRACT
        self.field = groups.get(group_by) if group_by and not self.by_contract else None
        self.now = now
        # Only the cases created under this contract, when one is named.
        self.only = [] if contract is None else [cases.c.contract_name == contract]
        # The cases behind each figure, (kpi, group) -> outcome -> ids: what a drill-down lists.
        self.members: dict[tuple[str, str], dict[str, set[int]]] = defaultdict(
            lambda: {outcome: set() for outcome in OUTCOMES}
        )

    def note(self, kpi: str, groups: Iterable[str], case_id: int, met: bool | None) -> None:
        """Record that ``case_id`` counts in ``kpi`` for ``groups`` (met or not, if it says)."""
        for group in groups:
            kept = self.members[(kpi, group)]
            kept[COUNTED].add(case_id)
            if met is not None:
                kept[MET if met else BREACHED].add(case_id)

    def group(self, row: Any) -> str:
        """The group a case (a row with its labels, contract and data) counts in."""
        if self.by_contract:
            return str(row.contract_name or NONE)
        return _group(row, self.field)

    def cases(self, definition: str) -> Sequence[Row[*tuple[Any, ...]]]:
        return self.session.execute(
            select(
                cases.c.id,
                cases.c.data,
                cases.c.status,
                cases.c.created_at,
                cases.c.updated_at,
                cases.c.state,
                cases.c.team,
                cases.c.customer,
                cases.c.contract_name,
            ).where(
                cases.c.definition_name == definition,
                cases.c.created_at >= self.start,
                cases.c.created_at < self.end,
                cases.c.status != CaseStatus.CANCELLED.value,
                *self.only,
            )
        ).all()

    def sla_kpi(self, name: str, spec: Mapping[str, Any]) -> list[KpiRow]:
        """Share of finished clocks that met their target (a running clock past due counts
        as breached already). Each round of an SLA with ``rounds: repeat`` is a clock of its
        own (a row of ``case_slas``): met and breached are counted per round."""
        rows = self.session.execute(
            select(
                cases.c.id,
                cases.c.data,
                cases.c.team,
                cases.c.customer,
                cases.c.contract_name,
                slas.c.status,
                slas.c.due_at,
            )
            .join(slas, slas.c.case_id == cases.c.id)
            .where(
                cases.c.definition_name == spec["definition"],
                slas.c.sla.in_(_names(spec)),
                cases.c.created_at >= self.start,
                cases.c.created_at < self.end,
                *self.only,
            )
        ).all()
        tallies: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for row in rows:
            status, due = row.status, row.due_at
            late_running = status in ("running", "paused") and due is not None and due <= self.now
            if status not in ("met", "breached") and not late_running:
                continue  # still in progress: not decided yet
            groups = {self.group(row), TOTAL}
            for group in groups:
                tallies[group][1] += 1
                tallies[group][0] += 1 if status == "met" else 0
            self.note(name, groups, row.id, status == "met")
        return _rows(name, tallies, spec.get("target"))

    def satisfaction(self, spec: Mapping[str, Any]) -> list[KpiRow]:
        field, threshold = spec.get("field", "score"), spec.get("threshold", 4)
        average: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        satisfied: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for row in self.cases(spec["definition"]):
            score = row.data.get(field)
            if not isinstance(score, int | float):
                continue
            groups = {self.group(row), TOTAL}
            for group in groups:
                average[group][0] += score
                average[group][1] += 1
                satisfied[group][0] += 1 if score >= threshold else 0
                satisfied[group][1] += 1
            self.note("satisfaction", groups, row.id, score >= threshold)
            self.note("satisfaction_average", groups, row.id, None)
            # The share below the threshold counts the dissatisfied: they are its numerator.
            self.note("satisfaction_below_threshold", groups, row.id, score < threshold)
        below = {g: [den - num, den] for g, (num, den) in satisfied.items()}
        return (
            _rows("satisfaction_average", average, None)
            + _rows("satisfaction", satisfied, spec.get("target"))
            + _rows("satisfaction_below_threshold", below, None)
        )

    def fix_rate(self, spec: Mapping[str, Any]) -> list[KpiRow]:
        field, most = spec.get("field", "visits"), spec.get("max", 1)
        tallies: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for row in self.cases(spec["definition"]):
            if row.status != CaseStatus.COMPLETED.value:
                continue
            visits = row.data.get(field, 0)
            first_time = isinstance(visits, int | float) and visits <= most
            groups = {self.group(row), TOTAL}
            for group in groups:
                tallies[group][1] += 1
                tallies[group][0] += 1 if first_time else 0
            self.note("fix_rate", groups, row.id, first_time)
        return _rows("fix_rate", tallies, spec.get("target"))

    def uptime(self, spec: Mapping[str, Any]) -> list[KpiRow]:
        """1 - downtime / available time. Downtime runs from a repair ticket's creation to
        the first time it enters an 'up' state (or the month's end); available time is the
        month for every device on file (or every device with a ticket, if none are).

        A device counts for the group of its device file (its declared team, its customer,
        its contract); a device file without that label counts for the group of its latest
        repair ticket up to the month's end, the team that serves it. Grouped by device, each
        device is its own group."""
        tickets = self.cases(spec["definition"])
        up_states = set(spec.get("up_states", []))
        device_field = spec.get("device_field", "device_serial")
        ups = self._first_entries([t.id for t in tickets], up_states)
        horizon = min(self.end, self.now) if self.now > self.start else self.end
        downtime: dict[str, float] = defaultdict(float)
        down_tickets: dict[str, set[int]] = defaultdict(set)
        for t in tickets:
            began = max(t.created_at, self.start)
            ended = min(ups.get(t.id, horizon), horizon)
            if ended > began:
                serial = str(t.data.get(device_field))
                downtime[serial] += (ended - began).total_seconds()
                down_tickets[serial].add(t.id)
        files = self._devices(spec)
        served_by = self._serving_groups(spec) if self.field != device_field else {}
        devices: dict[str, tuple[int | None, str]] = {**files} or {
            serial: (None, NONE) for serial in downtime
        }
        seconds = (horizon - self.start).total_seconds()
        tallies: dict[str, list[float]] = {}
        for serial, (file_id, own_group) in devices.items():
            if self.field == device_field:
                group = serial
            elif self.field is None and not self.by_contract:
                group = TOTAL
            else:
                group = own_group if own_group != NONE else served_by.get(serial, NONE)
            for key in {group, TOTAL}:
                num, den = tallies.setdefault(key, [0.0, 0.0])
                tallies[key] = [num + seconds - downtime.get(serial, 0.0), den + seconds]
                # Drill-down: the device files counted; breached are the tickets of downtime.
                kept = self.members[("device_uptime", key)]
                if file_id is not None:
                    kept[COUNTED].add(file_id)
                    if serial not in downtime:
                        kept[MET].add(file_id)
                else:
                    kept[COUNTED].update(down_tickets[serial])
                kept[BREACHED].update(down_tickets.get(serial, ()))
        return _rows("device_uptime", tallies, spec.get("target"))

    def _first_entries(self, ids: Sequence[int], states: set[str]) -> dict[int, datetime]:
        """When each case first entered one of ``states``. A migrated case's past is read in
        the words of the version it is on now: with ``--map-state repaired=fixed`` a ticket
        that entered 'repaired' before the move was up from then, not from the move."""
        first: dict[int, datetime] = {}
        for chunk in range(0, len(ids), 1000):
            some = ids[chunk : chunk + 1000]
            migrated = set(
                self.session.execute(
                    select(events.c.case_id).where(
                        events.c.case_id.in_(some), events.c.event_type == EventType.MIGRATED.value
                    )
                ).scalars()
            )
            rows = self.session.execute(
                select(events.c.case_id, events.c.at)
                .where(
                    events.c.case_id.in_([i for i in some if i not in migrated]),
                    events.c.to_state.in_(states),
                )
                .order_by(events.c.case_id, events.c.seq)
            ).all()
            for case_id, at in rows:
                first.setdefault(case_id, at)
            histories = self.session.execute(
                select(events)
                .where(events.c.case_id.in_(sorted(migrated)))
                .order_by(events.c.case_id, events.c.seq)
            )
            for case_id, stored in groupby(histories, key=lambda r: int(r.case_id)):
                history = as_current([case_store.event_record(r) for r in stored])
                entry = next(
                    (e.at for e in history if e.event_type != MIGRATED and e.to_state in states),
                    None,
                )
                if entry is not None:
                    first[case_id] = entry
        return first

    def _devices(self, spec: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
        """Each device on file by the month's end: its file's id and group."""
        definition = spec.get("devices_definition")
        if not definition:
            return {}
        rows = self.session.execute(
            select(cases.c.id, cases.c.data, cases.c.team, cases.c.customer, cases.c.contract_name)
            .where(
                cases.c.definition_name == definition,
                cases.c.created_at < self.end,
                cases.c.status != CaseStatus.CANCELLED.value,
                *self.only,
            )
            .order_by(cases.c.id)
        ).all()
        field = spec.get("device_field", "device_serial")
        return {str(r.data[field]): (r.id, self.group(r)) for r in rows if r.data.get(field)}

    def _serving_groups(self, spec: Mapping[str, Any]) -> dict[str, str]:
        """Each device's group as its latest repair ticket created before the month's end
        gives it (the team that serves the device, the customer, the contract)."""
        field = spec.get("device_field", "device_serial")
        rows = self.session.execute(
            select(cases.c.data, cases.c.team, cases.c.customer, cases.c.contract_name)
            .where(
                cases.c.definition_name == spec["definition"],
                cases.c.created_at < self.end,
                cases.c.status != CaseStatus.CANCELLED.value,
                *self.only,
            )
            .order_by(cases.c.created_at, cases.c.id)
        ).all()
        latest: dict[str, str] = {}
        for row in rows:
            group = self.group(row)
            if row.data.get(field) and group != NONE:
                latest[str(row.data[field])] = group
        return latest


def _names(spec: Mapping[str, Any]) -> list[str]:
    names = spec.get("slas") or [spec["sla"]]
    return [str(n) for n in names]


def _run(month: _Month, config: Mapping[str, Any]) -> list[KpiRow]:
    rows: list[KpiRow] = []
    for name, spec in (config.get("sla_kpis") or {}).items():
        rows += month.sla_kpi(name, spec)
    if config.get("satisfaction"):
        rows += month.satisfaction(config["satisfaction"])
    if config.get("fix_rate"):
        rows += month.fix_rate(config["fix_rate"])
    if config.get("uptime"):
        rows += month.uptime(config["uptime"])
    return rows


def monthly_kpis(
    session: Session,
    config: Mapping[str, Any],
    *,
    month: str,
    group_by: str | None,
    now: datetime,
    contract: str | None = None,
) -> list[KpiRow]:
    """The month's KPIs, per group; with ``contract``, of the cases created under it only."""
    return _run(_Month(session, config, month, group_by, now, contract=contract), config)


@dataclass(frozen=True)
class KpiSelection:
    """One figure of a month's KPIs, as a drill-down names it: the KPI, the grouping and the
    group (``(all)`` for every case), and which of its cases (every one counted, those that
    met, those that missed). For an SLA KPI a case is listed once however many of its clocks
    (rounds, or the complaint's four deadlines) were counted; for device uptime the cases
    counted are the device files, and those that missed are the repair tickets whose
    downtime was counted."""

    kpi: str
    month: str
    group_by: str | None = None
    group: str = TOTAL
    outcome: str = COUNTED
    contract: str | None = None


def selected_cases(
    session: Session, config: Mapping[str, Any], selection: KpiSelection, *, now: datetime
) -> set[int]:
    """The ids of exactly the cases counted in one figure (what its drill-down lists)."""
    if selection.outcome not in OUTCOMES:
        raise KpiError(
            f"A KPI drill-down lists the cases {', '.join(OUTCOMES)}, not {selection.outcome!r}.",
            hint="Use outcome=counted, met or breached.",
        )
    m = _Month(
        session, config, selection.month, selection.group_by, now, contract=selection.contract
    )
    names = {row.kpi for row in _run(m, config)} | known_kpis(config)
    if selection.kpi not in names:
        raise KpiError(
            f"There is no KPI {selection.kpi!r} in the KPI configuration.",
            hint="Choose one of: " + ", ".join(sorted(names)) + ".",
        )
    return set(m.members[(selection.kpi, selection.group)][selection.outcome])


def known_kpis(config: Mapping[str, Any]) -> set[str]:
    """Every KPI the configuration computes, whether or not a month has figures for it."""
    names = set(config.get("sla_kpis") or {})
    if config.get("satisfaction"):
        names |= {"satisfaction", "satisfaction_average", "satisfaction_below_threshold"}
    if config.get("fix_rate"):
        names.add("fix_rate")
    if config.get("uptime"):
        names.add("device_uptime")
    return names


def audit_sample(
    session: Session, config: Mapping[str, Any], *, quarter: str, seed: int, share: float = 0.2
) -> list[int]:
    """At least ``share`` of the quarter's finished service records, drawn at random from a
    seed: the same seed always draws the same cases (R-KPI-04)."""
    match = _QUARTER.match(quarter)
    if match is None:
        raise KpiError(f"Quarter {quarter!r} is not YYYY-Qn.", hint="Write e.g. 2025-Q4.")
    year, q = int(match.group(1)), int(match.group(2))
    start, _ = month_bounds(f"{year}-{3 * q - 2:02d}", config.get("timezone", "Asia/Shanghai"))
    _, end = month_bounds(f"{year}-{3 * q:02d}", config.get("timezone", "Asia/Shanghai"))
    ids = sorted(
        session.execute(
            select(cases.c.id).where(
                cases.c.definition_name.in_(config.get("audit_definitions", [])),
                cases.c.status == CaseStatus.COMPLETED.value,
                cases.c.updated_at >= start,
                cases.c.updated_at < end,
            )
        ).scalars()
    )
    size = math.ceil(share * len(ids))
    return sorted(random.Random(seed).sample(ids, size))


def to_csv_rows(rows: Iterable[KpiRow]) -> list[list[Any]]:
    header = ["kpi", "group", "numerator", "denominator", "value", "target", "met"]
    return [header] + [
        [r.kpi, r.group, r.numerator, r.denominator, r.to_dict()["value"], r.target, r.met]
        for r in rows
    ]
