"""``svcflow kpis`` and ``svcflow audit-sample``."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import click

from engine.cli.app import connect, main, transaction
from engine.cli.output import table
from engine.core.definition import parse_source
from engine.services.kpi_summary import TeamSummary, team_summary
from engine.services.kpis import audit_sample, last_full_month, monthly_kpis, to_csv_rows

DEFAULT_CONFIG = Path("workflows/catalog/kpis.yaml")
# The KPI definitions file both commands read (workflows/catalog/kpis.yaml by default).
KPI_CONFIG = click.option(
    "--config",
    "config_path",
    default=str(DEFAULT_CONFIG),
    show_default=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)


def load_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = parse_source(path.read_text("utf-8"), str(path))
    return config


@main.command("kpis")
@click.option(
    "--month", help="YYYY-MM (in the configured time zone); by default the last full month."
)
@click.option("--by", "group_by", type=click.Choice(["team", "customer", "device", "contract"]))
@click.option("--contract", help="Only the cases created under this service contract.")
@click.option(
    "--summary",
    is_flag=True,
    help="Did each team (or --by group) meet each target: one row per group, one column "
    "per target.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@KPI_CONFIG
@click.pass_context
def kpis_command(
    ctx: click.Context,
    *,
    month: str | None,
    group_by: str | None,
    contract: str | None,
    summary: bool,
    fmt: str,
    config_path: Path,
) -> None:
    """Monthly KPIs with their targets (R-KPI-02), per team, customer, device or contract."""
    connect(ctx)
    config = load_config(config_path)
    now = ctx.obj["clock"].now()
    month = month or last_full_month(now, config.get("timezone", "Asia/Shanghai"))
    if summary:
        with transaction(ctx) as session:
            found = team_summary(
                session,
                config,
                month=month,
                now=now,
                group_by=group_by or "team",
                contract=contract,
            )
        _print_summary(found, fmt)
        return
    with transaction(ctx) as session:
        rows = monthly_kpis(
            session,
            config,
            month=month,
            group_by=group_by,
            now=now,
            contract=contract,
        )
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
    elif fmt == "csv":
        csv.writer(sys.stdout).writerows(to_csv_rows(rows))
    else:
        table(
            ["kpi", "group", "value", "target", "met", "counted"],
            [
                [
                    r.kpi,
                    r.group,
                    "-"
                    if r.value is None
                    else f"{r.value:.2%}"
                    if r.denominator and r.kpi != "satisfaction_average"
                    else f"{r.value:.2f}",
                    r.target or "",
                    {True: "yes", False: "NO", None: ""}[r.met],
                    f"{r.numerator:g}/{r.denominator:g}",
                ]
                for r in rows
            ],
        )


def _print_summary(summary: TeamSummary, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["group", *summary.columns])
        for group, cells in summary.rows:
            writer.writerow([group, *(cell.to_dict()["value"] for cell in cells)])
        return
    verdicts = {"met": "met", "not_met": "NOT MET", "no_target": "", "no_data": "no data"}
    header = [summary.group_by]
    for name in summary.columns:
        target = summary.targets.get(name)
        header.append(name if target is None else f"{name} (>= {target:.1%})")
    lines = []
    for group, cells in summary.rows:
        line = [group]
        for cell in cells:
            row = cell.row
            shown = "-" if row is None or row.value is None else f"{row.value:.2%}"
            line.append(f"{shown} {verdicts[cell.status]}".strip())
        lines.append(line)
    click.echo(f"month {summary.month}")
    table(header, lines)


@main.command("audit-sample")
@click.option("--quarter", required=True, help="YYYY-Qn")
@click.option("--seed", required=True, type=int, help="The same seed draws the same sample.")
@click.option("--share", default=0.2, show_default=True, type=click.FloatRange(0.2, 1.0))
@KPI_CONFIG
@click.pass_context
def audit_sample_command(
    ctx: click.Context, quarter: str, seed: int, share: float, config_path: Path
) -> None:
    """Draw the quarterly audit sample of service records (R-KPI-04), at least 20%."""
    connect(ctx)
    with transaction(ctx) as session:
        ids = audit_sample(
            session, load_config(config_path), quarter=quarter, seed=seed, share=share
        )
    click.echo(json.dumps({"quarter": quarter, "seed": seed, "share": share, "cases": ids}))
