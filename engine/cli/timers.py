"""``svcflow timers ...``: see due and failed timers, sweep them into Redis, retry."""

from __future__ import annotations

import click

from engine.cli.app import connect, main, transaction
from engine.cli.output import retry_answer, table, ts
from engine.runtime import delivery
from engine.runtime.resources import Runtime
from engine.services import operations, timer_firing


@main.group()
def timers() -> None:
    """Durable timers."""


@timers.command("sweep")
@click.option("--horizon", default=120, show_default=True, help="Seconds ahead to cover.")
@click.pass_context
def timers_sweep(ctx: click.Context, horizon: int) -> None:
    """Deliver again every armed timer overdue beyond the tolerance, and restore the Redis jobs
    of timers due within the horizon (SVCFLOW_REDIS_URL). Workers do this every few seconds
    on their own; this runs it once, by hand."""
    connect(ctx)
    runtime = Runtime(database_url=ctx.obj["url"], clock=ctx.obj["clock"])
    try:
        outcome = delivery.sweep(
            runtime.sessions, runtime.queue, now=runtime.clock.now(), horizon_seconds=horizon
        )
    finally:
        runtime.close()
    click.echo(
        f"delivered again {outcome.redelivered} overdue timer(s); "
        f"restored {outcome.handed_over} lost hand-over(s)"
    )


@timers.command("failed")
@click.pass_context
def timers_failed(ctx: click.Context) -> None:
    """List failed timers with their errors."""
    connect(ctx)
    with transaction(ctx) as session:
        rows = [
            [t.id, t.case_id, t.name, ts(t.due_at, ctx.obj["zone"]), t.attempts, t.last_error or ""]
            for t in timer_firing.failed_timers(session)
        ]
    table(["id", "case", "name", "due", "attempts", "error"], rows)


@timers.command("retry")
@click.argument("timer_id", type=int)
@click.option("--reason", required=True, help="Recorded in the case history.")
@click.pass_context
def timers_retry(ctx: click.Context, timer_id: int, reason: str) -> None:
    """Re-arm failed timer TIMER_ID (recorded in its case's history); a worker delivers it.
    A timer whose case has moved on is dismissed instead, and the answer says so."""
    connect(ctx)
    with transaction(ctx) as session:
        outcome = operations.retry_timer(
            session,
            timer_id,
            actor=ctx.obj["actor"],
            reason=reason,
            now=ctx.obj["clock"].now(),
        )
    click.echo(retry_answer(timer_id, outcome))
