"""Timers across cases: the failed ones a supervisor must see."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from api import db
from api.auth import SUPERVISOR, roles
from api.cases import TimerSchema
from engine.services import timer_firing

blp = Blueprint("timers", __name__, url_prefix="/api/v1/timers", description="Timers")


class TimerQuerySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    status = ma.fields.String(load_default="failed", validate=ma.validate.OneOf(["failed"]))
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(1, 500))


@blp.route("")
class Timers(MethodView):
    @roles(blp, SUPERVISOR)
    @blp.arguments(TimerQuerySchema, location="query")
    @blp.response(200, TimerSchema(many=True))
    def get(self, query: dict[str, Any]) -> Any:
        """Failed timers, most recent first, with their errors."""
        with db.transaction() as session:
            return timer_firing.failed_timers(session, limit=query["limit"])
