"""``svcflow cases migrate``: move running cases to another version of their definition, a
dry run first (docs/versions.md)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

import click

from engine.cli.app import connect, transaction
from engine.cli.cases import cases_group
from engine.cli.output import table
from engine.core.migration import MigrationPlan, ParamsChoice, parse_pairs
from engine.services import case_migration
from engine.services.case_migration import CaseMove, MoveOutcome


@cases_group.command("migrate")
@click.argument("name")
@click.option("--from-version", "from_version", type=int, required=True)
@click.option("--to-version", "to_version", type=int, required=True)
@click.option(
    "--map-state",
    "map_state",
    multiple=True,
    metavar="OLD=NEW",
    help="A state of the old version and the state of the new one its cases go to (states "
    "kept under the same name need none). Repeatable.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="FIELD=CEL",
    help="Set a data field from CEL over the case as it is (data, params, case, now). Repeatable.",
)
@click.option("--drop", "drops", multiple=True, metavar="FIELD", help="Remove a data field.")
@click.option("--where", help="CEL: only cases for which it is true (e.g. data.region == 'sh').")
@click.option(
    "--params",
    type=click.Choice([c.value for c in ParamsChoice]),
    required=True,
    help="keep: the parameter values each case started with; snapshot: the new version's "
    "current values.",
)
@click.option("--reason", required=True, help="Kept in each case's history.")
@click.option("--dry-run", is_flag=True, help="Write nothing; say what would happen to each case.")
@click.option(
    "--batch-size",
    default=100,
    show_default=True,
    type=click.IntRange(1, case_migration.MAX_BATCH),
    help="Cases read per batch; each case is moved in a transaction of its own.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per case, then a summary.")
@click.pass_context
def cases_migrate(
    ctx: click.Context,
    *,
    name: str,
    from_version: int,
    to_version: int,
    map_state: Sequence[str],
    sets: Sequence[str],
    drops: Sequence[str],
    where: str | None,
    params: str,
    reason: str,
    dry_run: bool,
    batch_size: int,
    as_json: bool,
) -> None:
    """Move the running cases of definition NAME from one version to another.

    Run it with --dry-run first. Running it again resumes an interrupted migration: moved
    cases are on the new version and are not taken again. Exits 1 if a case could not move."""
    plan = MigrationPlan(
        definition=name,
        from_version=from_version,
        to_version=to_version,
        params=ParamsChoice(params),
        state_map=parse_pairs(map_state, "--map-state"),
        sets=parse_pairs(sets, "--set"),
        drops=tuple(drops),
        where=where,
        reason=reason,
    )
    connect(ctx)
    actor, clock = ctx.obj["actor"], ctx.obj["clock"]
    with transaction(ctx) as session:
        checked = case_migration.check(session, plan)
        in_use = case_migration.states_in_use(session, checked)
        unmapped = case_migration.unmapped(session, checked)
    if not as_json:
        click.echo(
            f"{name} v{from_version} -> v{to_version}"
            + (" (dry run: nothing is written)" if dry_run else "")
            + f": {sum(in_use.values())} running case(s) on v{from_version}"
        )
        for state, count in in_use.items():
            target = plan.target_state(state)
            note = "  (no counterpart: these cases cannot move)" if state in unmapped else ""
            click.echo(f"  {state} -> {target}: {count}{note}")
    counts: Counter[str] = Counter()
    after_id = 0
    while True:
        with transaction(ctx) as session:
            batch = case_migration.next_batch(session, checked, after_id=after_id, limit=batch_size)
        if not batch:
            break
        moves: list[CaseMove] = []
        for case_id in batch:
            # Each case in a transaction of its own: one that cannot move holds up no other,
            # and an interruption loses at most the case in hand.
            with transaction(ctx) as session:
                if dry_run:
                    move = case_migration.preview_case(session, checked, case_id, now=clock.now())
                else:
                    move = case_migration.migrate_case(
                        session, checked, case_id, actor=actor, now=clock.now()
                    )
            moves.append(move)
            counts[move.outcome.value] += 1
        after_id = batch[-1]
        _print_moves(moves, as_json)
        if not as_json:
            click.echo(f"... {sum(counts.values())} case(s) done: {_summary(counts)}", err=True)
    if as_json:
        click.echo(
            json.dumps({"summary": dict(counts), "plan": plan.to_dict()}, ensure_ascii=False)
        )
    else:
        click.echo(f"done: {_summary(counts) or 'no running case on v' + str(from_version)}")
    if counts[MoveOutcome.REFUSED.value]:
        ctx.exit(1)


def _summary(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))


def _changes(move: CaseMove) -> str:
    text = json.dumps(dict(move.changes), ensure_ascii=False, sort_keys=True)
    text += f" dropped: {', '.join(move.dropped)}" if move.dropped else ""
    return text + "".join(f" | past: {w}" for w in move.warnings)


def _print_moves(moves: Sequence[CaseMove], as_json: bool) -> None:
    if as_json:
        for move in moves:
            click.echo(json.dumps(move.to_dict(), ensure_ascii=False))
        return
    table(
        ["case", "key", "outcome", "from", "to", "changes / reasons"],
        [
            [
                m.case_id,
                m.business_key or "",
                m.outcome.value,
                m.from_state or "",
                m.to_state or "",
                "; ".join(m.reasons) or _changes(m),
            ]
            for m in moves
        ],
    )
