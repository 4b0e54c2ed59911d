"""The root command group and what every command shares: database access in one transaction
per command, and errors printed as message + hint with exit status 1.

Errors are reported once, by the root group (:class:`SvcflowGroup`), for every command and
subcommand: svcflow's own errors, and a database that cannot be reached or opened. Anything
else is a bug and keeps its traceback."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine.core.machine import ADMIN_ROLE, Actor
from engine.errors import DefinitionInvalid, SvcflowError
from engine.runtime.clock import SystemClock
from engine.store import database, migrate
from engine.store.database import session_factory


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class SvcflowGroup(click.Group):
    """The root group: whatever command runs under it, an error it can explain is printed as
    ``error:`` + ``hint:`` (and a definition's problems) on stderr, with exit status 1 and no
    traceback. The open transaction, if any, has rolled back by then."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SvcflowError as exc:
            report(exc)
        except DBAPIError as exc:
            if not database.is_connection_error(exc):
                raise
            report(database.unreachable((ctx.obj or {}).get("url"), exc))
        ctx.exit(1)


def report(error: SvcflowError) -> None:
    click.secho(f"error: {error.message}", fg="red", err=True)
    for reason in error.fields.get("reasons", ()):  # a definition's own words, in Chinese too
        click.echo(f"  {reason['zh']}", err=True)
    if error.hint:
        click.echo(f"  hint: {error.hint}", err=True)
    if isinstance(error, DefinitionInvalid):
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)


@click.group(cls=SvcflowGroup)
@click.option(
    "--database-url",
    envvar="SVCFLOW_DATABASE_URL",
    help="Default: sqlite:///var/svcflow.db (var/ is SVCFLOW_VAR_DIR if set)",
)
@click.option(
    "--actor", default=_default_actor, show_default="cli:$USER", help="Recorded in history."
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None, actor: str) -> None:
    """svcflow: after-sales service workflows on versioned state machines."""
    ctx.ensure_object(dict)
    ctx.obj["url"] = database_url
    ctx.obj["actor"] = Actor(actor, frozenset({ADMIN_ROLE}))
    ctx.obj["clock"] = SystemClock()
    ctx.call_on_close(lambda: ctx.obj.get("engine") and ctx.obj["engine"].dispose())


def connect(ctx: click.Context, *, check_schema: bool = True) -> None:
    """Open the database for this command (refusing one whose schema is not current)."""
    ctx.obj["engine"] = database.open_db_engine(ctx.obj["url"])
    if check_schema:
        migrate.ensure_current(ctx.obj["engine"])


@contextmanager
def transaction(ctx: click.Context) -> Iterator[Session]:
    with session_factory(ctx.obj["engine"])() as session, session.begin():
        yield session


def json_object(value: str | None, what: str) -> dict[str, Any]:
    """Parse a JSON object given inline or as @file."""
    if value is None:
        return {}
    text = Path(value[1:]).read_text("utf-8") if value.startswith("@") else value
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{what} is not valid JSON: {exc.msg} at column {exc.colno}."
        ) from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter(f"{what} must be a JSON object, e.g. '{{\"field\": 1}}'.")
    return parsed
