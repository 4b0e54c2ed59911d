"""What the KPI page shows: one month's KPIs against their targets, and six months of each.

The numbers are engine/services/kpis.py's (R-KPI-02); which workflow, SLA or data field feeds
which KPI is the KPI configuration (``KPI_CONFIG``, by default workflows/catalog/kpis.yaml,
the file the API and the command line read). Without it the page says so instead of failing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app, g, url_for
from markupsafe import Markup
from sqlalchemy.orm import Session

from api.dashboard import charts, display, i18n
from engine.core.definition import parse_source
from engine.errors import SvcflowError
from engine.services import kpi_summary, kpis

DEFAULT_CONFIG = "workflows/catalog/kpis.yaml"
GROUPS = ("team", "customer", "device", kpis.BY_CONTRACT)
TREND_MONTHS = 6
AVERAGES = frozenset({"satisfaction_average"})  # a score, not a share
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass
class KpiChart:
    name: str
    title: str
    target: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    bars: Markup | None = None
    trend: Markup | None = None


@dataclass
class SummaryView:
    """The team x target table as the page shows it: column titles with their targets, and
    per group its cells (value, verdict, what was counted, the drill-down link)."""

    group_by: str
    columns: list[dict[str, str]]
    rows: list[dict[str, Any]]


@dataclass
class Board:
    message: str | None = None
    charts: list[KpiChart] = field(default_factory=list)
    summary: SummaryView | None = None


def kpi_args(selection: kpis.KpiSelection) -> dict[str, str | None]:
    """A KPI figure as the workbench's query arguments (api/dashboard/workbench.py reads them
    back): the drill-down to exactly the cases it counted."""
    return {
        "kpi": selection.kpi,
        "kpi_month": selection.month,
        "kpi_by": selection.group_by,
        "kpi_group": None if selection.group == kpis.TOTAL else selection.group,
        "kpi_outcome": None if selection.outcome == kpis.COUNTED else selection.outcome,
    }


def group_label(group: str, lang: str) -> str:
    """A KPI group as the page names it: all cases, cases without the label, or the label."""
    if group == kpis.TOTAL:
        return i18n.translate("all_groups", lang)
    return i18n.translate("no_group", lang) if group == kpis.NONE else group


def drill_url(selection: kpis.KpiSelection) -> str | None:
    """The workbench listing a figure's cases; none for a reader who may not open the
    workbench (a process owner reads the KPIs but does not work the cases)."""
    user = g.get("dashboard_user")
    if user is not None and not user.may("dashboard.workbench_page"):
        return None
    args = {k: v for k, v in kpi_args(selection).items() if v is not None}
    return url_for("dashboard.workbench_page", **args)


def drill_heading(selection: kpis.KpiSelection, lang: str) -> dict[str, str]:
    """What the workbench says above a drill-down: which figure's cases it lists."""
    config, _ = load_config(lang)
    name = title(selection.kpi, config or {}, lang)
    group = group_label(selection.group, lang)
    outcome = i18n.translate(f"drill_{selection.outcome}", lang)
    back = url_for("dashboard.kpi_page", month=selection.month, by=selection.group_by)
    return {
        "title": i18n.translate(
            "drill_title", lang, kpi=name, group=group, month=selection.month, outcome=outcome
        ),
        "back": back,
    }


def summary_view(
    summary: kpi_summary.TeamSummary, config: Mapping[str, Any], lang: str
) -> SummaryView:
    columns = []
    for name in summary.columns:
        target = summary.targets.get(name)
        columns.append(
            {
                "kpi": name,
                "title": title(name, config, lang),
                "target": "" if target is None else "≥ " + formatter(name)(target),
            }
        )
    rows = []
    for group, cells in summary.rows:
        shown = []
        for cell in cells:
            row = cell.row
            shown.append(
                {
                    "kpi": cell.kpi,
                    "value": formatter(cell.kpi)(row.value if row else None),
                    "status": cell.status,
                    "counted": counted(cell.kpi, row.numerator, row.denominator, lang)
                    if row
                    else "",
                    "href": drill_url(
                        kpis.KpiSelection(cell.kpi, summary.month, summary.group_by, group)
                    )
                    if row
                    else None,
                }
            )
        label = group_label(group, lang)
        rows.append({"group": label, "cells": shown})
    return SummaryView(summary.group_by, columns, rows)


def valid_month(month: str) -> bool:
    return bool(_MONTH.match(month))


# KPIs whose numerator and denominator are seconds of device time, not counts of cases.
SECONDS_KPIS = frozenset({"device_uptime"})


def counted(name: str, numerator: float, denominator: float, lang: str) -> str:
    """What a KPI's value was computed from, as a person reads it: cases as whole numbers,
    device time in hours ('2.25818e+08 / 2.48832e+08' meant 62,727 h of 69,120 h)."""
    if name in SECONDS_KPIS:
        unit = "小时" if lang == "zh" else " h"
        return f"{numerator / 3600:,.0f}{unit} / {denominator / 3600:,.0f}{unit}"
    return f"{numerator:,.0f} / {denominator:,.0f}"


def current_month(now: datetime) -> str:
    return now.astimezone(display.ZONE).strftime("%Y-%m")


