"""The ``svcflow`` command line: validate and publish definitions, drive cases, manage the
database. Each command opens its own transaction; domain errors print their message and hint
and exit with status 1 (2 for usage errors, as click does)."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from engine.clock import SystemClock
from engine.db import migrate
from engine.db.session import create_db_engine, database_url, session_factory
from engine.definition import parse_source
from engine.errors import SvcflowError
from engine.machine import ADMIN_ROLE, Actor
from engine.records import EventRecord, FireOutcome
from engine.services import cases as case_service
from engine.services import definitions as definition_service
from engine.validation import validate

F = TypeVar("F", bound=Callable[..., Any])
WORKFLOWS_DIR = Path("workflows")


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _transaction(ctx: click.Context) -> Iterator[Session]:
    engine = ctx.obj["engine"]
    with session_factory(engine)() as session, session.begin():
        yield session


def _handle_errors(func: F) -> F:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SvcflowError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"  hint: {exc.hint}", err=True)
            for problem in getattr(exc, "problems", []):
                click.echo(f"  {problem}", err=True)
            sys.exit(1)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper  # type: ignore[return-value]


def _json_arg(value: str | None, what: str) -> dict[str, Any]:
    """Parse a JSON object given inline or as @file."""
    if value is None:
        return {}
    text = Path(value[1:]).read_text("utf-8") if value.startswith("@") else value
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{what} is not valid JSON: {exc.msg} at column {exc.colno}.")
    if not isinstance(parsed, dict):
        raise click.BadParameter(f"{what} must be a JSON object, e.g. '{{\"field\": 1}}'.")
    return parsed


@click.group()
@click.option("--database-url", envvar="SVCFLOW_DATABASE_URL", help="Default: sqlite:///var/svcflow.db")
@click.option("--actor", default=_default_actor, show_default="cli:$USER", help="Recorded in history.")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, actor: str) -> None:
    """svcflow: after-sales service workflows on versioned state machines."""
    ctx.ensure_object(dict)
    ctx.obj["url"] = database_url
    ctx.obj["actor"] = Actor(actor, frozenset({ADMIN_ROLE}))
    ctx.obj["clock"] = SystemClock()
    ctx.call_on_close(lambda: ctx.obj.get("engine") and ctx.obj["engine"].dispose())


def _engine(ctx: click.Context, *, check_schema: bool = True) -> None:
    ctx.obj["engine"] = create_db_engine(ctx.obj["url"])
    if check_schema:
        migrate.ensure_current(ctx.obj["engine"])


# --- validate ----------------------------------------------------------------------------------


@main.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
def validate_command(files: Sequence[str], as_json: bool) -> None:
    """Check definition files; print every problem with its element path.

    Exits 1 if any file has errors (warnings alone pass)."""
    failed = False
    report_json: dict[str, Any] = {}
    for name in files:
        try:
            report = validate(parse_source(Path(name).read_text("utf-8"), name))
            problems = report.problems
        except SvcflowError as exc:
            problems = []
            failed = True
            report_json[name] = [exc.to_dict()]
            if not as_json:
                click.secho(f"{name}: error: {exc.message}", fg="red")
            continue
        failed = failed or not report.ok
        report_json[name] = [p.to_dict() for p in problems]
        if as_json:
            continue
        if not problems:
            click.secho(f"{name}: ok", fg="green")
            continue
        click.echo(f"{name}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
        for problem in problems:
            color = "red" if problem.severity.value == "error" else "yellow"
            click.secho(f"  {problem.severity.value}: {problem.path or '<root>'}: {problem.message}", fg=color)
            if problem.hint:
                click.echo(f"      hint: {problem.hint}")
    if as_json:
        click.echo(json.dumps(report_json, ensure_ascii=False, indent=2))
    sys.exit(1 if failed else 0)


# --- db ----------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    _engine(ctx, check_schema=False)
    migrate.upgrade(ctx.obj["engine"], revision)
    click.echo(f"database {database_url(ctx.obj['url'])} at revision {migrate.current_revision(ctx.obj['engine'])}")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Print the schema revision of the database and the newest one available."""
    _engine(ctx, check_schema=False)
    click.echo(f"current: {migrate.current_revision(ctx.obj['engine'])}")
    click.echo(f"head:    {migrate.head_revision(ctx.obj['engine'])}")


