"""Liveness and readiness: is the database at the right schema, and is Redis reachable."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from api import state
from engine.errors import SvcflowError
from engine.store import migrate

blp = Blueprint("health", __name__, url_prefix="/healthz", description="Service health")


class HealthSchema(ma.Schema):
    ok = ma.fields.Boolean(required=True)
    checks = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Dict(),
        required=True,
        metadata={"description": "database and redis: ok, and an error or details"},
    )


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database or Redis is not ready")
    def get(self) -> tuple[dict[str, Any], int]:
        """Report the database schema revision and Redis reachability (503 if either fails)."""
        rt = state.runtime()
        checks: dict[str, Any] = {}
        try:
            migrate.ensure_current(rt.engine)
            checks["database"] = {"ok": True, "revision": migrate.current_revision(rt.engine)}
        except SvcflowError as exc:
            checks["database"] = {"ok": False, "error": exc.message}
        except Exception as exc:  # unreachable server: report, do not crash the probe
            checks["database"] = {"ok": False, "error": type(exc).__name__}
        try:
            rt.redis.ping()
            checks["redis"] = {"ok": True, "queued": rt.queue.count}
        except Exception as exc:
            checks["redis"] = {"ok": False, "error": type(exc).__name__}
        ok = all(c["ok"] for c in checks.values())
        return {"ok": ok, "checks": checks}, 200 if ok else 503
