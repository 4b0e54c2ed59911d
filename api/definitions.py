"""Definitions: drafts, validation, publishing, versions, source, diff, diagrams."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import marshmallow as ma
import yaml
from flask import Response, abort, g
from flask.views import MethodView
from flask_smorest import Blueprint

from api import db
from api.auth import EVERY_ROLE, PROCESS_OWNER, current_actor, roles
from api.cases import StrictSchema
from api.idempotency import IDEMPOTENCY_KEY, idempotent
from api.inputs import INT32_MAX
from api.problems import ProblemSchema, problem
from engine.core.definition import SYSTEM_ROLE, WorkflowDefinition
from engine.core.diagram import to_dot
from engine.core.limits import SOURCE_MAX_CHARS
from engine.core.validation import definition_schema
from engine.errors import DiagramUnavailable
from engine.runtime import diagrams
from engine.services import definitions, versions

blp = Blueprint(
    "definitions", __name__, url_prefix="/api/v1/definitions", description="Workflow definitions"
)


class SourceSchema(StrictSchema):
    """A definition as YAML text (``source``) or as a JSON object (``document``)."""

    source = ma.fields.String(validate=ma.validate.Length(1, SOURCE_MAX_CHARS))
    document = ma.fields.Dict()

    @ma.validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if ("source" in data) == ("document" in data):
            raise ma.ValidationError("Give exactly one of source (YAML text) or document.")


class ProblemItemSchema(ma.Schema):
    severity = ma.fields.String()
    path = ma.fields.String()
    code = ma.fields.String()
    message = ma.fields.String()
    hint = ma.fields.String()
    line = ma.fields.Integer(metadata={"description": "Where the element is written (1-based)"})
    column = ma.fields.Integer()


class ReportSchema(ma.Schema):
    ok = ma.fields.Boolean()
    errors = ma.fields.List(ma.fields.Nested(ProblemItemSchema))
    warnings = ma.fields.List(ma.fields.Nested(ProblemItemSchema))


class DraftSchema(ma.Schema):
    name = ma.fields.String()
    source = ma.fields.String()
    updated_at = ma.fields.DateTime()
    updated_by = ma.fields.String()
    report = ma.fields.Nested(ReportSchema)


class PublishResultSchema(ma.Schema):
    name = ma.fields.String()
    version = ma.fields.Integer()
    created = ma.fields.Boolean()
    warnings = ma.fields.List(ma.fields.String())


class SummarySchema(ma.Schema):
    name = ma.fields.String()
    latest_version = ma.fields.Integer()
    versions = ma.fields.Integer()
    title_en = ma.fields.String()
    title_zh = ma.fields.String()
    published_at = ma.fields.DateTime()


class VersionSchema(ma.Schema):
    name = ma.fields.String()
    version = ma.fields.Integer()
    title = ma.fields.Dict()
    initial = ma.fields.String()
    states = ma.fields.List(ma.fields.Dict())
    transitions = ma.fields.List(ma.fields.Dict())
    parameters = ma.fields.Dict()
    document = ma.fields.Dict()


class VersionEntrySchema(VersionSchema):
    """A version as listed: its document, and when, by whom, whether current or retired, and
    its cases."""

    published_at = ma.fields.DateTime()
    published_by = ma.fields.String()
    current = ma.fields.Boolean(metadata={"description": "The version new cases get"})
    retired_at = ma.fields.DateTime(allow_none=True)
    running_by_state = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    cases_by_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())


class LabelSchema(ma.Schema):
    en = ma.fields.String()
    zh = ma.fields.String()


class TriggerTransitionSchema(ma.Schema):
    sources = ma.fields.List(ma.fields.String(), metadata={"example": ["logged"]})
    dest = ma.fields.String(
        allow_none=True,
        metadata={
            "example": "remote_diagnosis",
            "description": "null: the case stays in its state (reenter says whether it "
            "re-enters it, restarting the state's timers)",
        },
    )
    reenter = ma.fields.Boolean()
    guard = ma.fields.String(allow_none=True, metadata={"description": "A CEL condition"})
    guard_message = ma.fields.Nested(LabelSchema, allow_none=True)
    roles = ma.fields.List(
        ma.fields.String(),
        metadata={
            "description": "Roles that may fire it (admin always may, except svcflow's own "
            "'system' triggers); empty: any caller of a fire operation",
            "example": ["integrator"],
        },
    )
    payload_schema = ma.fields.Dict(
        allow_none=True,
        metadata={"description": "JSON Schema (draft 2020-12) the payload must match"},
    )
    occurred_at = ma.fields.String(
        allow_none=True,
        metadata={"description": "The payload field that says when it happened, if any"},
    )


class TriggerSchema(ma.Schema):
    trigger = ma.fields.String(metadata={"example": "contact"})
    title = ma.fields.Nested(LabelSchema, allow_none=True)
    fired_by = ma.fields.String(
        validate=ma.validate.OneOf(["callers", "svcflow"]),
        metadata={
            "description": "svcflow: only the engine fires it (a timer, an SLA breach, a "
            "related case's news); callers: tokens with the roles below"
        },
    )
    payload_schema = ma.fields.Dict(
        allow_none=True,
        metadata={"description": "The payload schema when every transition has the same one"},
    )
    transitions = ma.fields.List(ma.fields.Nested(TriggerTransitionSchema))


class DiffQuerySchema(StrictSchema):
    from_version = ma.fields.Integer(
        data_key="from", required=True, validate=ma.validate.Range(1, INT32_MAX)
    )
    to_version = ma.fields.Integer(
        data_key="to", required=True, validate=ma.validate.Range(1, INT32_MAX)
    )


class DiffSchema(ma.Schema):
    name = ma.fields.String()
    from_version = ma.fields.Integer()
    to_version = ma.fields.Integer()
    source_diff = ma.fields.String()
    changes = ma.fields.Dict()


class DiagramQuerySchema(StrictSchema):
    format = ma.fields.String(load_default="svg", validate=ma.validate.OneOf(["svg", "dot"]))
    lang = ma.fields.String(load_default="en", validate=ma.validate.OneOf(["en", "zh"]))


def _source(args: dict[str, Any]) -> str:
    if "source" in args:
        return str(args["source"])
    return yaml.safe_dump(args["document"], allow_unicode=True, sort_keys=False)


def _report(source: str) -> dict[str, Any]:
    _document, report = definitions.validate_source(db.session(), source)
    return {
        "ok": report.ok,
        "errors": [p.to_dict() for p in report.errors],
        "warnings": [p.to_dict() for p in report.warnings],
    }


def _label(label: Any) -> dict[str, str] | None:
    return {"en": label.en, "zh": label.zh} if label is not None else None


def _triggers_view(d: WorkflowDefinition) -> list[dict[str, Any]]:
    """Each trigger of a version once, with its transitions in the definition's order."""
    by_trigger: dict[str, list[Any]] = {}
    for t in d.transitions:
        by_trigger.setdefault(t.trigger, []).append(t)
    out = []
    for trigger, transitions in by_trigger.items():
        roles = [list(d.roles_of(t)) for t in transitions]
        schemas = [dict(t.payload_schema) if t.payload_schema else None for t in transitions]
        out.append(
            {
                "trigger": trigger,
                "title": next((_label(t.title) for t in transitions if t.title), None),
                "fired_by": "svcflow" if all(r == [SYSTEM_ROLE] for r in roles) else "callers",
                "payload_schema": schemas[0] if all(x == schemas[0] for x in schemas) else None,
                "transitions": [
                    {
                        "sources": list(t.sources),
                        "dest": t.dest,
                        "guard": t.guard,
                        "guard_message": _label(t.guard_message),
                        "roles": role_list,
                        "payload_schema": schema,
                        "occurred_at": t.occurred_at.field if t.occurred_at else None,
                    }
                    for t, role_list, schema in zip(transitions, roles, schemas, strict=True)
                ],
            }
        )
    return out


