"""``svcflow validate`` and ``svcflow definitions ...``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from engine.cli.app import connect, main, transaction
from engine.cli.output import table, ts
from engine.core.compact import full_form
from engine.core.definition import parse_source
from engine.core.traceability import build_matrix, render_markdown
from engine.core.validation import ValidationReport, definition_schema, validate_text
from engine.errors import Problem, Severity, SvcflowError
from engine.services import definitions, versions

T = TypeVar("T")

# The YAML files a command loads or checks (definitions, contracts).
SOURCE_FILES = click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)


@main.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="text: a line per problem, with its hint; json: for tools; github: workflow commands "
    "that annotate the lines of a pull request (a process owner's CI).",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
def validate_command(files: Sequence[str], output: str, as_json: bool) -> None:
    """Check definition files; print every problem with its line, column and element path,
    errors first.

    Calendars are checked against the built-in ones (a file is checked without a database);
    publishing checks them against the database's. Exits 1 if any file has errors (warnings
    alone pass)."""
    output = "json" if as_json else output
    failed = False
    found: dict[str, list[Problem]] = {}
    for name in files:
        try:
            _document, report = validate_text(Path(name).read_text("utf-8"), name)
        except SvcflowError as exc:  # not YAML, or beyond the reader's limits
            fields = exc.to_dict()
            line = fields.get("line")
            problem = Problem(
                Severity.ERROR,
                str(fields.get("path") or ""),
                exc.code,
                exc.message,
                exc.hint or "",
                line=line,
                column=fields.get("column"),
            )
            report = ValidationReport([problem])
        failed = failed or not report.ok
        found[name] = report.problems
    if output == "json":
        document = {name: [p.to_dict() for p in problems] for name, problems in found.items()}
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    elif output == "github":
        for name, problems in found.items():
            for problem in problems:
                click.echo(_github_annotation(name, problem))
    else:
        for name, problems in found.items():
            print_problems(name, problems)
    sys.exit(1 if failed else 0)


def print_problems(name: str, problems: Sequence[Problem]) -> None:
    """``FILE:LINE:COL: error [code] path: message (hint: ...)``, a line each, the way
    compilers and linters print, so an editor or a terminal can jump to the line."""
    if not problems:
        click.secho(f"{name}: ok", fg="green")
        return
    for p in problems:
        at = name + "".join(f":{n}" for n in (p.line, p.column) if n is not None)
        path = f" {p.path}" if p.path else ""
        hint = f" (hint: {p.hint})" if p.hint else ""
        color = "red" if p.severity is Severity.ERROR else "yellow"
        click.secho(f"{at}: {p.severity.value} [{p.code}]{path}: {p.message}{hint}", fg=color)
    errors = sum(p.severity is Severity.ERROR for p in problems)
    click.echo(f"{name}: {errors} error(s), {len(problems) - errors} warning(s)")


def _github_annotation(name: str, p: Problem) -> str:
    """A GitHub Actions workflow command (``::error file=...,line=...::message``): the problem
    shows on the line of the pull request's diff."""
    properties = [f"file={_escape(name, True)}", f"title={_escape(p.code, True)}"]
    properties[1:1] = [
        f"{key}={n}" for key, n in (("line", p.line), ("col", p.column)) if n is not None
    ]
    text = f"{p.path}: {p.message}" if p.path else p.message
    if p.hint:
        text += f" Hint: {p.hint}"
    return f"::{p.severity.value} {','.join(properties)}::{_escape(text, False)}"


def _escape(text: str, in_property: bool) -> str:
    # As GitHub's toolkit escapes them: % and line breaks always, ':' and ',' in properties.
    out = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return out.replace(":", "%3A").replace(",", "%2C") if in_property else out


@main.group("definitions")
def definitions_group() -> None:
    """Publish and inspect workflow definitions."""


def each_file(
    ctx: click.Context, files: Sequence[Path], step: Callable[[Session, str, str], T]
) -> Iterator[T]:
    """``step(session, text, origin)`` on each file in a transaction of its own, yielding what
    it returned once that committed: a bad file stops there, and what was done before it
    stays done."""
    for path in files:
        with transaction(ctx) as session:
            done = step(session, path.read_text("utf-8"), str(path))
        yield done


def publish_files(ctx: click.Context, files: Sequence[Path]) -> None:
    actor, now = ctx.obj["actor"].name, ctx.obj["clock"].now()

    def publish(session: Session, text: str, origin: str) -> tuple[definitions.PublishResult, int]:
        result = definitions.publish(session, text, actor=actor, now=now, origin=origin)
        return result, versions.current_version(session, result.name)

    for result, current in each_file(ctx, files, publish):
        verb = "published" if result.created else "unchanged"
        click.echo(f"{result.name}: {verb}, version {result.version}")
        if current != result.version:
            # Republishing an earlier document is not a roll back: say what is.
            click.secho(
                f"  new cases get version {current}; to give them version {result.version}: "
                f"svcflow definitions promote {result.name} {result.version} --reason ...",
                fg="yellow",
            )
        for warning in result.warnings:
            click.secho(f"  {warning}", fg="yellow")


@definitions_group.command("schema")
def definitions_schema() -> None:
    """Print the JSON Schema of a definition document, for an editor's YAML language server."""
    click.echo(json.dumps(definition_schema(), ensure_ascii=False, indent=2))


@definitions_group.command("publish")
@SOURCE_FILES
@click.pass_context
def definitions_publish(ctx: click.Context, files: Sequence[Path]) -> None:
    """Validate and publish FILES as new immutable versions (identical ones are skipped)."""
    connect(ctx)
    publish_files(ctx, files)


