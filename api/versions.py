"""Versions a process owner steers: migrate running cases, promote, retire, restore, delete,
and the audit of those decisions (docs/versions.md). The same services as the CLI."""

from __future__ import annotations

from collections import Counter
from typing import Any

import marshmallow as ma
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from api import db
from api.auth import INTEGRATOR, PROCESS_OWNER, SUPERVISOR, current_actor, roles
from api.idempotency import IDEMPOTENCY_KEY, idempotent
from api.inputs import INT32_MAX
from api.problems import ProblemSchema
from engine.core.migration import MigrationPlan, ParamsChoice
from engine.services import case_migration, versions
from engine.services.case_migration import MoveOutcome

blp = Blueprint(
    "versions",
    __name__,
    url_prefix="/api/v1/definitions",
    description="Steering versions: migrate running cases, promote, retire, delete",
)
VERSION = ma.fields.Integer(validate=ma.validate.Range(1, INT32_MAX))
NAME = ma.fields.String(validate=ma.validate.Length(1, 63))
REASON = ma.fields.String(required=True, validate=ma.validate.Length(1, 2000))


class DecisionSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    version = VERSION
    reason = REASON


class PromoteSchema(DecisionSchema):
    version = ma.fields.Integer(required=True, validate=ma.validate.Range(1, INT32_MAX))


class DeletionSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    reason = REASON


class DecisionResultSchema(ma.Schema):
    name = ma.fields.String()
    current_version = ma.fields.Integer()
    retired = ma.fields.Boolean()
    deleted = ma.fields.List(ma.fields.Integer())


class AuditSchema(ma.Schema):
    version = ma.fields.Integer(allow_none=True)
    action = ma.fields.String()
    actor = ma.fields.String()
    reason = ma.fields.String()
    at = ma.fields.DateTime()


class MigrationSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    from_version = ma.fields.Integer(required=True, validate=ma.validate.Range(1, INT32_MAX))
    to_version = ma.fields.Integer(required=True, validate=ma.validate.Range(1, INT32_MAX))
    params = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf([c.value for c in ParamsChoice]),
        metadata={"description": "keep: each case's own values; snapshot: the new version's"},
    )
    reason = REASON
    map_state = ma.fields.Dict(keys=NAME, values=NAME, load_default=dict)
    set = ma.fields.Dict(
        keys=NAME, values=ma.fields.String(validate=ma.validate.Length(1, 4000)), load_default=dict
    )
    drop = ma.fields.List(NAME, load_default=list)
    where = ma.fields.String(validate=ma.validate.Length(1, 4000), load_default=None)
    dry_run = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "Write nothing (the default): say what would happen"},
    )
    after_id = ma.fields.Integer(
        load_default=0,
        validate=ma.validate.Range(0, None),
        metadata={"description": "Continue after this case id (next_after_id of the last call)"},
    )
    limit = ma.fields.Integer(
        load_default=100, validate=ma.validate.Range(1, case_migration.MAX_BATCH)
    )


class MoveSchema(ma.Schema):
    case_id = ma.fields.Integer()
    outcome = ma.fields.String()
    business_key = ma.fields.String(allow_none=True)
    from_state = ma.fields.String(allow_none=True)
    to_state = ma.fields.String(allow_none=True)
    reasons = ma.fields.List(ma.fields.String())
    changes = ma.fields.Dict()
    dropped = ma.fields.List(ma.fields.String())
    event_seq = ma.fields.Integer(allow_none=True)
    warnings = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "Past transitions the new version has none for (not refused)"},
    )


class MigrationResultSchema(ma.Schema):
    plan = ma.fields.Dict()
    dry_run = ma.fields.Boolean()
    states_in_use = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    unmapped = ma.fields.List(ma.fields.String())
    items = ma.fields.List(ma.fields.Nested(MoveSchema))
    summary = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    next_after_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "Call again with after_id=this; null: done"}
    )


def _result(name: str, **extra: Any) -> dict[str, Any]:
    with db.transaction() as session:
        return {
            "name": name,
            "current_version": versions.current_version(session, name),
            "retired": versions.is_retired(session, name),
            **extra,
        }


def _decide(action: str, name: str, version: int | None, reason: str) -> Any:
    with db.transaction() as session:
        return getattr(versions, action)(
            session, name, version, actor=current_actor().name, reason=reason, now=g.now
        )