# --- definitions -------------------------------------------------------------------------------


@main.group()
def definitions() -> None:
    """Publish and inspect workflow definitions."""


def publish_files(ctx: click.Context, files: Sequence[Path]) -> None:
    now = ctx.obj["clock"].now()
    for path in files:
        with _transaction(ctx) as session:
            result = definition_service.publish(
                session, path.read_text("utf-8"), actor=ctx.obj["actor"].name, now=now, origin=str(path)
            )
        verb = "published" if result.created else "unchanged"
        click.echo(f"{result.name}: {verb}, version {result.version}")
        for warning in result.warnings:
            click.secho(f"  {warning}", fg="yellow")


@definitions.command("publish")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@_handle_errors
def definitions_publish(ctx: click.Context, files: Sequence[Path]) -> None:
    """Validate and publish FILES as new immutable versions (identical ones are skipped)."""
    _engine(ctx)
    publish_files(ctx, files)


@definitions.command("list")
@click.pass_context
@_handle_errors
def definitions_list(ctx: click.Context) -> None:
    """List published definitions with their latest version."""
    _engine(ctx)
    with _transaction(ctx) as session:
        rows = definition_service.list_definitions(session)
    _table(
        ["name", "latest", "versions", "title", "published"],
        [[r.name, r.latest_version, r.versions, f"{r.title_en} / {r.title_zh}", _ts(r.published_at)] for r in rows],
    )


@definitions.command("show")
@click.argument("name")
@click.option("--version", type=int, help="Default: the latest.")
@click.option("--source", is_flag=True, help="Print the published source text.")
@click.pass_context
@_handle_errors
def definitions_show(ctx: click.Context, name: str, version: int | None, source: bool) -> None:
    """Show a published definition: states, transitions, parameters, versions."""
    _engine(ctx)
    with _transaction(ctx) as session:
        definition = definition_service.get_definition(session, name, version)
        assert definition.version is not None
        if source:
            click.echo(definition_service.get_source(session, name, definition.version), nl=False)
            return
        versions = definition_service.list_versions(session, name)
        params = definition_service.effective_parameters(session, definition)
    click.echo(f"{definition.name} v{definition.version}: {definition.title.en} / {definition.title.zh}")
    click.echo(f"versions: {', '.join(str(v) for v, _, _ in versions)}")
    click.echo(f"initial: {definition.initial}")
    click.echo("\nstates:")
    _table(["name", "final", "title", "timers"], [
        [s.name, "yes" if s.final else "", f"{s.title.en} / {s.title.zh}", ", ".join(t.name for t in s.timers)]
        for s in definition.states
    ])
    click.echo("\ntransitions:")
    _table(["#", "trigger", "from", "to", "guard", "roles"], [
        [t.index, t.trigger, ",".join(t.sources), t.dest, t.guard or "", ",".join(t.roles)]
        for t in definition.transitions
    ])
    if params:
        click.echo("\nparameters (effective):")
        _table(["name", "value", "default"], [
            [k, json.dumps(v, ensure_ascii=False), json.dumps(definition.parameters[k].default, ensure_ascii=False)]
            for k, v in params.items()
        ])


@definitions.command("set-param")
@click.argument("name")
@click.argument("parameter")
@click.argument("value")
@click.pass_context
@_handle_errors
def definitions_set_param(ctx: click.Context, name: str, parameter: str, value: str) -> None:
    """Override PARAMETER of definition NAME for this deployment (VALUE is JSON, or a plain
    string such as 3h)."""
    _engine(ctx)
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    with _transaction(ctx) as session:
        definition_service.set_parameter(
            session, name, parameter, parsed, actor=ctx.obj["actor"].name, now=ctx.obj["clock"].now()
        )
    click.echo(f"{name}.{parameter} = {json.dumps(parsed, ensure_ascii=False)} (cases created from now on)")


# --- cases -------------------------------------------------------------------------------------


@main.group("cases")
def cases_group() -> None:
    """Create cases, fire triggers, read history."""


def _print_outcome(outcome: FireOutcome) -> None:
    case = outcome.case
    note = " (replayed: idempotency key matched an earlier request)" if outcome.replayed else ""
    click.echo(f"case {case.id} [{case.definition_name} v{case.definition_version}] state={case.state} "
               f"status={case.status} version={case.version}{note}")
    if outcome.allowed_triggers:
        click.echo(f"allowed triggers: {', '.join(outcome.allowed_triggers)}")


