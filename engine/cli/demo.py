"""``svcflow demo``: fill an empty database with a living, back-dated service desk."""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.app import connect, main
from engine.cli.project import WORKFLOWS_OPTION
from engine.demo import run_demo, summary
from engine.store import migrate
from engine.store.database import database_url, session_factory


@main.command("demo")
@click.option(
    "--cases",
    "cases_wanted",
    default=200,
    show_default=True,
    type=click.IntRange(1, 20_000),
    help="How many cases to open (device files and stocks come on top).",
)
@click.option(
    "--days",
    default=45,
    show_default=True,
    type=click.IntRange(1, 365),
    help="How far back the desk's history starts.",
)
@click.option("--seed", default=17, show_default=True, help="Same seed, same desk.")
@WORKFLOWS_OPTION
@click.pass_context
def demo_command(
    ctx: click.Context, cases_wanted: int, days: int, seed: int, workflows_dir: Path
) -> None:
    """Fill an empty database with a back-dated service desk: cases of every bundled workflow
    for several customers and teams, moved by the real engine on virtual time up to now, with
    overdue and breached clocks and stuck cases to look at in the dashboard. Run it before
    `make run` (or with it stopped): docs/dashboard.md, "A living demo"."""
    connect(ctx, check_schema=False)
    migrate.upgrade(ctx.obj["engine"])
    click.echo(f"database: {database_url(ctx.obj['url'])}")
    report = run_demo(
        session_factory(ctx.obj["engine"]),
        workflows_dir,
        now=ctx.obj["clock"].now(),
        cases_wanted=cases_wanted,
        days=days,
        seed=seed,
    )
    shown = summary(report)
    click.echo("cases:   " + ", ".join(f"{k} {v}" for k, v in sorted(shown["cases"].items())))
    click.echo(
        f"steps:   {shown['fires']} fired by people, {shown['timers_fired']} timers fired, "
        f"{shown['paths_stopped_early']} cases left where a timer moved them"
    )
    stuck = shown["stuck_by_reason"]
    click.echo("stuck:   " + (", ".join(f"{k} {v}" for k, v in sorted(stuck.items())) or "none"))
