"""``svcflow init``, ``svcflow db ...`` and ``svcflow simulate`` (``svcflow run`` is in
:mod:`engine.cli.run`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from engine.cli.app import connect, main
from engine.cli.contracts import load_files
from engine.cli.definitions import publish_files
from engine.cli.output import ts
from engine.simulation import run_scenario_file
from engine.store import migrate
from engine.store.database import database_url

WORKFLOWS_DIR = Path("workflows")
# Where the bundled workflows are (their contracts in contracts/ beside them).
WORKFLOWS_OPTION = click.option(
    "--workflows",
    "workflows_dir",
    default=str(WORKFLOWS_DIR),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    connect(ctx, check_schema=False)
    migrate.upgrade(ctx.obj["engine"], revision)
    click.echo(
        f"database {database_url(ctx.obj['url'])} at revision "
        f"{migrate.current_revision(ctx.obj['engine'])}"
    )


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Print the schema revision of the database and the newest one available."""
    connect(ctx, check_schema=False)
    click.echo(f"current: {migrate.current_revision(ctx.obj['engine'])}")
    click.echo(f"head:    {migrate.head_revision(ctx.obj['engine'])}")


@main.command("init")
@WORKFLOWS_OPTION
@click.pass_context
def init_command(ctx: click.Context, workflows_dir: Path) -> None:
    """Migrate the database, publish the bundled workflows and load the service contracts
    under contracts/ beside them (idempotent)."""
    connect(ctx, check_schema=False)
    migrate.upgrade(ctx.obj["engine"])
    click.echo(
        f"database: {database_url(ctx.obj['url'])} "
        f"(revision {migrate.current_revision(ctx.obj['engine'])})"
    )
    publish_files(ctx, sorted(workflows_dir.glob("*.yaml")))
    load_files(ctx, sorted((workflows_dir / "contracts").glob("*.yaml")))


@main.command("simulate")
@click.argument(
    "scenarios",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.pass_context
def simulate_command(ctx: click.Context, scenarios: Sequence[Path]) -> None:
    """Run SCENARIOS (YAML) on virtual time against their definitions; exit 1 on a failed
    expectation. Format: docs/simulation.md."""
    zone = ctx.obj["zone"]
    failed = False
    for path in scenarios:
        report = run_scenario_file(path)
        mark = click.style("ok", fg="green") if report.ok else click.style("FAILED", fg="red")
        click.echo(
            f"{path}: {report.name}: {mark} ({len(report.steps)} steps, "
            f"{report.timers_fired} timers fired)"
        )
        for step in report.steps:
            if not step.ok or not report.ok:
                flag = "  ok  " if step.ok else "  FAIL"
                click.echo(
                    f"{flag} steps[{step.index}] {step.kind} @ {ts(step.at, zone)}: {step.message}"
                )
        failed = failed or not report.ok
    sys.exit(1 if failed else 0)