def _version_view(d: WorkflowDefinition) -> dict[str, Any]:
    return {
        "name": d.name,
        "version": d.version,
        "title": {"en": d.title.en, "zh": d.title.zh},
        "initial": d.initial,
        "states": [
            {
                "name": s.name,
                "title": {"en": s.title.en, "zh": s.title.zh},
                "final": s.final,
                "timers": [t.name for t in s.timers],
            }
            for s in d.states
        ],
        "transitions": [
            {
                "trigger": t.trigger,
                "sources": list(t.sources),
                "dest": t.dest,  # null: the case stays in its state
                "reenter": t.reenter,
                "guard": t.guard,
                "roles": list(t.roles),
            }
            for t in d.transitions
        ],
        "parameters": {k: p.default for k, p in d.parameters.items()},
        "document": dict(d.document),
    }


class Stored(Protocol):
    @property
    def created(self) -> bool: ...


S = TypeVar("S", bound=Stored)


def store_version(store: Callable[..., S], *args: Any) -> tuple[S, int]:
    """Store the next immutable version of a document (``store(session, *args, actor=, now=)``,
    e.g. publishing a definition, loading a contract) on behalf of the caller's token: 201
    with what was stored, or 200 when the document is identical to a stored version."""
    with db.transaction() as session:
        result = store(session, *args, actor=current_actor().name, now=g.now)
    return result, 201 if result.created else 200


