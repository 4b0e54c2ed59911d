"""Business calendars: list, get, create, update (holidays, make-up workdays, windows)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import marshmallow as ma
from flask import abort, g
from flask.views import MethodView
from flask_smorest import Blueprint

from api import db
from api.auth import INTEGRATOR, PROCESS_OWNER, SUPERVISOR, current_actor, roles
from api.idempotency import IDEMPOTENCY_KEY, idempotent
from api.problems import ProblemSchema, problem
from engine.services.calendars import (
    BUILTIN_BASES,
    CalendarInfo,
    get_calendar_info,
    list_calendars,
    save_calendar,
)

blp = Blueprint(
    "calendars", __name__, url_prefix="/api/v1/calendars", description="Business calendars"
)
DATES = ma.fields.List(ma.fields.Date())


class OverridesSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    holidays_add = DATES
    holidays_remove = DATES
    workdays_add = DATES
    workdays_remove = DATES
    covered_years_add = ma.fields.List(ma.fields.Integer(validate=ma.validate.Range(2000, 2199)))


class CalendarWriteSchema(ma.Schema):
    """Either overrides on a built-in base (cn-workdays), or a whole custom calendar."""

    class Meta:
        unknown = ma.RAISE

    base = ma.fields.String(validate=ma.validate.OneOf(["cn-workdays"]))
    overrides = ma.fields.Nested(OverridesSchema)
    definition = ma.fields.Dict(
        metadata={
            "description": "A custom calendar: timezone, weekly windows, holidays, makeup_workdays"
        }
    )

    @ma.validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if ("overrides" in data) == ("definition" in data):
            raise ma.ValidationError("Give exactly one of overrides or definition.")


NAME = r"^[a-z][a-z0-9-]{0,62}$"


class CalendarCreateSchema(CalendarWriteSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Regexp(NAME))


class CalendarSchema(ma.Schema):
    name = ma.fields.String()
    builtin = ma.fields.Boolean()
    base = ma.fields.String(allow_none=True)
    revision = ma.fields.Integer()
    timezone = ma.fields.String()
    overrides = ma.fields.Dict()
    calendar = ma.fields.Dict()
    days = ma.fields.List(ma.fields.Dict())


class MonthQuerySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    month = ma.fields.String(
        validate=ma.validate.Regexp(r"^(20\d\d|21\d\d)-(0[1-9]|1[0-2])$"),
        metadata={"description": "YYYY-MM: list that month day by day"},
    )


def _view(info: CalendarInfo, month: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": info.name,
        "builtin": info.builtin,
        "base": info.base,
        "revision": info.revision,
        "timezone": info.calendar.timezone,
        "overrides": dict(info.overrides),
        "calendar": info.calendar.to_dict(),
    }
    if month:
        day = date.fromisoformat(f"{month}-01")
        days = []
        while day.month == int(month[5:]):
            windows = info.calendar.working_intervals(day)
            days.append(
                {
                    "date": day.isoformat(),
                    "working": bool(windows),
                    "windows": [[a.isoformat(), b.isoformat()] for a, b in windows],
                }
            )
            day += timedelta(days=1)
        out["days"] = days
    return out


def _save(name: str, args: dict[str, Any]) -> dict[str, Any]:
    overrides = args.get("overrides")
    if overrides is not None:
        overrides = {
            k: [v.isoformat() if isinstance(v, date) else v for v in vals]
            for k, vals in overrides.items()
        }
    with db.transaction() as session:
        info = save_calendar(
            session,
            name,
            actor=current_actor().name,
            now=g.now,
            overrides=overrides,
            definition=args.get("definition"),
            base=args.get("base"),
        )
        return _view(info)


@blp.route("")
class Calendars(MethodView):
    @roles(blp, PROCESS_OWNER, INTEGRATOR, SUPERVISOR)
    @blp.response(200, CalendarSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """All calendars: built-in ones (with stored overrides) and custom ones."""
        with db.transaction() as session:
            return [_view(i) for i in list_calendars(session)]

    @roles(blp, PROCESS_OWNER)
    @idempotent
    @blp.arguments(CalendarCreateSchema)
    @blp.response(201, CalendarSchema)
    @blp.alt_response(422, schema=ProblemSchema)
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Create a calendar (overrides on cn-workdays, or a custom one)."""
        name = args.pop("name")
        return _save(name, args), 201


@blp.route("/<name>")
class Calendar(MethodView):
    @roles(blp, PROCESS_OWNER, INTEGRATOR, SUPERVISOR)
    @blp.arguments(MonthQuerySchema, location="query")
    @blp.response(200, CalendarSchema)
    @blp.alt_response(422, schema=ProblemSchema, description="No such calendar")
    def get(self, query: dict[str, Any], name: str) -> dict[str, Any]:
        """One calendar; with month=YYYY-MM, its days and working windows."""
        with db.transaction() as session:
            return _view(get_calendar_info(session, name), query.get("month"))

    @roles(blp, PROCESS_OWNER)
    @blp.arguments(CalendarWriteSchema)
    @blp.response(200, CalendarSchema)
    @blp.alt_response(422, schema=ProblemSchema)
    def put(self, args: dict[str, Any], name: str) -> dict[str, Any]:
        """Replace a calendar's overrides (or custom definition); armed timers on it are
        re-planned, and provisional deadlines in newly covered years become final."""
        # A PUT may create a calendar, so it takes the names a POST takes (and the built-ins).
        if not re.match(NAME, name) and name not in BUILTIN_BASES:
            abort(
                problem(
                    422,
                    "Unprocessable Entity",
                    f"{name[:80]!r} is not a calendar name.",
                    "calendar-name-invalid",
                    field="name",
                    hint="Lowercase letters, digits and -, starting with a letter.",
                )
            )
        return _save(name, args)
