"""``svcflow stuck`` and ``svcflow ops ...``: what is stuck and why, and acting on it,
one case or many (with a dry run and a progress bar)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from engine.cli.app import connect, instant_option, json_object, main, transaction
from engine.cli.output import retry_answer, table, ts
from engine.errors import SvcflowError
from engine.services import bulk, inspection, operations
from engine.services.search import CaseFilter


@main.command("stuck")
@click.option(
    "--reason", "reasons", multiple=True, type=click.Choice([r.value for r in inspection.Reason])
)
@click.option("--definition")
@click.option("--contract", help="Only the cases created under this service contract.")
@click.option(
    "--by-contract", is_flag=True, help="Group the findings by contract, with a count each."
)
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
    contract: str | None,
    by_contract: bool,
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
            contract=contract,
        )
    if by_contract:  # stable: within a contract, the rules' order (oldest first) is kept
        findings.sort(key=lambda f: f.contract or "")
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], ensure_ascii=False, indent=2))
        return
    zone = ctx.obj["zone"]
    table(
        ["reason", "case", "definition", "contract", "state", "since", "until", "detail"],
        [
            [
                f.reason.value,
                f.case_id,
                f.definition,
                f.contract or "-",
                f.state,
                ts(f.since, zone),
                ts(f.until, zone),
                f.detail,
            ]
            for f in findings
        ],
    )
    if by_contract:
        per_contract = Counter(f.contract or "-" for f in findings)
        click.echo("\n" + ", ".join(f"{c}: {n}" for c, n in sorted(per_contract.items())))
    for reason in sorted({f.reason for f in findings}, key=lambda r: r.value):
        click.echo(f"\n{reason.value}: {inspection.ACTIONS[reason]}")


@main.group("ops")
def ops() -> None:
    """Operator actions; each needs --reason and is recorded in the case history. Give
    case ids, or a filter (--definition/--state/--overdue) to act on many: --dry-run first."""


def _bulk(
    ctx: click.Context,
    action: bulk.BulkAction,
    params: dict[str, Any],
    *,
    case_ids: tuple[int, ...],
    definition: str | None,
    state: str | None,
    overdue: bool,
    reason: str,
    dry_run: bool,
    describe: str,
) -> None:
    """Act on the cases named, or on every open case the filter matches, chunk by chunk as
    engine/services/bulk.py says: each chunk in its own transaction, a refusal undoing only
    its case."""
    connect(ctx)
    act = bulk.operation(
        action, params, actor=ctx.obj["actor"], reason=reason, now=ctx.obj["clock"].now()
    )
    query = CaseFilter(definition=definition, state=state, overdue=overdue or None)
    if not case_ids:
        try:
            bulk.check_filter(query)
        except SvcflowError as exc:
            raise click.UsageError(
                "Give case ids or a filter (--definition, --state, --overdue)."
            ) from exc
    items: list[bulk.Item] = []
    pending = list(case_ids)
    cursor: int | None = None
    while True:
        with transaction(ctx) as session:
            if case_ids:
                chunk = bulk.cases_by_id(session, pending[: bulk.MAX_CHUNK])
                pending = pending[bulk.MAX_CHUNK :]
                more = bool(pending)
            else:
                found = bulk.next_chunk(
                    session, query, now=ctx.obj["clock"].now(), before_id=cursor
                )
                chunk, cursor, more = (
                    found.cases,
                    found.next_before_id,
                    found.next_before_id is not None,
                )
            done = bulk.preview(chunk) if dry_run else bulk.apply(session, chunk, act)
        items += done
        if not dry_run:
            click.echo(f"{describe}: {len(items)} case(s) so far", err=True)
        if not more:
            break
    _report(items, dry_run, describe)


def _report(items: list[bulk.Item], dry_run: bool, describe: str) -> None:
    if dry_run:
        ids = [str(i.case_id) for i in items]
        click.echo(
            f"dry run: would {describe} on {len(ids)} case(s): "
            + ", ".join(ids[:50])
            + (" ..." if len(ids) > 50 else "")
        )
        return
    failed = [i for i in items if i.outcome is bulk.Outcome.FAILED]
    click.echo(f"{len(items) - len(failed)} done, {len(failed)} failed")
    for item in failed:
        click.echo(f"  case {item.case_id}: {item.detail}", err=True)
    if failed:
        # A script (or a person's shell) learns that not everything was done.
        raise click.exceptions.Exit(1)


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


@ops.command("fire")
@click.option("--trigger", required=True)
@click.option("--payload")
@_filters
@click.pass_context
def ops_fire(ctx: click.Context, /, *, trigger: str, payload: str | None, **target: Any) -> None:
    """Fire TRIGGER (it must be allowed in each case's state)."""
    params = {"trigger": trigger, "payload": json_object(payload, "--payload")}
    _bulk(ctx, bulk.BulkAction.FIRE, params, describe=f"fire {trigger}", **target)


@ops.command("cancel")
@_filters
@click.pass_context
def ops_cancel(ctx: click.Context, /, **target: Any) -> None:
    """Cancel cases."""
    _bulk(ctx, bulk.BulkAction.CANCEL, {}, describe="cancel", **target)


@ops.command("force")
@click.option("--to", "to_state", required=True, help="The state to put the cases in.")
@_filters
@click.pass_context
def ops_force(ctx: click.Context, /, *, to_state: str, **target: Any) -> None:
    """Force cases into a state (administrators; recorded as forced)."""
    _bulk(ctx, bulk.BulkAction.FORCE, {"state": to_state}, describe=f"force {to_state}", **target)


@ops.command("pause-sla")
@click.option("--sla", required=True)
@click.option("--resume", is_flag=True, help="Resume instead of pause.")
@click.option(
    "--resume-at",
    help="When the pause ends by itself, e.g. 2026-03-02T09:00:00+08:00 (with its offset).",
)
@_filters
@click.pass_context
def ops_pause(
    ctx: click.Context, /, *, sla: str, resume: bool, resume_at: str | None, **target: Any
) -> None:
    """Pause (or --resume) an SLA clock; a pause may end by itself at --resume-at."""
    action = bulk.BulkAction.RESUME_SLA if resume else bulk.BulkAction.PAUSE_SLA
    describe = f"{'resume' if resume else 'pause'} {sla}"
    params: dict[str, Any] = {"sla": sla}
    if resume_at is not None:
        params["resume_at"] = instant_option(resume_at, "--resume-at")
    _bulk(ctx, action, params, describe=describe, **target)


@ops.command("reassign")
@click.option("--to", "assignee", required=True)
@_filters
@click.pass_context
def ops_reassign(ctx: click.Context, /, *, assignee: str, **target: Any) -> None:
    """Reassign cases (the definition's assignee field)."""
    params = {"assignee": assignee}
    _bulk(ctx, bulk.BulkAction.REASSIGN, params, describe=f"reassign to {assignee}", **target)


@ops.command("retry-timer")
@click.argument("timer_ids", nargs=-1, type=int, required=True)
@click.option("--reason", required=True)
@click.pass_context
def ops_retry_timer(ctx: click.Context, timer_ids: tuple[int, ...], reason: str) -> None:
    """Re-arm failed timers (the sweeper or a worker delivers them)."""
    connect(ctx)
    for timer_id in timer_ids:
        with transaction(ctx) as session:
            outcome = operations.retry_timer(
                session, timer_id, actor=ctx.obj["actor"], reason=reason, now=ctx.obj["clock"].now()
            )
        click.echo(retry_answer(timer_id, outcome))
