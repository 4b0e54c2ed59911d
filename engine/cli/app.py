"""The root command group and what every command shares: database access in one transaction
per command, and domain errors printed as message + hint with exit status 1."""

from __future__ import annotations

import functools
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.orm import Session

from engine.core.machine import ADMIN_ROLE, Actor
from engine.errors import SvcflowError
from engine.runtime.clock import SystemClock
from engine.store import migrate
from engine.store.database import create_db_engine, session_factory

F = TypeVar("F", bound=Callable[..., Any])


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@click.group()
@click.option(
    "--database-url", envvar="SVCFLOW_DATABASE_URL", help="Default: sqlite:///var/svcflow.db"
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
    ctx.obj["engine"] = create_db_engine(ctx.obj["url"])
    if check_schema:
        migrate.ensure_current(ctx.obj["engine"])


@contextmanager
def transaction(ctx: click.Context) -> Iterator[Session]:
    with session_factory(ctx.obj["engine"])() as session, session.begin():
        yield session


def handle_errors(func: F) -> F:
    """Print domain errors as ``error:`` + ``hint:`` and exit 1, without a traceback."""

    @functools.wraps(func)
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

    return wrapper  # type: ignore[return-value]


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
