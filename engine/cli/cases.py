"""``svcflow cases ...``: create cases, fire triggers, read a case with its history, timers
and SLA clocks."""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any

import click

from engine.cli.app import connect, json_object, main, transaction
from engine.cli.output import jsonable, table, ts
from engine.core.durations import format_timedelta
from engine.core.records import CaseRecord, EventRecord, FireOutcome
from engine.services import cases
from engine.services.case_detail import CaseDetail, case_detail
from engine.services.search import CaseFilter, search_cases


@main.group("cases")
def cases_group() -> None:
    """Create cases, fire triggers, read history."""


def _print_outcome(outcome: FireOutcome) -> None:
    case = outcome.case
    note = " (replayed: idempotency key matched an earlier request)" if outcome.replayed else ""
    click.echo(
        f"case {case.id} [{case.definition_name} v{case.definition_version}] state={case.state} "
        f"status={case.status} version={case.version}{_contract_label(case)}{note}"
    )
    if outcome.allowed_triggers:
        click.echo(f"allowed triggers: {', '.join(outcome.allowed_triggers)}")


def _contract_label(case: CaseRecord) -> str:
    if case.contract_name is None:
        return ""
    return f" contract={case.contract_name} v{case.contract_version}"


@cases_group.command("create")
@click.argument("definition")
@click.option("--data", help="Case data as a JSON object, or @file.json.")
@click.option("--version", type=int, help="Definition version (default: latest).")
@click.option("--business-key", help="Your own reference, unique per definition (e.g. ticket no.).")
@click.option("--idempotency-key", help="Retry-safe key: a retry returns the first result.")
@click.option(
    "--contract",
    help="The service contract whose terms the case takes (default: its parent's, or the one "
    "covering its customer or device, or none).",
)
@click.pass_context
def cases_create(
    ctx: click.Context,
    *,
    definition: str,
    data: str | None,
    version: int | None,
    business_key: str | None,
    idempotency_key: str | None,
    contract: str | None,
) -> None:
    """Create a case of DEFINITION."""
    connect(ctx)
    with transaction(ctx) as session:
        outcome = cases.create_case(
            session,
            definition,
            json_object(data, "--data"),
            actor=ctx.obj["actor"],
            now=ctx.obj["clock"].now(),
            version=version,
            business_key=business_key,
            idempotency_key=idempotency_key,
            contract=contract,
        )
    _print_outcome(outcome)


@cases_group.command("fire")
@click.argument("case_id", type=int)
@click.argument("trigger")
@click.option("--payload", help="Trigger payload as a JSON object, or @file.json.")
@click.option("--expect-version", type=int, help="Fail unless the case is at this version.")
@click.option("--idempotency-key", help="Retry-safe key: a retry returns the first result.")
@click.pass_context
def cases_fire(
    ctx: click.Context,
    *,
    case_id: int,
    trigger: str,
    payload: str | None,
    expect_version: int | None,
    idempotency_key: str | None,
) -> None:
    """Fire TRIGGER on case CASE_ID."""
    connect(ctx)
    with transaction(ctx) as session:
        outcome = cases.fire(
            session,
            case_id,
            trigger,
            json_object(payload, "--payload"),
            actor=ctx.obj["actor"],
            now=ctx.obj["clock"].now(),
            expected_version=expect_version,
            idempotency_key=idempotency_key,
        )
    _print_outcome(outcome)


@cases_group.command("cancel")
@click.argument("case_id", type=int)
@click.option("--reason", required=True, help="Recorded in the history.")
@click.pass_context
def cases_cancel(ctx: click.Context, case_id: int, reason: str) -> None:
    """Cancel case CASE_ID (its timers are cancelled too)."""
    connect(ctx)
    with transaction(ctx) as session:
        outcome = cases.cancel_case(
            session, case_id, actor=ctx.obj["actor"], now=ctx.obj["clock"].now(), reason=reason
        )
    _print_outcome(outcome)