def stores_version(
    on: Blueprint, arguments: type[ma.Schema], result: type[ma.Schema], identical: str
) -> Callable[[Any], Any]:
    """A process owner's POST of blueprint ``on`` that stores a document sent as
    ``arguments`` as its next version (see :func:`store_version`), safe to retry;
    ``identical`` says which stored version an unchanged document answers with."""

    def declare(func: Any) -> Any:
        func = on.doc(parameters=[IDEMPOTENCY_KEY])(func)
        func = on.alt_response(
            422, schema=ProblemSchema, description="Invalid: problems lists each one"
        )(func)
        func = on.alt_response(200, schema=result, description=identical)(func)
        func = on.response(201, result)(func)
        func = on.arguments(arguments)(func)
        return roles(on, PROCESS_OWNER)(idempotent(func))

    return declare


def render_svg(dot: str) -> str:
    """The diagram as SVG (engine/runtime/diagrams.py), or a 503 problem response."""
    try:
        return diagrams.render_svg(dot)
    except DiagramUnavailable as exc:
        abort(problem(503, "Service Unavailable", exc.message, exc.code, hint=exc.hint))


@blp.route("")
class Definitions(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.response(200, SummarySchema(many=True))
    def get(self) -> Any:
        """Published definitions, with their latest version."""
        with db.transaction() as session:
            return definitions.list_definitions(session)

    @stores_version(blp, SourceSchema, PublishResultSchema, "Identical to a stored version")
    def post(self, args: dict[str, Any]) -> tuple[Any, int]:
        """Validate and publish a definition as its next immutable version."""
        return store_version(definitions.publish, _source(args))


@blp.route("/schema")
class DocumentSchema(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.response(200, {"type": "object"}, content_type="application/schema+json")
    def get(self) -> Response:
        """The JSON Schema of a definition document, for editors (docs/definitions.md)."""
        body = json.dumps(definition_schema(), ensure_ascii=False, indent=2)
        return Response(body, mimetype="application/schema+json")


@blp.route("/validate")
class Validate(MethodView):
    @roles(blp, PROCESS_OWNER)
    @idempotent
    @blp.arguments(SourceSchema)
    @blp.response(200, ReportSchema)
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Check a definition without storing it: every problem with its element path."""
        with db.transaction():
            return _report(_source(args))


@blp.route("/<name>/draft")
class Draft(MethodView):
    @roles(blp, PROCESS_OWNER)
    @blp.response(200, DraftSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, name: str) -> dict[str, Any]:
        """The draft of a definition, with its current validation report."""
        with db.transaction() as session:
            draft = definitions.get_draft(session, name)
            return {
                "name": draft.name,
                "source": draft.source,
                "updated_at": draft.updated_at,
                "updated_by": draft.updated_by,
                "report": _report(draft.source),
            }

    @roles(blp, PROCESS_OWNER)
    @blp.arguments(SourceSchema)
    @blp.response(200, DraftSchema)
    @blp.alt_response(422, schema=ProblemSchema)
    def put(self, args: dict[str, Any], name: str) -> dict[str, Any]:
        """Upload (or replace) the draft; it is stored even if invalid, with its report."""
        source = _source(args)
        with db.transaction() as session:
            stored = definitions.save_draft(session, source, actor=current_actor().name, now=g.now)
            if stored != name:
                abort(
                    problem(
                        422,
                        "Name mismatch",
                        f"The draft is named {stored!r} but was sent to {name!r}.",
                        "draft-name-mismatch",
                        field="name",
                    )
                )
            draft = definitions.get_draft(session, name)
            return {
                "name": draft.name,
                "source": draft.source,
                "updated_at": draft.updated_at,
                "updated_by": draft.updated_by,
                "report": _report(source),
            }


@blp.route("/<name>/draft/publish")
class PublishDraft(MethodView):
    @roles(blp, PROCESS_OWNER)
    @idempotent
    @blp.response(201, PublishResultSchema)
    @blp.alt_response(200, schema=PublishResultSchema, description="Identical to a stored version")
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(422, schema=ProblemSchema)
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, name: str) -> tuple[Any, int]:
        """Publish the draft as the next version (the draft is then removed)."""
        return store_version(definitions.publish_draft, name)


@blp.route("/<name>/versions")
class Versions(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.response(200, VersionEntrySchema(many=True))
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, name: str) -> list[dict[str, Any]]:
        """Every published version of a definition, with its cases by state."""
        with db.transaction() as session:
            return [
                {
                    **_version_view(definitions.get_definition(session, name, v.version)),
                    "published_at": v.published_at,
                    "published_by": v.published_by,
                    "current": v.current,
                    "retired_at": v.retired_at,
                    "running_by_state": v.open_by_state,
                    "cases_by_status": v.by_status,
                }
                for v in versions.versions(session, name)
            ]


@blp.route("/<name>/versions/<int:version>")
class Version(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.response(200, VersionSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, name: str, version: int) -> dict[str, Any]:
        """One version: states, transitions, parameters and the whole document."""
        with db.transaction() as session:
            return _version_view(definitions.get_definition(session, name, version))


@blp.route("/<name>/versions/<int:version>/triggers")
class Triggers(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.response(200, TriggerSchema(many=True))
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, name: str, version: int) -> list[dict[str, Any]]:
        """Every trigger of a version: where it goes from where, who may fire it, and the
        payload it takes (its JSON Schema), so a client knows what to send."""
        with db.transaction() as session:
            return _triggers_view(definitions.get_definition(session, name, version))


@blp.route("/<name>/versions/<int:version>/source")
class Source(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.response(200, {"type": "string"}, content_type="application/yaml")
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, name: str, version: int) -> Response:
        """The source text exactly as published."""
        with db.transaction() as session:
            text = definitions.get_source(session, name, version)
        return Response(text, mimetype="application/yaml")


@blp.route("/<name>/diff")
class Diff(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.arguments(DiffQuerySchema, location="query")
    @blp.response(200, DiffSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, query: dict[str, Any], name: str) -> Any:
        """What changed between two versions: the source diff and a structural summary."""
        with db.transaction() as session:
            return definitions.diff_versions(
                session, name, query["from_version"], query["to_version"]
            )


@blp.route("/<name>/versions/<int:version>/diagram")
class Diagram(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.arguments(DiagramQuerySchema, location="query")
    @blp.response(200, {"type": "string"}, content_type="image/svg+xml")
    @blp.alt_response(
        200,
        schema={"type": "string"},
        content_type="text/vnd.graphviz",
        description="SVG, or DOT with format=dot",
        success=True,
    )
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, query: dict[str, Any], name: str, version: int) -> Response:
        """The state diagram as SVG (or DOT with format=dot)."""
        with db.transaction() as session:
            definition = definitions.get_definition(session, name, version)
        dot = to_dot(definition, lang=query["lang"])
        if query["format"] == "dot":
            return Response(dot, mimetype="text/vnd.graphviz")
        return Response(render_svg(dot), mimetype="image/svg+xml")
