"""The team x target summary: did each team meet the bids' targets in a month (R-KPI-02)?

One row per group (team by default, every case first), one column per KPI the configuration
lists under ``summary`` (by default every KPI with a target), each cell the group's figure
and its verdict: met, not met, no target (a figure without a bid target) or no data (nothing
counted for the group that month). The figures are engine/services/kpis.py's, so a cell and
the KPI page's table for the same month and group always agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import KpiError
from engine.services import kpis
from engine.services.kpis import KpiRow

MET, NOT_MET, NO_TARGET, NO_DATA = "met", "not_met", "no_target", "no_data"


@dataclass(frozen=True)
class SummaryCell:
    kpi: str
    group: str
    row: KpiRow | None  # None: nothing counted for this group and KPI in the month

    @property
    def status(self) -> str:
        if self.row is None or self.row.value is None:
            return NO_DATA
        met = self.row.met
        return NO_TARGET if met is None else MET if met else NOT_MET

    def to_dict(self) -> dict[str, Any]:
        row = self.row.to_dict() if self.row else {}
        return {
            "kpi": self.kpi,
            "value": row.get("value"),
            "numerator": row.get("numerator", 0),
            "denominator": row.get("denominator", 0),
            "status": self.status,
        }


@dataclass(frozen=True)
class TeamSummary:
    month: str
    group_by: str
    columns: list[str]
    targets: dict[str, float | None]
    rows: list[tuple[str, list[SummaryCell]]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "by": self.group_by,
            "columns": [{"kpi": k, "target": self.targets.get(k)} for k in self.columns],
            "rows": [
                {"group": group, "cells": [cell.to_dict() for cell in cells]}
                for group, cells in self.rows
            ],
        }


def columns(config: Mapping[str, Any]) -> list[str]:
    """The KPIs the summary shows, in order: the configuration's ``summary`` list, else every
    KPI that has a target."""
    listed = config.get("summary")
    known = kpis.known_kpis(config)
    if listed is None:
        return sorted(name for name in known if target_of(config, name) is not None)
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        raise KpiError("The KPI configuration's summary is not a list of KPI names.")
    unknown = [n for n in listed if n not in known]
    if unknown:
        raise KpiError(
            f"The KPI configuration's summary names {', '.join(unknown)}, which it does not "
            "compute.",
            hint="List KPIs of: " + ", ".join(sorted(known)) + ".",
        )
    return list(listed)


def target_of(config: Mapping[str, Any], kpi: str) -> float | None:
    section = {
        "satisfaction": config.get("satisfaction"),
        "fix_rate": config.get("fix_rate"),
        "device_uptime": config.get("uptime"),
    }.get(kpi) or (config.get("sla_kpis") or {}).get(kpi)
    target = section.get("target") if isinstance(section, Mapping) else None
    return float(target) if isinstance(target, int | float) else None


def team_summary(
    session: Session,
    config: Mapping[str, Any],
    *,
    month: str,
    now: datetime,
    group_by: str = "team",
    contract: str | None = None,
) -> TeamSummary:
    """Each group's figure and verdict for each summary KPI in ``month``."""
    shown = columns(config)
    rows = kpis.monthly_kpis(
        session, config, month=month, group_by=group_by, now=now, contract=contract
    )
    by_cell = {(r.kpi, r.group): r for r in rows if r.kpi in shown}
    groups = {group for _, group in by_cell} - {kpis.TOTAL}
    ordered = [kpis.TOTAL, *sorted(groups - {kpis.NONE})]
    ordered += [kpis.NONE] if kpis.NONE in groups else []
    return TeamSummary(
        month=month,
        group_by=group_by,
        columns=shown,
        targets={name: target_of(config, name) for name in shown},
        rows=[
            (group, [SummaryCell(name, group, by_cell.get((name, group))) for name in shown])
            for group in ordered
        ],
    )
