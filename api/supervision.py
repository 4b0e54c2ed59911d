"""Supervision: what is stuck and why, and the operator actions that unstick it.

The reads are ``svcflow stuck`` over HTTP (engine/services/inspection.py). Every action needs a
``reason``, and records it with the token as actor in the case history, in the transaction of
the change (engine/services/operations.py). Supervisors and administrators may call all of
this, except forcing a case into a state, which is for administrators only.

A bulk action runs one operation on the open cases a filter matches, one chunk per request
(newest first, at most ``limit``, continuing below ``before_id``), in one transaction with a
savepoint per case: a case that refuses is reported and left as it was, the others are done,
and the result, like every POST here, can be retried safely with an ``Idempotency-Key``.
``dry_run`` lists the matches and changes nothing. The policy is the service's
(engine/services/bulk.py), shared with the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from api import db
from api.auth import SUPERVISOR, current_actor, roles
from api.cases import FireResultSchema, StrictSchema
from api.idempotency import IDEMPOTENCY_KEY, idempotent
from api.inputs import INT64_MAX
from api.problems import ProblemSchema
from engine.core.records import FireOutcome
from engine.services import bulk, cases, inspection, operations
from engine.services.inspection import Finding, Reason
from engine.services.search import CaseFilter

blp = Blueprint(
    "supervision",
    __name__,
    url_prefix="/api/v1/supervision",
    description="Stuck cases and operator actions",
)
REASONS = [r.value for r in Reason]
BULK_ACTIONS = [a.value for a in bulk.BulkAction]


# --- schemas -----------------------------------------------------------------------------------


def _reason_field() -> ma.fields.String:
    # "\s*\S" anchored at the start (marshmallow) and searched anywhere (JSON Schema) says the
    # same thing: some text that is not blank.
    return ma.fields.String(
        required=True,
        validate=[
            ma.validate.Length(1, 1000),
            ma.validate.Regexp(r"\s*\S", error="Say why: the reason cannot be blank."),
        ],
        metadata={"description": "Why: recorded in the case history with the token's name"},
    )


class ReasonList(ma.fields.List[str]):
    """``reason=a&reason=b`` or ``reason=a,b``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        parts = [
            part
            for item in items
            for part in (item.split(",") if isinstance(item, str) else [item])
        ]
        return super()._deserialize(parts, attr, data, **kwargs)


class InspectQuerySchema(StrictSchema):
    definition = ma.fields.String(validate=ma.validate.Length(1, 63))
    stall_hours = ma.fields.Integer(
        load_default=72,
        validate=ma.validate.Range(1, 24 * 365),
        metadata={"description": "No activity and no armed timer for this long is a stall"},
    )
    contract = ma.fields.String(
        validate=ma.validate.Length(1, 63),
        metadata={"description": "Only the cases created under this service contract"},
    )


class StuckQuerySchema(InspectQuerySchema):
    reason = ReasonList(
        ma.fields.String(validate=ma.validate.OneOf(REASONS)),
        metadata={
            "description": "Only these reasons (repeat the parameter, or separate with "
            "commas); all reasons when absent"
        },
    )
    limit = ma.fields.Integer(
        load_default=200,
        validate=ma.validate.Range(1, 1000),
        metadata={"description": "At most this many findings per reason"},
    )


class FindingSchema(ma.Schema):
    reason = ma.fields.String(metadata={"enum": REASONS})
    case_id = ma.fields.Integer()
    definition = ma.fields.String()
    contract = ma.fields.String(
        allow_none=True, metadata={"description": "The case's service contract, if any"}
    )
    state = ma.fields.String()
    since = ma.fields.DateTime(allow_none=True)
    detail = ma.fields.String()
    action = ma.fields.String(metadata={"description": "What to do about it"})
    ref = ma.fields.Raw(
        allow_none=True,
        metadata={
            "description": "What the finding is about: the SLA's name, the timer's id, the "
            "cancelled child's id, or the state's 95th-percentile dwell in seconds"
        },
    )
    until = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "When the finding ends by itself: a paused SLA's resume time"},
    )


StuckCountsSchema = ma.Schema.from_dict(
    {r: ma.fields.Integer(required=True) for r in REASONS}, name="StuckCountsSchema"
)


class ReasonSchema(StrictSchema):
    reason = _reason_field()