@blp.route("/<name>/promote")
class Promote(MethodView):
    @roles(blp, PROCESS_OWNER)
    @idempotent
    @blp.arguments(PromoteSchema)
    @blp.response(200, DecisionResultSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="The version is retired")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any], name: str) -> dict[str, Any]:
        """Make an existing version the one new cases get (a roll back), until a new version
        is published; audited."""
        _decide("promote", name, args["version"], args["reason"])
        return _result(name)


@blp.route("/<name>/retire")
class Retire(MethodView):
    @roles(blp, PROCESS_OWNER)
    @idempotent
    @blp.arguments(DecisionSchema)
    @blp.response(200, DecisionResultSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any], name: str) -> dict[str, Any]:
        """Take no new cases of the definition (or of ``version``); running cases continue."""
        _decide("retire", name, args.get("version"), args["reason"])
        return _result(name)


@blp.route("/<name>/restore")
class Restore(MethodView):
    @roles(blp, PROCESS_OWNER)
    @idempotent
    @blp.arguments(DecisionSchema)
    @blp.response(200, DecisionResultSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any], name: str) -> dict[str, Any]:
        """Undo a retirement of the definition (or of ``version``)."""
        _decide("restore", name, args.get("version"), args["reason"])
        return _result(name)


@blp.route("/<name>/versions/<int:version>/delete")
class DeleteVersion(MethodView):
    @roles(blp, PROCESS_OWNER)
    @idempotent
    @blp.arguments(DeletionSchema)
    @blp.response(200, DecisionResultSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="Cases use the version")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any], name: str, version: int) -> dict[str, Any]:
        """Delete a version no case uses (one published by mistake); refused while any case
        uses it: retire it instead."""
        deleted = _decide("delete_version", name, version, args["reason"])
        return _result(name, deleted=deleted)


@blp.route("/<name>/audit")
class Audit(MethodView):
    @roles(blp, PROCESS_OWNER, INTEGRATOR, SUPERVISOR)
    @blp.response(200, AuditSchema(many=True))
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, name: str) -> Any:
        """Who promoted, retired, restored or deleted which version, when and why."""
        with db.transaction() as session:
            versions.versions(session, name)  # 404 for an unknown definition
            return versions.audit(session, name)


@blp.route("/<name>/migrations")
class Migrations(MethodView):
    @roles(blp, PROCESS_OWNER)
    @idempotent
    @blp.arguments(MigrationSchema)
    @blp.response(200, MigrationResultSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(422, schema=ProblemSchema, description="The plan is wrong for every case")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any], name: str) -> dict[str, Any]:
        """Move running cases from one version to another, one batch per call (a dry run
        unless ``dry_run`` is false). Each case is moved in a transaction of its own with a
        ``migrated`` history event; call again with ``after_id`` = ``next_after_id`` until it
        is null. Running the same plan again moves only the cases still on the old version."""
        plan = MigrationPlan(
            definition=name,
            from_version=args["from_version"],
            to_version=args["to_version"],
            params=ParamsChoice(args["params"]),
            state_map=args["map_state"],
            sets=args["set"],
            drops=tuple(args["drop"]),
            where=args["where"],
            reason=args["reason"],
        )
        with db.transaction() as session:
            checked = case_migration.check(session, plan)
            in_use = case_migration.states_in_use(session, checked)
            unmapped = case_migration.unmapped(session, checked)
            batch = case_migration.next_batch(
                session, checked, after_id=args["after_id"], limit=args["limit"]
            )
        items = []
        for case_id in batch:
            with db.transaction() as session:  # each case in a transaction of its own
                if args["dry_run"]:
                    move = case_migration.preview_case(session, checked, case_id, now=g.now)
                else:
                    move = case_migration.migrate_case(
                        session, checked, case_id, actor=current_actor(), now=g.now
                    )
            items.append(move.to_dict())
        summary = Counter(item["outcome"] for item in items)
        return {
            "plan": plan.to_dict(),
            "dry_run": args["dry_run"],
            "states_in_use": in_use,
            "unmapped": unmapped,
            "items": items,
            "summary": {o.value: summary[o.value] for o in MoveOutcome if summary[o.value]},
            "next_after_id": batch[-1] if len(batch) == args["limit"] else None,
        }