@definitions_group.command("list")
@click.pass_context
def definitions_list(ctx: click.Context) -> None:
    """List published definitions with their latest version."""
    connect(ctx)
    with transaction(ctx) as session:
        rows = definitions.list_definitions(session)
    table(
        ["name", "latest", "versions", "title", "published"],
        [
            [
                r.name,
                r.latest_version,
                r.versions,
                f"{r.title_en} / {r.title_zh}",
                ts(r.published_at, ctx.obj["zone"]),
            ]
            for r in rows
        ],
    )


@definitions_group.command("show")
@click.argument("name")
@click.option("--version", type=int, help="Default: the latest.")
@click.option("--source", is_flag=True, help="Print the published source text.")
@click.pass_context
def definitions_show(ctx: click.Context, name: str, version: int | None, source: bool) -> None:
    """Show a published definition: states, transitions, parameters, versions."""
    connect(ctx)
    with transaction(ctx) as session:
        definition = definitions.get_definition(session, name, version)
        assert definition.version is not None
        if source:
            click.echo(definitions.get_source(session, name, definition.version), nl=False)
            return
        versions = definitions.list_versions(session, name)
        params = definitions.effective_parameters(session, definition)
    click.echo(
        f"{definition.name} v{definition.version}: {definition.title.en} / {definition.title.zh}"
    )
    zone = ctx.obj["zone"]
    click.echo(
        "versions: "
        + ", ".join(f"{v} ({ts(at, zone)}, {by})" for v, at, by in versions)
        + f"  (cases per version: `svcflow definitions versions {name}`)"
    )
    click.echo(f"initial: {definition.initial}")
    click.echo("\nstates:")
    table(
        ["name", "final", "title", "timers"],
        [
            [
                s.name,
                "yes" if s.final else "",
                f"{s.title.en} / {s.title.zh}",
                ", ".join(t.name for t in s.timers),
            ]
            for s in definition.states
        ],
    )
    click.echo("\ntransitions:")
    table(
        ["#", "trigger", "from", "to", "guard", "roles"],
        [
            [
                t.index,
                t.trigger,
                ",".join(t.sources),
                t.dest_text,
                t.guard or "",
                ",".join(t.roles),
            ]
            for t in definition.transitions
        ],
    )
    if params:
        click.echo("\nparameters (effective):")
        table(
            ["name", "value", "default"],
            [
                [
                    k,
                    json.dumps(v, ensure_ascii=False),
                    json.dumps(definition.parameters[k].default, ensure_ascii=False),
                ]
                for k, v in params.items()
            ],
        )


@definitions_group.command("set-param")
@click.argument("name")
@click.argument("parameter")
@click.argument("value")
@click.pass_context
def definitions_set_param(ctx: click.Context, name: str, parameter: str, value: str) -> None:
    """Override PARAMETER of definition NAME for this deployment (VALUE is JSON, or a plain
    string such as 3h). Cases created afterwards use it."""
    connect(ctx)
    try:
        parsed: Any = json.loads(value)
    except (ValueError, RecursionError):  # not JSON, an integer too long to read, too deep
        parsed = value
    with transaction(ctx) as session:
        definitions.set_parameter(
            session,
            name,
            parameter,
            parsed,
            actor=ctx.obj["actor"].name,
            now=ctx.obj["clock"].now(),
        )
    click.echo(f"{name}.{parameter} = {json.dumps(parsed, ensure_ascii=False)} (new cases)")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


@main.command("requirements")
@click.option(
    "--workflows",
    "workflows_dir",
    default="workflows",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--tests",
    "tests_dir",
    default="tests",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--output",
    default="docs/requirements.md",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.option(
    "--check",
    is_flag=True,
    help="Exit 1 if the output is out of date or an ID is "
    "neither cited nor explained; write nothing.",
)
def requirements_command(workflows_dir: Path, tests_dir: Path, output: Path, check: bool) -> None:
    """Map every requirement ID to the definition elements and tests that cite it
    (docs/requirements.md)."""

    catalog_doc = parse_source((workflows_dir / "catalog" / "requirements.yaml").read_text("utf-8"))
    # In the full form, so a parameter written as `duration: 1h` shows its default and a
    # transition with branches lists each branch (engine/core/compact.py).
    documents = [
        full_form(parse_source(p.read_text("utf-8"), str(p)))
        for p in sorted(workflows_dir.glob("*.yaml"))
    ]
    # Tests, test scenarios and the workflows' scenarios; not the validator's corpus of broken
    # definitions, which cite IDs without testing them.
    test_files = (
        sorted(tests_dir.rglob("test_*.py"))
        + sorted((tests_dir / "scenarios").rglob("*.yaml"))
        + sorted((workflows_dir / "scenarios").glob("*.yaml"))
    )
    traces = build_matrix(
        catalog_doc["catalog"],
        catalog_doc.get("elsewhere") or {},
        documents,
        [(_relative(p, workflows_dir.resolve().parent), p.read_text("utf-8")) for p in test_files],
    )
    text = render_markdown(traces)
    uncovered = [t.id for t in traces if t.status == "NOT COVERED"]
    if check:
        stale = not output.exists() or output.read_text("utf-8") != text
        if stale:
            click.echo(f"{output} is out of date: run `svcflow requirements`.", err=True)
        if uncovered:
            click.echo("not covered: " + ", ".join(uncovered), err=True)
        sys.exit(1 if stale or uncovered else 0)
    output.write_text(text, "utf-8")
    click.echo(f"wrote {output}: {len(traces)} requirements, {len(uncovered)} not covered")