class PauseSchema(ReasonSchema):
    resume_at = ma.fields.AwareDateTime(
        metadata={
            "description": "When the pause ends by itself (ISO 8601 with its offset, later "
            "than now); without it, the pause lasts until resumed"
        }
    )


class OpsFireSchema(ReasonSchema):
    trigger = ma.fields.String(required=True, validate=ma.validate.Length(1, 63))
    payload = ma.fields.Dict(keys=ma.fields.String(), load_default=dict)


class ForceSchema(ReasonSchema):
    state = ma.fields.String(required=True, validate=ma.validate.Length(1, 63))


class ReassignSchema(ReasonSchema):
    assignee = ma.fields.String(required=True, validate=ma.validate.Length(1, 200))


class _FireParams(StrictSchema):
    trigger = ma.fields.String(required=True, validate=ma.validate.Length(1, 63))
    payload = ma.fields.Dict(keys=ma.fields.String(), load_default=dict)


class _ForceParams(StrictSchema):
    state = ma.fields.String(required=True, validate=ma.validate.Length(1, 63))


class _SlaParams(StrictSchema):
    sla = ma.fields.String(required=True, validate=ma.validate.Length(1, 63))
    resume_at = ma.fields.AwareDateTime(
        metadata={"description": "pause_sla only: when the pause ends by itself"}
    )


class _ReassignParams(StrictSchema):
    assignee = ma.fields.String(required=True, validate=ma.validate.Length(1, 200))


PARAMS: dict[str, type[ma.Schema]] = {
    "fire": _FireParams,
    "cancel": StrictSchema,
    "force": _ForceParams,
    "pause_sla": _SlaParams,
    "resume_sla": _SlaParams,
    "reassign": _ReassignParams,
}


class BulkFilterSchema(StrictSchema):
    definition = ma.fields.String(validate=ma.validate.Length(1, 63))
    state = ma.fields.String(validate=ma.validate.Length(1, 63))
    overdue = ma.fields.Boolean(metadata={"description": "Only cases with a breached SLA"})

    @ma.validates_schema
    def _not_everything(self, data: dict[str, Any], **_: Any) -> None:
        if not (data.get("definition") or data.get("state") or data.get("overdue")):
            raise ma.ValidationError(
                "Give definition, state or overdue=true: a bulk action never targets every "
                "open case."
            )


class BulkSchema(StrictSchema):
    action = ma.fields.String(required=True, validate=ma.validate.OneOf(BULK_ACTIONS))
    filter = ma.fields.Nested(
        BulkFilterSchema, required=True, metadata={"description": "Which open cases"}
    )
    params = ma.fields.Dict(
        keys=ma.fields.String(),
        load_default=dict,
        metadata={
            "description": "fire: {trigger, payload?}; force: {state}; pause_sla and resume_sla: "
            "{sla}; reassign: {assignee}; cancel: {}"
        },
    )
    reason = _reason_field()
    dry_run = ma.fields.Boolean(
        load_default=False, metadata={"description": "List the matches; change nothing"}
    )
    limit = ma.fields.Integer(
        load_default=500,
        validate=ma.validate.Range(1, bulk.MAX_CHUNK),
        metadata={"description": "Act on at most this many cases"},
    )
    before_id = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=INT64_MAX),  # a database integer, not a 500
        metadata={"description": "Continue below this case id (next_before_id of a result)"},
    )

    @ma.post_load
    def _load_params(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        try:
            data["params"] = PARAMS[data["action"]]().load(data["params"])
        except ma.ValidationError as exc:
            raise ma.ValidationError({"params": exc.messages}) from exc
        return data


class BulkItemSchema(ma.Schema):
    case_id = ma.fields.Integer()
    state = ma.fields.String(metadata={"description": "The state it was matched in"})
    outcome = ma.fields.String(metadata={"enum": ["matched", "done", "failed"]})
    new_state = ma.fields.String()
    event_seq = ma.fields.Integer()
    code = ma.fields.String(metadata={"description": "Why it failed (an svcflow error code)"})
    detail = ma.fields.String()


class BulkResultSchema(ma.Schema):
    action = ma.fields.String()
    dry_run = ma.fields.Boolean()
    matched = ma.fields.Integer()
    truncated = ma.fields.Boolean(metadata={"description": "More cases matched than limit"})
    next_before_id = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "Send as before_id to act on the next chunk; null when done"},
    )
    done = ma.fields.Integer()
    failed = ma.fields.Integer()
    results = ma.fields.List(ma.fields.Nested(BulkItemSchema))