@cases_group.command("show")
@click.argument("case_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON (times in UTC).")
@click.pass_context
def cases_show(ctx: click.Context, case_id: int, as_json: bool) -> None:
    """Show a case: state, data, SLA clocks, timers and its full history."""
    connect(ctx)
    now = ctx.obj["clock"].now()
    with transaction(ctx) as session:
        detail = case_detail(
            session, case_id, now=now, history=True, all_timers=True, actor=ctx.obj["actor"]
        )
        case, allowed, clocks = detail.case, detail.allowed_triggers, detail.clocks
        repeating = {s.name for s in detail.definition.slas if s.repeats}
        events = detail.history or []
        timers = detail.timers
    if as_json:
        click.echo(
            json.dumps(
                {
                    "case": jsonable(case.__dict__),
                    "allowed_triggers": allowed,
                    "contract": _contract_json(detail),
                    "sla": [c.to_dict() for c in clocks],
                    "timers": [
                        {
                            "id": t.id,
                            "name": t.name,
                            "status": t.status,
                            "due_at": jsonable(t.due_at),
                            "trigger": t.trigger or "",
                            "provisional": "yes" if t.provisional else "",
                            "note": t.last_error or t.note or "",
                        }
                        for t in timers
                    ],
                    "history": [jsonable(e.__dict__) for e in events],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    zone = ctx.obj["zone"]
    click.echo(
        f"case {case.id} [{case.definition_name} v{case.definition_version}]"
        + (f" key={case.business_key}" if case.business_key else "")
    )
    click.echo(f"state: {case.state}   status: {case.status}   version: {case.version}")
    click.echo(f"allowed triggers: {', '.join(allowed) or '-'}")
    click.echo("data: " + json.dumps(case.data, ensure_ascii=False, sort_keys=True))
    if detail.contract is not None:
        contract = detail.contract
        click.echo(
            f"contract: {contract.id} v{contract.version} {contract.title_zh} ({contract.title_en})"
        )
        click.echo("terms: " + json.dumps(detail.terms, ensure_ascii=False, sort_keys=True))
    else:
        click.echo("contract: - (the deployment's parameters)")
    if clocks:
        click.echo("\nSLA clocks:")
        table(
            ["sla", "status", "elapsed", "remaining", "due"],
            [
                [
                    c.name + (f" (round {c.round})" if c.name in repeating else ""),
                    c.status.value + (" (provisional)" if c.provisional else ""),
                    format_timedelta(c.elapsed),
                    format_timedelta(c.remaining),
                    ts(c.due_at, zone),
                ]
                for c in clocks
            ],
        )
    if timers:
        click.echo("\ntimers:")
        table(
            ["id", "name", "status", "due", "trigger", "provisional", "note"],
            [
                [
                    t.id,
                    t.name,
                    t.status,
                    ts(t.due_at, zone),
                    t.trigger or "",
                    "yes" if t.provisional else "",
                    t.last_error or t.note or "",
                ]
                for t in timers
            ],
        )
    click.echo("\nhistory:")
    table(
        ["seq", "at", "event", "trigger", "from", "to", "actor", "changes"],
        [_history_row(e, zone) for e in events],
    )


def _contract_json(detail: CaseDetail) -> dict[str, Any] | None:
    contract = detail.contract
    if contract is None:
        return None
    return {
        "id": contract.id,
        "version": contract.version,
        "title": {"en": contract.title_en, "zh": contract.title_zh},
        "terms": detail.terms,
    }


def _history_row(e: EventRecord, zone: tzinfo) -> list[Any]:
    detail = e.changes or (
        {k: v for k, v in e.payload.items()} if e.event_type != "transition" else {}
    )
    return [
        e.seq,
        ts(e.at, zone),
        e.event_type,
        e.trigger or "",
        e.from_state or "",
        e.to_state,
        e.actor,
        json.dumps(detail, ensure_ascii=False, sort_keys=True),
    ]


@cases_group.command("list")
@click.option("--definition")
@click.option("--state")
@click.option("--status", type=click.Choice(["open", "completed", "cancelled"]))
@click.option("--overdue", is_flag=True, help="Only open cases with a breached SLA.")
@click.option("--contract", help="Only the cases created under this service contract.")
@click.option("--limit", default=50, show_default=True)
@click.pass_context
def cases_list(
    ctx: click.Context,
    *,
    definition: str | None,
    state: str | None,
    status: str | None,
    overdue: bool,
    contract: str | None,
    limit: int,
) -> None:
    """List cases, newest first."""

    connect(ctx)
    f = CaseFilter(
        definition=definition,
        state=state,
        status=status,
        overdue=overdue or None,
        contract=contract,
    )
    with transaction(ctx) as session:
        page, _ = search_cases(session, f, now=ctx.obj["clock"].now(), before_id=None, limit=limit)
    table(
        ["id", "definition", "key", "contract", "state", "status", "version", "updated"],
        [
            [
                c.id,
                f"{c.definition_name} v{c.definition_version}",
                c.business_key or "",
                c.contract_name or "",
                c.state,
                c.status,
                c.version,
                ts(c.updated_at, ctx.obj["zone"]),
            ]
            for c in page
        ],
    )
