"""``svcflow calendars ...``: list, show and change business calendars."""

from __future__ import annotations

import json
from datetime import date, timedelta

import click

from engine.cli.app import connect, json_object, main, transaction
from engine.cli.output import table
from engine.services.calendars import get_calendar_info, list_calendars, save_calendar


@main.group()
def calendars() -> None:
    """Business calendars (working windows, holidays, make-up working days)."""


@calendars.command("list")
@click.pass_context
def calendars_list(ctx: click.Context) -> None:
    """List calendars."""
    connect(ctx)
    with transaction(ctx) as session:
        infos = list_calendars(session)
    table(
        ["name", "timezone", "base", "revision", "covered years"],
        [
            [
                i.name,
                i.calendar.timezone,
                i.base or "custom",
                i.revision,
                _years(i.calendar.covered_years),
            ]
            for i in infos
        ],
    )


def _years(years: frozenset[int] | None) -> str:
    if years is None:
        return "all"
    ordered = sorted(years)
    return f"{ordered[0]}-{ordered[-1]}" if ordered else "none"


@calendars.command("show")
@click.argument("name")
@click.option("--month", help="YYYY-MM: print that month's working days.")
@click.pass_context
def calendars_show(ctx: click.Context, name: str, month: str | None) -> None:
    """Show calendar NAME (its stored overrides, and optionally one month day by day)."""
    connect(ctx)
    with transaction(ctx) as session:
        info = get_calendar_info(session, name)
    click.echo(
        f"{info.name}: {info.calendar.timezone}, base {info.base or 'custom'}, "
        f"revision {info.revision}"
    )
    if info.overrides:
        click.echo("overrides: " + json.dumps(info.overrides, ensure_ascii=False))
    if month:
        first = date.fromisoformat(f"{month}-01")
        day, rows = first, []
        while day.month == first.month:
            windows = info.calendar.working_intervals(day)
            rows.append(
                [day.isoformat(), day.strftime("%a"), "work" if windows else "off", len(windows)]
            )
            day += timedelta(days=1)
        table(["date", "day", "", "windows"], rows)


@calendars.command("set")
@click.argument("name")
@click.option(
    "--overrides",
    help='JSON: {"holidays_add": ["2027-01-01"], "workdays_add": [...], '
    '"covered_years_add": [2027]} on a built-in base.',
)
@click.option("--base", default=None, help="Built-in base for overrides (default cn-workdays).")
@click.option("--definition", help="JSON (or @file) of a whole custom calendar.")
@click.pass_context
def calendars_set(
    ctx: click.Context, name: str, overrides: str | None, base: str | None, definition: str | None
) -> None:
    """Store overrides or a custom calendar; armed timers on it are re-planned."""
    connect(ctx)
    with transaction(ctx) as session:
        info = save_calendar(
            session,
            name,
            actor=ctx.obj["actor"].name,
            now=ctx.obj["clock"].now(),
            overrides=json_object(overrides, "--overrides") if overrides else None,
            definition=json_object(definition, "--definition") if definition else None,
            base=base,
        )
    click.echo(f"calendar {info.name} saved (revision {info.revision})")
