"""``svcflow audit ...``: prove the case history intact, and anchor it (docs/audit.md)."""

from __future__ import annotations

import json

import click

from engine.cli.app import connect, main, transaction
from engine.cli.output import table, ts
from engine.services import audit

SHOWN_BREAKS = 20


@main.group("audit")
def audit_group() -> None:
    """Tamper-evident history: verify the hash chains, take and list anchors."""


@audit_group.command("verify")
@click.option("--case", "case_id", type=click.IntRange(1), help="Check only this case's chain.")
@click.pass_context
def audit_verify(ctx: click.Context, case_id: int | None) -> None:
    """Check every case's hash chain and every anchor (or one case's chain); exit 1 naming
    the first broken event of each broken case."""
    connect(ctx)
    with transaction(ctx) as session:
        report = audit.verify(session, case_id=case_id)
    for found in report.breaks[:SHOWN_BREAKS]:
        click.secho(f"broken: {found}", fg="red", err=True)
    if len(report.breaks) > SHOWN_BREAKS:
        click.echo(f"... and {len(report.breaks) - SHOWN_BREAKS} more broken cases", err=True)
    for problem in report.anchor_problems:
        click.secho(f"broken: {problem}", fg="red", err=True)
    checked = f"{report.cases} cases, {report.events} events"
    if case_id is None:
        checked += f", {report.anchors} anchors"
    if not report.intact:
        click.echo(f"history NOT intact ({checked} checked)", err=True)
        ctx.exit(1)
    click.echo(f"history intact: {checked} checked")


@audit_group.command("anchor")
@click.pass_context
def audit_anchor(ctx: click.Context) -> None:
    """Record an anchor over every case's latest event hash and print it, to publish."""
    connect(ctx)
    # Two transactions: the point is fixed under a short lock, the digest computed after it.
    with transaction(ctx) as session:
        through = audit.anchor_point(session)
    with transaction(ctx) as session:
        anchor = audit.take_anchor(
            session,
            through_event_id=through,
            now=ctx.obj["clock"].now(),
            actor=ctx.obj["actor"].name,
        )
        published = audit.published(anchor)
    click.echo(json.dumps(published, indent=2))


@audit_group.command("anchors")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The anchors as published, newest first.")
@click.pass_context
def audit_anchors(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List the latest anchors (newest first)."""
    connect(ctx)
    zone = ctx.obj["zone"]
    with transaction(ctx) as session:
        found = audit.list_anchors(session, limit=limit)
        if as_json:
            click.echo(json.dumps([audit.published(a) for a in found], indent=2))
            return
        rows = [
            [a.id, ts(a.anchored_at, zone), a.through_event_id, a.cases, a.events, a.hash]
            for a in found
        ]
    table(["id", "taken", "through event", "cases", "events", "hash"], rows)