# --- helpers -----------------------------------------------------------------------------------


def _settings(query: dict[str, Any]) -> inspection.Settings:
    return inspection.Settings(stall_after=timedelta(hours=query["stall_hours"]))


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "reason": f.reason.value,
        "case_id": f.case_id,
        "definition": f.definition,
        "state": f.state,
        "since": f.since,
        "detail": f.detail,
        "action": f.action,
        "ref": f.ref,
        "until": f.until,
        "contract": f.contract,
    }


def _result(session: Session, outcome: FireOutcome) -> tuple[dict[str, Any], int, dict[str, str]]:
    case: dict[str, Any] = dict(outcome.case.__dict__)
    case["allowed_triggers"] = cases.allowed_triggers(session, outcome.case, current_actor())
    return {"case": case, "event": outcome.event}, 200, {"ETag": f'"{outcome.case.version}"'}


# --- routes: inspection ------------------------------------------------------------------------


@blp.route("/stuck")
class Stuck(MethodView):
    @roles(blp, SUPERVISOR)
    @blp.arguments(StuckQuerySchema, location="query")
    @blp.response(200, FindingSchema(many=True))
    def get(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Cases that need a supervisor, each with its reason, since when, and what to do
        (at most ``limit`` per reason, oldest first within a reason)."""
        wanted = [Reason(r) for r in dict.fromkeys(query.get("reason") or [])] or None
        with db.transaction() as session:
            findings = inspection.inspect(
                session,
                now=g.now,
                settings=_settings(query),
                reasons=wanted,
                definition=query.get("definition"),
                limit=query["limit"],
                contract=query.get("contract"),
            )
        return [_finding(f) for f in findings]


@blp.route("/stuck/counts")
class StuckCounts(MethodView):
    @roles(blp, SUPERVISOR)
    @blp.arguments(InspectQuerySchema, location="query")
    @blp.response(200, StuckCountsSchema)
    def get(self, query: dict[str, Any]) -> dict[str, int]:
        """How many cases each reason finds (the same rules as /stuck)."""
        with db.transaction() as session:
            return inspection.counts(
                session,
                now=g.now,
                settings=_settings(query),
                definition=query.get("definition"),
                contract=query.get("contract"),
            )


# --- routes: actions on one case ---------------------------------------------------------------

_CASE_ERRORS = (
    (404, "No such case"),
    (409, "Not allowed in the case's state, or the case moved on"),
    (
        422,
        "The request, or the action on this case, is invalid (a blank reason, an unknown "
        "state or SLA, ...)",
    ),
)


def _case_action(arguments: type[ma.Schema], *allowed: str) -> Callable[[Any], Any]:
    """An operator action on one case: a POST by ``allowed`` (administrators always), safe to
    retry, taking ``arguments`` and answering with the case and its new event."""

    def declare(func: Any) -> Any:
        func = blp.doc(parameters=[IDEMPOTENCY_KEY])(func)
        for status, description in _CASE_ERRORS:
            func = blp.alt_response(status, schema=ProblemSchema, description=description)(func)
        func = blp.response(200, FireResultSchema)(func)
        func = blp.arguments(arguments)(func)
        return roles(blp, *allowed)(idempotent(func))

    return declare


def _act_on(case_id: int, action: bulk.BulkAction, params: dict[str, Any]) -> Any:
    """One operator action on one case, built as a bulk action builds it for each of its cases
    (engine/services/bulk.py): the same parameters, the same refusals."""
    act = bulk.operation(action, params, actor=current_actor(), reason=params["reason"], now=g.now)
    with db.transaction() as session:
        return _result(session, act(session, case_id))


@blp.route("/cases/<int:case_id>/fire")
class Fire(MethodView):
    @_case_action(OpsFireSchema, SUPERVISOR)
    def post(self, args: dict[str, Any], case_id: int) -> Any:
        """Fire any trigger allowed in the case's state, on a supervisor's authority."""
        return _act_on(case_id, bulk.BulkAction.FIRE, args)


@blp.route("/cases/<int:case_id>/force")
class Force(MethodView):
    @_case_action(ForceSchema)
    def post(self, args: dict[str, Any], case_id: int) -> Any:
        """Put an open case into any state of its definition (administrators only): recorded
        as ``forced``; timers and SLA clocks are re-derived for the new state."""
        return _act_on(case_id, bulk.BulkAction.FORCE, args)


@blp.route("/cases/<int:case_id>/cancel")
class Cancel(MethodView):
    @_case_action(ReasonSchema, SUPERVISOR)
    def post(self, args: dict[str, Any], case_id: int) -> Any:
        """Cancel an open case (its timers are cancelled)."""
        return _act_on(case_id, bulk.BulkAction.CANCEL, args)


@blp.route("/cases/<int:case_id>/sla/<name>/pause")
class PauseSla(MethodView):
    @_case_action(PauseSchema, SUPERVISOR)
    def post(self, args: dict[str, Any], case_id: int, name: str) -> Any:
        """Pause a running SLA clock (e.g. the customer asked to wait): ``sla_paused``; with
        ``resume_at``, a timer resumes it then (``sla_resumed`` by the timer)."""
        return _act_on(case_id, bulk.BulkAction.PAUSE_SLA, {**args, "sla": name})


@blp.route("/cases/<int:case_id>/sla/<name>/resume")
class ResumeSla(MethodView):
    @_case_action(ReasonSchema, SUPERVISOR)
    def post(self, args: dict[str, Any], case_id: int, name: str) -> Any:
        """Resume a clock paused by an operator: it is due later by the paused span."""
        return _act_on(case_id, bulk.BulkAction.RESUME_SLA, {**args, "sla": name})


@blp.route("/cases/<int:case_id>/reassign")
class Reassign(MethodView):
    @_case_action(ReassignSchema, SUPERVISOR)
    def post(self, args: dict[str, Any], case_id: int) -> Any:
        """Hand the case to someone else: sets the definition's ``assignee`` data field."""
        return _act_on(case_id, bulk.BulkAction.REASSIGN, args)


@blp.route("/timers/<int:timer_id>/retry")
class RetryTimer(MethodView):
    @roles(blp, SUPERVISOR)
    @idempotent
    @blp.arguments(ReasonSchema)
    @blp.response(200, FireResultSchema)
    @blp.alt_response(404, schema=ProblemSchema, description="No failed timer with this id")
    @blp.alt_response(422, schema=ProblemSchema, description="A blank reason")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any], timer_id: int) -> Any:
        """Re-arm a failed timer (fix its cause first); it is delivered at once and
        ``timer_retried`` is recorded on its case."""
        with db.transaction() as session:
            return _result(
                session,
                operations.retry_timer(
                    session, timer_id, actor=current_actor(), reason=args["reason"], now=g.now
                ),
            )


