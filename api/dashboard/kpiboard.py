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

from flask import current_app
from markupsafe import Markup
from sqlalchemy.orm import Session

from api.dashboard import charts, display, i18n
from engine.core.definition import parse_source
from engine.errors import SvcflowError
from engine.services import kpis

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
class Board:
    message: str | None = None
    charts: list[KpiChart] = field(default_factory=list)


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
    except SvcflowError as exc:
        return Board(message=i18n.translate("kpi_error", lang, detail=exc))
    names = list(
        dict.fromkeys([r.kpi for r in rows] + [r.kpi for past in history.values() for r in past])
    )
    board = Board(message=None if names else i18n.translate("kpi_none", lang))
    for name in names:
        board.charts.append(_chart(name, config, rows, history, lang))
    return board


def _chart(
    name: str,
    config: Mapping[str, Any],
    rows: list[kpis.KpiRow],
    history: Mapping[str, list[kpis.KpiRow]],
    lang: str,
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
        group = i18n.translate("all_groups", lang) if r.group == kpis.TOTAL else r.group
        status = {True: "met", False: "not_met", None: "no_target"}[r.met]
        chart.rows.append(
            {
                "group": group,
                "value": fmt(r.value),
                "status": status,
                "counted": counted(name, r.numerator, r.denominator, lang),
            }
        )
    if mine:
        largest = max([r.value or 0.0 for r in mine] + [target or 0.0])
        scale = 1.0 if name not in AVERAGES else max(5.0, largest)
        chart.bars = charts.bars(
            [
                charts.Bar(row["group"], r.value, r.target, r.met)
                for row, r in zip(chart.rows, mine, strict=True)
            ],
            scale_max=scale,
            fmt=fmt,
            title=label,
        )
    points = []
    for month, past in history.items():
        total = next((r for r in past if r.kpi == name and r.group == kpis.TOTAL), None)
        points.append((month, total.value if total else None))
    if any(v is not None for _, v in points):
        chart.trend = charts.trend(
            points,
            target=target,
            ratio=name not in AVERAGES,
            fmt=fmt,
            title=f"{label}: {i18n.translate('trend', lang)}",
        )
    return chart
