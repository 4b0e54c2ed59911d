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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine.core.limits import VALUE_MAX_DEPTH, nesting_depth
from engine.core.local_time import DEFAULT_TIMEZONE, display_zone
from engine.core.machine import ADMIN_ROLE, Actor
from engine.errors import ContractInvalid, DefinitionInvalid, SvcflowError
from engine.runtime.clock import SystemClock
from engine.store import database, migrate
from engine.store.database import session_factory


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def summary(command: click.Command) -> str:
    """The command's first sentence, whole: what ``svcflow -h`` lists beside its name.

    click cuts the summary to the terminal's width and ends it with "...", often before the
    words that say what the command is for; the command list is how people find their way
    round svcflow, so it is shown whole and wrapped instead (the sentence rule is click's)."""
    if command.short_help:
        return " ".join(command.short_help.split())
    words = (command.help or "").partition("\n\n")[0].split()
    for i, word in enumerate(words):
        if word.endswith(".") and (i == len(words) - 1 or not words[i + 1][0].islower()):
            return " ".join(words[: i + 1])
    return " ".join(words)


class Command(click.Command):
    def get_short_help_str(self, limit: int = 45) -> str:
        return summary(self)


class Group(click.Group):
    """Every ``svcflow`` group and command lists whole summaries (:func:`summary`)."""

    command_class = Command
    group_class: type[click.Group] | type[type] | None = type  # subgroups are Groups too

    def get_short_help_str(self, limit: int = 45) -> str:
        return summary(self)


class SvcflowGroup(Group):
    """The root group: whatever command runs under it, an error it can explain is printed as
    ``error:`` + ``hint:`` (and a definition's problems) on stderr, with exit status 1 and no
    traceback. The open transaction, if any, has rolled back by then."""

    group_class = Group  # the subgroups leave errors to the root

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
    if isinstance(error, DefinitionInvalid | ContractInvalid):
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)


# Where each task lives, for a reader looking for something the CLI does not do. The
# addresses are those `svcflow run` serves (README); a deployment has its own host.
WHERE_TASKS_LIVE = """\b
Where each task lives (addresses as `svcflow run` serves them):
  svcflow    operators and process owners: definitions (check, simulate,
             publish), database, tokens, calendars, timers, bulk actions
  HTTP API   integrators (hotline, ERP): create cases, fire triggers,
             search; definition drafts, diffs and diagrams
             http://127.0.0.1:8000/api/v1 (docs: /api/docs)
  dashboard  supervisors: stuck cases, case timelines, device files,
             KPI charts, operator actions
             http://127.0.0.1:8000/dashboard
"""


@click.group(
    cls=SvcflowGroup,
    epilog=WHERE_TASKS_LIVE,
    # -h as well as --help, on every command (subcommands inherit the setting).
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--database-url",
    envvar="SVCFLOW_DATABASE_URL",
    help="Default: sqlite:///var/svcflow.db (var/ is SVCFLOW_VAR_DIR if set)",
)
@click.option(
    "--actor", default=_default_actor, show_default="cli:$USER", help="Recorded in history."
)
@click.option(
    "--timezone",
    "zone",
    envvar="SVCFLOW_TIMEZONE",
    default=DEFAULT_TIMEZONE,
    show_default=True,
    callback=lambda _ctx, _param, value: _zone(value),
    help="Times are shown in this zone, with seconds and UTC offset (SVCFLOW_TIMEZONE); "
    "--json output stays UTC.",
)
@click.pass_context
def main(ctx: click.Context, database_url: str | None, actor: str, zone: ZoneInfo) -> None:
    """svcflow: after-sales service workflows on versioned state machines."""
    ctx.ensure_object(dict)
    ctx.obj["url"] = database_url
    ctx.obj["zone"] = zone
    ctx.obj["actor"] = Actor(actor, frozenset({ADMIN_ROLE}))
    ctx.obj["clock"] = SystemClock()
    ctx.call_on_close(lambda: ctx.obj.get("engine") and ctx.obj["engine"].dispose())


def _zone(name: str | None) -> ZoneInfo:
    try:
        return display_zone(name)
    except SvcflowError as exc:
        raise click.BadParameter(f"{exc.message} {exc.hint}") from exc


def connect(ctx: click.Context, *, check_schema: bool = True) -> None:
    """Open the database for this command (refusing one whose schema is not current)."""
    ctx.obj["engine"] = database.open_db_engine(ctx.obj["url"])
    if check_schema:
        migrate.ensure_current(ctx.obj["engine"])


@contextmanager
def transaction(ctx: click.Context) -> Iterator[Session]:
    with session_factory(ctx.obj["engine"])() as session, session.begin():
        yield session


def instant_option(value: str, what: str) -> datetime:
    """An instant a person typed: ISO 8601 with its offset (a time without one is refused, not
    read in a guessed zone; docs/api.md, Times)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{what} {value!r} is not an ISO 8601 time, e.g. 2026-03-02T09:00:00+08:00."
        ) from exc
    if parsed.tzinfo is None:
        raise click.BadParameter(
            f"{what} {value!r} has no UTC offset; write it as {value}+08:00 for Beijing time."
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00:00-14:00 has no UTC
        raise click.BadParameter(f"{what} {value!r} is outside the range of times.") from exc


def json_object(value: str | None, what: str) -> dict[str, Any]:
    """Parse a JSON object given inline or as @file."""
    if value is None:
        return {}
    text = Path(value[1:]).read_text("utf-8") if value.startswith("@") else value
    too_deep = click.BadParameter(
        f"{what} nests objects and arrays more than {VALUE_MAX_DEPTH} deep "
        "(docs/definitions.md, Limits)."
    )
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{what} is not valid JSON: {exc.msg} at column {exc.colno}."
        ) from exc
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise click.BadParameter(f"{what} is not usable JSON: {exc}.") from None
    if nesting_depth(parsed, VALUE_MAX_DEPTH) is not None:
        raise too_deep
    if not isinstance(parsed, dict):
        raise click.BadParameter(f"{what} must be a JSON object, e.g. '{{\"field\": 1}}'.")
    return parsed
