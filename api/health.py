"""Health, in two questions.

- ``GET /healthz`` (liveness): does this web process answer? Always 200 while it does; it
  reads neither the database nor Redis, so a load balancer or a process manager does not
  restart healthy web processes because a dependency is away (the API keeps answering what
  it can, and says 503 for what needs the database).
- ``GET /readyz`` (readiness of the promises): is the database at the right schema, is Redis
  reachable, and is every timer on its way? 503 with the reasons when the oldest armed timer
  is overdue beyond the tolerance, no worker has reported recently, or the sweep has stopped.
  Monitoring and deploy gates ask this one (docs/operations.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.exc import SQLAlchemyError

from api import state
from engine.errors import SvcflowError
from engine.services import delivery_health
from engine.store import migrate

blp = Blueprint("health", __name__, description="Service health")


class LivenessSchema(ma.Schema):
    ok = ma.fields.Boolean(required=True)


class ReadinessSchema(ma.Schema):
    ok = ma.fields.Boolean(required=True)
    problems = ma.fields.List(
        ma.fields.String(), required=True, metadata={"description": "Why not ready, in words"}
    )
    checks = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Dict(),
        required=True,
        metadata={"description": "database, redis and delivery: ok, and details or an error"},
    )


@blp.route("/healthz")
class Liveness(MethodView):
    @blp.doc(operationId="liveness")
    @blp.response(200, LivenessSchema)
    def get(self) -> dict[str, Any]:
        """Liveness: 200 while this process answers (it checks no dependency)."""
        return {"ok": True}


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.doc(operationId="readiness")
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(
        503,
        schema=ReadinessSchema,
        description="The database or Redis is unreachable, or timers are overdue",
    )
    def get(self) -> tuple[dict[str, Any], int]:
        """Readiness: database schema, Redis, and timer delivery (oldest overdue armed timer,
        last sweep, worker heartbeats); 503 with the problems when any fails."""
        checks = {"database": _database(), "redis": _redis()}
        if checks["database"]["ok"]:
            checks["delivery"] = _delivery()
        problems = [p for check in checks.values() for p in check.get("problems", [])]
        problems += [f"{name}: {c['error']}" for name, c in checks.items() if "error" in c]
        ok = all(c["ok"] for c in checks.values())
        return {"ok": ok, "problems": problems, "checks": checks}, 200 if ok else 503


def _database() -> dict[str, Any]:
    rt = state.runtime()
    try:
        return {"ok": True, "revision": migrate.ensure_current(rt.engine)}
    except SvcflowError as exc:
        return {"ok": False, "error": exc.message}
    except SQLAlchemyError as exc:  # unreachable server: report, do not crash the probe
        return {"ok": False, "error": type(exc).__name__}


def _redis() -> dict[str, Any]:
    rt = state.runtime()
    try:
        rt.redis.ping()
        return {"ok": True, "queued": rt.queue.count}
    except Exception as exc:  # any failure to reach Redis is the answer, not an error
        return {"ok": False, "error": type(exc).__name__}


def _delivery() -> dict[str, Any]:
    rt = state.runtime()
    try:
        with rt.sessions() as session, session.begin():
            report = delivery_health.report(session, now=rt.clock.now())
    except SQLAlchemyError as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {
        "ok": not report.problems,
        "problems": report.problems,
        "armed": report.armed,
        "tolerance_seconds": report.tolerance.total_seconds(),
        "oldest_overdue": {
            "timer_id": report.oldest_overdue_id,
            "expected_at": _iso(report.oldest_overdue_since),
            "overdue_seconds": report.overdue_seconds,
        }
        if report.oldest_overdue_id is not None
        else None,
        "last_sweep": {
            "at": _iso(report.last_sweep_at),
            "by": report.last_sweep_by,
            "age_seconds": report.sweep_age_seconds,
            **report.last_sweep,
        }
        if report.last_sweep_at is not None
        else None,
        "workers": [
            {
                "name": w.name,
                "hostname": w.hostname,
                "pid": w.pid,
                "seen_at": _iso(w.seen_at),
                "alive": w.alive,
                "redis_ok": w.redis_ok,
            }
            for w in report.workers
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