def last_full_month(now: datetime) -> str:
    """The month the KPI page opens on: the bids' targets are judged on whole months, and
    the current one is partial."""
    return months_until(current_month(now), 2)[0]


def months_until(month: str, count: int) -> list[str]:
    """The ``count`` months ending with ``month``, oldest first."""
    year, number = (int(p) for p in month.split("-"))
    index = year * 12 + number - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def config_path() -> Path:
    return Path(current_app.config.get("KPI_CONFIG", DEFAULT_CONFIG))


def load_config(lang: str) -> tuple[Mapping[str, Any] | None, str | None]:
    """The KPI configuration, or the message to show instead."""
    path = config_path()
    if not path.is_file():
        return None, i18n.translate("kpi_config_missing", lang, path=str(path))
    try:
        loaded = parse_source(path.read_text("utf-8"), str(path))
    except (OSError, SvcflowError) as exc:
        return None, i18n.translate("kpi_config_invalid", lang, path=str(path), detail=exc)
    if not isinstance(loaded, Mapping):
        return None, i18n.translate(
            "kpi_config_invalid", lang, path=str(path), detail="not a mapping"
        )
    return loaded, None


def title(name: str, config: Mapping[str, Any], lang: str) -> str:
    """The configuration's own title for an SLA KPI if it has one, else the dashboard's."""
    spec = (config.get("sla_kpis") or {}).get(name)
    own = spec.get("title") if isinstance(spec, Mapping) else None
    if isinstance(own, Mapping) and own.get(lang):
        return str(own[lang])
    return i18n.pick(i18n.KPIS, name, lang)


def formatter(name: str) -> Callable[[float | None], str]:
    if name in AVERAGES:
        return lambda v: display.DASH if v is None else f"{v:.2f}"
    return display.share


def summary_group(group_by: str | None) -> str:
    """The summary groups as the page does, by team unless another grouping is chosen."""
    return group_by or "team"


def build(session: Session, *, month: str, group_by: str | None, now: datetime, lang: str) -> Board:
    config, message = load_config(lang)
    if config is None:
        return Board(message=message)
    try:
        rows = kpis.monthly_kpis(session, config, month=month, group_by=group_by, now=now)
        history = {
            m: kpis.monthly_kpis(session, config, month=m, group_by=None, now=now)
            for m in months_until(month, TREND_MONTHS)
        }
        summary = kpi_summary.team_summary(
            session, config, month=month, now=now, group_by=summary_group(group_by)
        )
    except SvcflowError as exc:
        return Board(message=i18n.translate("kpi_error", lang, detail=exc))
    names = list(
        dict.fromkeys([r.kpi for r in rows] + [r.kpi for past in history.values() for r in past])
    )
    board = Board(
        message=None if names else i18n.translate("kpi_none", lang),
        summary=summary_view(summary, config, lang),
    )
    for name in names:
        board.charts.append(
            _chart(name, config, rows, history, lang, month=month, group_by=group_by)
        )
    return board


def _chart(
    name: str,
    config: Mapping[str, Any],
    rows: list[kpis.KpiRow],
    history: Mapping[str, list[kpis.KpiRow]],
    lang: str,
    *,
    month: str,
    group_by: str | None,
) -> KpiChart:
    fmt = formatter(name)
    mine = sorted(
        (r for r in rows if r.kpi == name), key=lambda r: (r.group != kpis.TOTAL, r.group)
    )
    targets = [r.target for r in mine if r.target is not None] or [
        r.target
        for past in history.values()
        for r in past
        if r.kpi == name and r.target is not None
    ]
    target = targets[0] if targets else None
    label = title(name, config, lang)
    chart = KpiChart(name=name, title=label, target=fmt(target) if target is not None else "")
    for r in mine:
        group = group_label(r.group, lang)
        status = {True: "met", False: "not_met", None: "no_target"}[r.met]
        chart.rows.append(
            {
                "group": group,
                "value": fmt(r.value),
                "status": status,
                "counted": counted(name, r.numerator, r.denominator, lang),
                "href": drill_url(kpis.KpiSelection(name, month, group_by, r.group)),
                # An average has no case that "missed"; every share does, target or not.
                "breached_href": None
                if name in AVERAGES
                else drill_url(kpis.KpiSelection(name, month, group_by, r.group, kpis.BREACHED)),
            }
        )
    if mine:
        largest = max([r.value or 0.0 for r in mine] + [target or 0.0])
        scale = 1.0 if name not in AVERAGES else max(5.0, largest)
        chart.bars = charts.bars(
            [
                charts.Bar(row["group"], r.value, r.target, r.met, row["href"])
                for row, r in zip(chart.rows, mine, strict=True)
            ],
            scale_max=scale,
            fmt=fmt,
            title=label,
        )
    points = []
    for past_month, past in history.items():
        total = next((r for r in past if r.kpi == name and r.group == kpis.TOTAL), None)
        points.append((past_month, total.value if total else None))
    if any(v is not None for _, v in points):
        chart.trend = charts.trend(
            points,
            target=target,
            ratio=name not in AVERAGES,
            fmt=fmt,
            title=f"{label}: {i18n.translate('trend', lang)}",
            links=[drill_url(kpis.KpiSelection(name, m)) for m, _ in points],
        )
    return chart