@cases_group.command("create")
@click.argument("definition")
@click.option("--data", help="Case data as a JSON object, or @file.json.")
@click.option("--version", type=int, help="Definition version (default: latest).")
@click.option("--business-key", help="Your own reference, unique per definition (e.g. ticket no.).")
@click.option("--idempotency-key", help="Retry-safe key: a retry returns the first result.")
@click.pass_context
@_handle_errors
def cases_create(ctx: click.Context, definition: str, data: str | None, version: int | None,
                 business_key: str | None, idempotency_key: str | None) -> None:
    """Create a case of DEFINITION."""
    _engine(ctx)
    with _transaction(ctx) as session:
        outcome = case_service.create_case(
            session, definition, _json_arg(data, "--data"), actor=ctx.obj["actor"],
            now=ctx.obj["clock"].now(), version=version, business_key=business_key,
            idempotency_key=idempotency_key,
        )
    _print_outcome(outcome)


@cases_group.command("fire")
@click.argument("case_id", type=int)
@click.argument("trigger")
@click.option("--payload", help="Trigger payload as a JSON object, or @file.json.")
@click.option("--expect-version", type=int, help="Fail unless the case is at this version.")
@click.option("--idempotency-key", help="Retry-safe key: a retry returns the first result.")
@click.pass_context
@_handle_errors
def cases_fire(ctx: click.Context, case_id: int, trigger: str, payload: str | None,
               expect_version: int | None, idempotency_key: str | None) -> None:
    """Fire TRIGGER on case CASE_ID."""
    _engine(ctx)
    with _transaction(ctx) as session:
        outcome = case_service.fire(
            session, case_id, trigger, _json_arg(payload, "--payload"), actor=ctx.obj["actor"],
            now=ctx.obj["clock"].now(), expected_version=expect_version,
            idempotency_key=idempotency_key,
        )
    _print_outcome(outcome)


@cases_group.command("show")
@click.argument("case_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print case and history as JSON.")
@click.pass_context
@_handle_errors
def cases_show(ctx: click.Context, case_id: int, as_json: bool) -> None:
    """Show a case and its full history."""
    _engine(ctx)
    with _transaction(ctx) as session:
        case = case_service.get_case(session, case_id)
        events = case_service.history(session, case_id)
        allowed = case_service.allowed_triggers(session, case)
    if as_json:
        click.echo(json.dumps({"case": _jsonable(case.__dict__), "allowed_triggers": allowed,
                               "history": [_jsonable(e.__dict__) for e in events]},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"case {case.id} [{case.definition_name} v{case.definition_version}]"
               + (f" key={case.business_key}" if case.business_key else ""))
    click.echo(f"state: {case.state}   status: {case.status}   version: {case.version}")
    click.echo(f"allowed triggers: {', '.join(allowed) or '-'}")
    click.echo("data: " + json.dumps(case.data, ensure_ascii=False, sort_keys=True))
    click.echo("\nhistory:")
    _table(["seq", "at (UTC)", "event", "trigger", "from", "to", "actor", "changes"],
           [_history_row(e) for e in events])


def _history_row(e: EventRecord) -> list[Any]:
    return [e.seq, _ts(e.at), e.event_type, e.trigger or "", e.from_state or "", e.to_state,
            e.actor, json.dumps(e.changes, ensure_ascii=False, sort_keys=True)]


# --- run ---------------------------------------------------------------------------------------


@main.command("init")
@click.option("--workflows", "workflows_dir", default=str(WORKFLOWS_DIR), show_default=True,
              type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
@_handle_errors
def init_command(ctx: click.Context, workflows_dir: Path) -> None:
    """Migrate the database and publish the bundled workflows (idempotent)."""
    _engine(ctx, check_schema=False)
    migrate.upgrade(ctx.obj["engine"])
    click.echo(f"database: {database_url(ctx.obj['url'])} (revision {migrate.current_revision(ctx.obj['engine'])})")
    publish_files(ctx, sorted(workflows_dir.glob("*.yaml")))


# --- output helpers ----------------------------------------------------------------------------


def _ts(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        click.echo("  ".join(c + " " * (widths[i] - _width(c)) for i, c in enumerate(row)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def _width(text: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


if __name__ == "__main__":
    main()
