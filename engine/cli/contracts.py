"""``svcflow contracts ...``: load, list and show service contracts, and their monthly
compliance report."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy.orm import Session

from engine.cli.app import connect, main, transaction
from engine.cli.definitions import SOURCE_FILES, each_file, print_problems
from engine.cli.output import table, ts
from engine.core.durations import format_timedelta
from engine.services import compliance, contracts


@main.group("contracts")
def contracts_group() -> None:
    """Service contracts: which customers are served on which terms (docs/contracts.md)."""


def load_files(ctx: click.Context, files: Sequence[Path]) -> None:
    """Load each file in a transaction of its own: one bad file stops there, and what loaded
    before it stays loaded."""
    actor, now = ctx.obj["actor"].name, ctx.obj["clock"].now()

    def load(session: Session, text: str, origin: str) -> contracts.LoadResult:
        return contracts.load_contract(session, text, actor=actor, now=now, origin=origin)

    for result in each_file(ctx, files, load):
        verb = "loaded" if result.created else "unchanged"
        click.echo(f"contract {result.name}: {verb}, version {result.version}")


@contracts_group.command("load")
@SOURCE_FILES
@click.pass_context
def contracts_load(ctx: click.Context, files: Sequence[Path]) -> None:
    """Check and load FILES (YAML); a changed contract becomes its next version, and cases
    created before keep the terms they were created under."""
    connect(ctx)
    load_files(ctx, files)


@contracts_group.command("validate")
@SOURCE_FILES
@click.pass_context
def contracts_validate(ctx: click.Context, files: Sequence[Path]) -> None:
    """Check FILES as loading would (against this database's definitions, calendars and
    other contracts) without loading them; exit 1 if any has errors."""
    connect(ctx)
    failed = False
    checked = each_file(ctx, files, contracts.validate_contract_source)
    for path, (_document, report) in zip(files, checked, strict=True):
        print_problems(str(path), report.problems)
        failed = failed or not report.ok
    sys.exit(1 if failed else 0)


@contracts_group.command("list")
@click.pass_context
def contracts_list(ctx: click.Context) -> None:
    """List contracts (latest versions) with their period and what they cover."""
    connect(ctx)
    with transaction(ctx) as session:
        rows = contracts.list_contracts(session)
    table(
        ["id", "version", "title", "valid", "customers", "devices", "sets"],
        [
            [
                r.contract.id,
                r.contract.version,
                r.contract.title_zh,
                f"{r.contract.valid_from} .. {r.contract.valid_until or ''}",
                len(r.contract.customers),
                len(r.contract.devices),
                ", ".join(sorted(r.contract.parameters)),
            ]
            for r in rows
        ],
    )


@contracts_group.command("show")
@click.argument("contract_id")
@click.option("--version", type=int, help="Default: the latest.")
@click.option("--source", is_flag=True, help="Print the loaded source text.")
@click.option("--json", "as_json", is_flag=True, help="Print the contract as JSON.")
@click.pass_context
def contracts_show(
    ctx: click.Context, contract_id: str, version: int | None, source: bool, as_json: bool
) -> None:
    """Show a contract: period, customers, devices, calendar, team and terms."""
    connect(ctx)
    with transaction(ctx) as session:
        contract = contracts.get_contract(session, contract_id, version)
        assert contract.version is not None
        if source:
            click.echo(contracts.get_source(session, contract.id, contract.version), nl=False)
            return
        versions = contracts.list_versions(session, contract.id)
    if as_json:
        click.echo(
            json.dumps(
                {**contract.document(), "version": contract.version},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    zone = ctx.obj["zone"]
    click.echo(f"{contract.id} v{contract.version}: {contract.title_en} / {contract.title_zh}")
    click.echo("versions: " + ", ".join(f"{v} ({ts(at, zone)} by {by})" for v, at, by in versions))
    click.echo(f"in force: {contract.valid_from} .. {contract.valid_until or '(open-ended)'}")
    click.echo(f"customers: {', '.join(contract.customers)}")
    if contract.devices:
        click.echo(f"devices: {', '.join(contract.devices)}")
    click.echo(f"calendar: {contract.calendar or '-'}   team: {contract.team or '-'}")
    if contract.description:
        click.echo(contract.description.strip())
    click.echo("\nterms:")
    table(
        ["definition", "parameter", "value"],
        [
            [definition, name, json.dumps(value, ensure_ascii=False)]
            for definition, values in contract.parameters.items()
            for name, value in values.items()
        ],
    )


@contracts_group.command("report")
@click.argument("contract_id")
@click.option("--month", required=True, help="YYYY-MM, in the display time zone.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "html"]),
    default="table",
    show_default=True,
    help="html: a page to print and sign; csv: one row per promise, then per breach.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of the terminal.",
)
@click.pass_context
def contracts_report(
    ctx: click.Context, contract_id: str, month: str, fmt: str, output: Path | None
) -> None:
    """The month's compliance report of a contract (R-REP-12): each promise (SLA) with its
    met and breached counts, and every breach with its due and actual instants and the
    case's history: the evidence for a deposit-deduction dispute."""
    connect(ctx)
    zone = ctx.obj["zone"]
    with transaction(ctx) as session:
        report = compliance.compliance_report(
            session, contract_id, month=month, now=ctx.obj["clock"].now(), timezone=zone.key
        )
    if fmt == "table":
        _print_report(report, zone)
        return
    text = compliance.to_csv(report, zone) if fmt == "csv" else compliance.to_html(report, zone)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, "utf-8")
        click.echo(f"wrote {output}")


def _print_report(report: compliance.ComplianceReport, zone: ZoneInfo) -> None:
    contract = report.contract
    click.echo(f"{contract.id} v{contract.version} {contract.title_zh}: {report.month}")
    table(
        ["definition", "sla", "met", "breached"],
        [[p.definition, p.sla, p.met, p.breached] for p in report.promises],
    )
    for b in report.breaches:
        actual = ts(b.actual_at, zone) if b.actual_at else "not yet"
        click.echo(
            f"\ncase {b.case_id} {b.definition} SLA {b.sla} ({b.customer or '-'}): "
            f"due {ts(b.due_at, zone)}, actual {actual}, "
            f"late by {format_timedelta(b.late_by(report.now))}"
        )
        for event in b.excerpt:
            click.echo(f"  {compliance.event_line(event, zone)}")
