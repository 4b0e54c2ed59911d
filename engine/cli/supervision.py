"""``svcflow stuck`` and ``svcflow ops ...``: what is stuck and why, and acting on it,
one case or many (with a dry run and a progress bar)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from engine.cli.app import connect, json_object, main, transaction
from engine.cli.output import table, ts
from engine.core.machine import Actor
from engine.errors import SvcflowError
from engine.services import inspection, operations
from engine.services.search import CaseFilter, search_cases


@main.command("stuck")
@click.option(
    "--reason", "reasons", multiple=True, type=click.Choice([r.value for r in inspection.Reason])
)
@click.option("--definition")
@click.option("--limit", default=200, show_default=True, help="Per reason.")
@click.option(
    "--stall-hours",
    default=72,
    show_default=True,
    help="No activity for this long (and no armed timer) is a silent stall.",
)
@click.option("--refresh-dwell", is_flag=True, help="Recompute dwell statistics first.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def stuck_command(
    ctx: click.Context,
    *,
    reasons: tuple[str, ...],
    definition: str | None,
    limit: int,
    stall_hours: int,
    refresh_dwell: bool,
    as_json: bool,
) -> None:
    """Cases that need a supervisor: each with its reason, since when, and what to do."""
    connect(ctx)
    now = ctx.obj["clock"].now()
    settings = inspection.Settings(stall_after=timedelta(hours=stall_hours))
    with transaction(ctx) as session:
        if refresh_dwell:
            inspection.refresh_dwell_stats(session, now=now)
        findings = inspection.inspect(
            session,
            now=now,
            settings=settings,
            definition=definition,
            limit=limit,
            reasons=[inspection.Reason(r) for r in reasons] or None,
        )
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], ensure_ascii=False, indent=2))
        return
    table(
        ["reason", "case", "definition", "state", "since (UTC)", "detail"],
        [
            [f.reason.value, f.case_id, f.definition, f.state, ts(f.since), f.detail]
            for f in findings
        ],
    )
    for reason in sorted({f.reason for f in findings}, key=lambda r: r.value):
        click.echo(f"\n{reason.value}: {inspection.ACTIONS[reason]}")


@main.group("ops")
def ops() -> None:
    """Operator actions; each needs --reason and is recorded in the case history. Give
    case ids, or a filter (--definition/--state/--overdue) to act on many: --dry-run first."""


def _targets(
    ctx: click.Context,
    case_ids: tuple[int, ...],
    definition: str | None,
    state: str | None,
    overdue: bool,
) -> list[int]:
    if case_ids:
        return list(case_ids)
    if not (definition or state or overdue):
        raise click.UsageError("Give case ids or a filter (--definition, --state, --overdue).")
    ids: list[int] = []
    cursor = None
    with transaction(ctx) as session:
        while True:
            page, cursor = search_cases(
                session,
                CaseFilter(
                    definition=definition, state=state, status="open", overdue=overdue or None
                ),
                now=ctx.obj["clock"].now(),
                before_id=cursor,
                limit=500,
            )
            ids += [c.id for c in page]
            if cursor is None:
                return ids


def _bulk(
    ctx: click.Context, ids: list[int], dry_run: bool, describe: str, act: Callable[[Any, int], Any]
) -> None:
    if dry_run:
        click.echo(
            f"dry run: would {describe} on {len(ids)} case(s): "
            + ", ".join(map(str, ids[:50]))
            + (" ..." if len(ids) > 50 else "")
        )
        return
    failures: list[str] = []
    with click.progressbar(ids, label=describe, show_pos=True) as bar:
        for case_id in bar:
            try:
                with transaction(ctx) as session:  # one case per transaction
                    act(session, case_id)
            except SvcflowError as exc:
                failures.append(f"case {case_id}: {exc.message}")
    click.echo(f"{len(ids) - len(failures)} done, {len(failures)} failed")
    for line in failures:
        click.echo(f"  {line}", err=True)


def _filters(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.argument("case_ids", nargs=-1, type=int),
            click.option("--definition"),
            click.option("--state"),
            click.option("--overdue", is_flag=True),
            click.option("--reason", required=True, help="Why: recorded in the history."),
            click.option("--dry-run", is_flag=True, help="List the cases; change nothing."),
        ]
    ):
        func = option(func)
    return func


def _actor(ctx: click.Context) -> Actor:
    actor: Actor = ctx.obj["actor"]
    return actor


@ops.command("fire")
@click.option("--trigger", required=True)
@click.option("--payload")
@_filters
@click.pass_context
def ops_fire(
    ctx: click.Context,
    *,
    trigger: str,
    payload: str | None,
    case_ids: tuple[int, ...],
    definition: str | None,
    state: str | None,
    overdue: bool,
    reason: str,
    dry_run: bool,
) -> None:
    """Fire TRIGGER (it must be allowed in each case's state)."""
    connect(ctx)
    body = json_object(payload, "--payload")
    _bulk(
        ctx,
        _targets(ctx, case_ids, definition, state, overdue),
        dry_run,
        f"fire {trigger}",
        lambda s, cid: operations.fire(
            s, cid, trigger, body, actor=_actor(ctx), reason=reason, now=ctx.obj["clock"].now()
        ),
    )


@ops.command("cancel")
@_filters
@click.pass_context
def ops_cancel(
    ctx: click.Context,
    *,
    case_ids: tuple[int, ...],
    definition: str | None,
    state: str | None,
    overdue: bool,
    reason: str,
    dry_run: bool,
) -> None:
    """Cancel cases."""
    connect(ctx)
    _bulk(
        ctx,
        _targets(ctx, case_ids, definition, state, overdue),
        dry_run,
        "cancel",
        lambda s, cid: operations.cancel(
            s, cid, actor=_actor(ctx), reason=reason, now=ctx.obj["clock"].now()
        ),
    )


@ops.command("force")
@click.option("--to", "to_state", required=True, help="The state to put the cases in.")
@_filters
@click.pass_context
def ops_force(
    ctx: click.Context,
    *,
    to_state: str,
    case_ids: tuple[int, ...],
    definition: str | None,
    state: str | None,
    overdue: bool,
    reason: str,
    dry_run: bool,
) -> None:
    """Force cases into a state (administrators; recorded as forced)."""
    connect(ctx)
    _bulk(
        ctx,
        _targets(ctx, case_ids, definition, state, overdue),
        dry_run,
        f"force {to_state}",
        lambda s, cid: operations.force_state(
            s, cid, to_state, actor=_actor(ctx), reason=reason, now=ctx.obj["clock"].now()
        ),
    )


@ops.command("pause-sla")
@click.option("--sla", required=True)
@click.option("--resume", is_flag=True, help="Resume instead of pause.")
@_filters
@click.pass_context
def ops_pause(
    ctx: click.Context,
    *,
    sla: str,
    resume: bool,
    case_ids: tuple[int, ...],
    definition: str | None,
    state: str | None,
    overdue: bool,
    reason: str,
    dry_run: bool,
) -> None:
    """Pause (or --resume) an SLA clock."""
    connect(ctx)
    _bulk(
        ctx,
        _targets(ctx, case_ids, definition, state, overdue),
        dry_run,
        f"{'resume' if resume else 'pause'} {sla}",
        lambda s, cid: operations.set_sla_paused(
            s, cid, sla, not resume, actor=_actor(ctx), reason=reason, now=ctx.obj["clock"].now()
        ),
    )


@ops.command("reassign")
@click.option("--to", "assignee", required=True)
@_filters
@click.pass_context
def ops_reassign(
    ctx: click.Context,
    *,
    assignee: str,
    case_ids: tuple[int, ...],
    definition: str | None,
    state: str | None,
    overdue: bool,
    reason: str,
    dry_run: bool,
) -> None:
    """Reassign cases (the definition's assignee field)."""
    connect(ctx)
    _bulk(
        ctx,
        _targets(ctx, case_ids, definition, state, overdue),
        dry_run,
        f"reassign to {assignee}",
        lambda s, cid: operations.reassign(
            s, cid, assignee, actor=_actor(ctx), reason=reason, now=ctx.obj["clock"].now()
        ),
    )


@ops.command("retry-timer")
@click.argument("timer_ids", nargs=-1, type=int, required=True)
@click.option("--reason", required=True)
@click.pass_context
def ops_retry_timer(ctx: click.Context, timer_ids: tuple[int, ...], reason: str) -> None:
    """Re-arm failed timers (the sweeper or a worker delivers them)."""
    connect(ctx)
    for timer_id in timer_ids:
        with transaction(ctx) as session:
            operations.retry_timer(
                session, timer_id, actor=_actor(ctx), reason=reason, now=ctx.obj["clock"].now()
            )
        click.echo(f"timer {timer_id} re-armed")
