"""``svcflow definitions versions | promote | retire | restore | delete | diff | diagram``:
the versions of a definition, which one new cases get, and what changed between two
(docs/versions.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from sqlalchemy.orm import Session

from engine.cli.app import connect, transaction
from engine.cli.definitions import definitions_group
from engine.cli.output import jsonable, table, ts
from engine.core.diagram import DIRECTIONS, to_dot
from engine.core.diff import render_text
from engine.runtime.diagrams import render_svg
from engine.services import definitions, versions

T = TypeVar("T")
U = TypeVar("U")


@definitions_group.command("versions")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (times in UTC).")
@click.pass_context
def definitions_versions(ctx: click.Context, name: str, as_json: bool) -> None:
    """List the versions of NAME: published when and by whom, which one new cases get, which
    are retired, and their cases (running ones by state)."""
    connect(ctx)
    with transaction(ctx) as session:
        found = versions.versions(session, name)
        retired = versions.is_retired(session, name)
        audit = versions.audit(session, name)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "name": name,
                    "retired": retired,
                    "versions": [jsonable({**v.__dict__, "running": v.running}) for v in found],
                    "audit": [jsonable(a.__dict__) for a in audit],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    zone = ctx.obj["zone"]
    if retired:
        click.secho(f"{name} is retired: it takes no new cases.", fg="yellow")
    table(
        ["version", "", "published", "by", "running (by state)", "completed", "cancelled"],
        [
            [
                v.version,
                "current" if v.current else ("retired" if v.retired_at else ""),
                ts(v.published_at, zone),
                v.published_by,
                f"{v.running}"
                + (
                    " (" + ", ".join(f"{s} {n}" for s, n in v.open_by_state.items()) + ")"
                    if v.open_by_state
                    else ""
                ),
                v.by_status.get("completed", 0),
                v.by_status.get("cancelled", 0),
            ]
            for v in found
        ],
    )
    if audit:
        click.echo("\ndecisions:")
        table(
            ["at", "action", "version", "by", "reason"],
            [[ts(a.at, zone), a.action, a.version or "all", a.actor, a.reason] for a in audit],
        )


def _decide(
    ctx: click.Context,
    decide: Callable[..., T],
    name: str,
    version: int | None,
    reason: str,
    *,
    then: Callable[[Session], U],
) -> tuple[T, U]:
    """Record one of the definition's audited decisions (promote, retire, restore, delete) by
    the CLI's actor, and read what to report in the same transaction."""
    connect(ctx)
    with transaction(ctx) as session:
        done = decide(
            session,
            name,
            version,
            actor=ctx.obj["actor"].name,
            reason=reason,
            now=ctx.obj["clock"].now(),
        )
        return done, then(session)


def _decide_and_say_current(
    ctx: click.Context, decide: Callable[..., None], name: str, version: int | None, reason: str
) -> None:
    _, current = _decide(
        ctx, decide, name, version, reason, then=lambda s: versions.current_version(s, name)
    )
    click.echo(f"{name}: new cases get version {current}")


REASON = click.option("--reason", required=True, help="Kept in the definition's audit.")
ONE_VERSION = click.option(
    "--version", type=int, help="One version; default: the whole definition."
)


@definitions_group.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@REASON
@click.pass_context
def definitions_promote(ctx: click.Context, name: str, version: int, reason: str) -> None:
    """Make VERSION the one new cases of NAME get (e.g. roll back to an earlier one), until a
    new version is published. Running cases keep theirs (see `svcflow cases migrate`)."""
    _decide_and_say_current(ctx, versions.promote, name, version, reason)


@definitions_group.command("retire")
@click.argument("name")
@ONE_VERSION
@REASON
@click.pass_context
def definitions_retire(ctx: click.Context, name: str, version: int | None, reason: str) -> None:
    """Take no more new cases of NAME (or of one version); running cases continue."""
    _, found = _decide(
        ctx, versions.retire, name, version, reason, then=lambda s: versions.versions(s, name)
    )
    running = sum(v.running for v in found if version is None or v.version == version)
    click.echo(
        f"{versions.subject(name, version)} retired: no new cases; "
        f"{running} running case(s) continue"
    )


@definitions_group.command("restore")
@click.argument("name")
@ONE_VERSION
@REASON
@click.pass_context
def definitions_restore(ctx: click.Context, name: str, version: int | None, reason: str) -> None:
    """Undo a retirement: NAME (or one version) takes new cases again."""
    _decide_and_say_current(ctx, versions.restore, name, version, reason)


@definitions_group.command("delete")
@click.argument("name")
@click.option("--version", type=int, help="One version; default: every version.")
@REASON
@click.pass_context
def definitions_delete(ctx: click.Context, name: str, version: int | None, reason: str) -> None:
    """Delete a version (or the definition) that no case uses, e.g. one published by
    mistake. Refused while any case uses it: retire it instead."""
    deleted, _ = _decide(
        ctx, versions.delete_version, name, version, reason, then=lambda _session: None
    )
    click.echo(f"{name}: deleted version(s) {', '.join(map(str, deleted))}")


@definitions_group.command("diff")
@click.argument("name")
@click.argument("from_version", type=int)
@click.argument("to_version", type=int)
@click.option(
    "--format",
    "output",
    type=click.Choice(["summary", "text", "json"]),
    default="summary",
    show_default=True,
    help="summary: what changed, element by element; text: the source diff; json: both.",
)
@click.pass_context
def definitions_diff(
    ctx: click.Context, name: str, from_version: int, to_version: int, output: str
) -> None:
    """What changed in NAME between FROM_VERSION and TO_VERSION: states, transitions, timers,
    SLAs, parameters and roles, or the text of the documents."""
    connect(ctx)
    with transaction(ctx) as session:
        diff = definitions.diff_versions(session, name, from_version, to_version)
    if output == "json":
        click.echo(json.dumps(jsonable(diff.__dict__), ensure_ascii=False, indent=2))
    elif output == "text":
        click.echo(diff.source_diff or "(the sources are identical)", nl=bool(not diff.source_diff))
    else:
        click.echo(render_text(diff), nl=False)


@definitions_group.command("diagram")
@click.argument("name")
@click.option("--version", type=int, help="Default: the one new cases get.")
@click.option("--lang", type=click.Choice(["en", "zh"]), default="en", show_default=True)
@click.option(
    "--format", "output", type=click.Choice(["svg", "dot"]), default="svg", show_default=True
)
@click.option(
    "--counts", is_flag=True, help="Write the running cases of that version on its states."
)
@click.option(
    "--direction",
    type=click.Choice(DIRECTIONS),
    default="LR",
    show_default=True,
    help="LR: left to right; TB: top to bottom, narrower for a large workflow.",
)
@click.option(
    "-o",
    "--output-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.pass_context
def definitions_diagram(
    ctx: click.Context,
    *,
    name: str,
    version: int | None,
    lang: str,
    output: str,
    counts: bool,
    direction: str,
    output_file: Path | None,
) -> None:
    """The state diagram of NAME as SVG (or Graphviz DOT)."""
    connect(ctx)
    with transaction(ctx) as session:
        definition = definitions.get_definition(session, name, version)
        by_state: dict[str, int] = {}
        if counts:
            found = {v.version: v for v in versions.versions(session, name)}
            by_state = dict(found[definition.version or 0].open_by_state)
    dot = to_dot(definition, lang=lang, counts=by_state or None, direction=direction)
    text = dot if output == "dot" else render_svg(dot)
    if output_file is None:
        click.echo(text, nl=False)
    else:
        output_file.write_text(text, "utf-8")
        click.echo(f"wrote {output_file}")