# --- routes: bulk ------------------------------------------------------------------------------


@blp.route("/bulk")
class Bulk(MethodView):
    @roles(blp, SUPERVISOR)
    @idempotent
    @blp.arguments(BulkSchema)
    @blp.response(200, BulkResultSchema)
    @blp.alt_response(403, schema=ProblemSchema, description="force needs an administrator")
    @blp.alt_response(
        422,
        schema=ProblemSchema,
        description="A blank reason, no filter, or params that do not fit the action",
    )
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """One action on every open case the filter matches (``force`` needs an
        administrator). Each case is done or reported as failed on its own; ``dry_run``
        lists the matches and changes nothing."""
        action = bulk.BulkAction(args["action"])
        act = bulk.operation(
            action, args["params"], actor=current_actor(), reason=args["reason"], now=g.now
        )
        query = CaseFilter(
            definition=args["filter"].get("definition"),
            state=args["filter"].get("state"),
            overdue=args["filter"].get("overdue") or None,
        )
        with db.transaction() as session:
            chunk = bulk.next_chunk(
                session, query, now=g.now, limit=args["limit"], before_id=args.get("before_id")
            )
            if args["dry_run"]:
                items = bulk.preview(chunk.cases)
            else:
                items = bulk.apply(session, chunk.cases, act)
        result = bulk.Result(action, args["dry_run"], items, chunk.next_before_id)
        return {
            "action": result.action.value,
            "dry_run": result.dry_run,
            "matched": result.matched,
            "truncated": result.truncated,
            "next_before_id": result.next_before_id,
            "results": [_item(i) for i in result.items],
            "done": result.done,
            "failed": result.failed,
        }


def _item(item: bulk.Item) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in item.__dict__.items() if v is not None}
    out["outcome"] = item.outcome.value
    return out
