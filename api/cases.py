"""Cases: create, read, search, fire triggers (by id or by business key), history, cancel,
timers.

Concurrency: a case's ``ETag`` is its version. ``If-Match`` on a fire is honoured (412 when the
case moved on); without it, of two conflicting fires one wins and the other gets 409 with the
case's current state.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import marshmallow as ma
from flask import Response, abort, g, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import Session
from werkzeug.http import parse_etags

from api import db
from api.auth import INTEGRATOR, SUPERVISOR, current_actor, roles
from api.idempotency import IDEMPOTENCY_KEY, idempotent
from api.inputs import INT32_MAX, INT64_MAX
from api.problems import ProblemSchema, problem
from engine.core.records import CaseRecord, EventRecord
from engine.core.sla import ClockStatus
from engine.services import cases, timer_firing
from engine.services.case_detail import case_detail
from engine.services.search import CaseFilter, search_cases
from engine.store.models import CaseStatus, EventType, TimerStatus

CASE_STATUSES = [s.value for s in CaseStatus]
EVENT_TYPES = [t.value for t in EventType]
TIMER_STATUSES = [s.value for s in TimerStatus]
CLOCK_STATUSES = [s.value for s in ClockStatus]

blp = Blueprint("cases", __name__, url_prefix="/api/v1/cases", description="Cases")
READERS = (INTEGRATOR, SUPERVISOR)
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The case's ETag (its version); the fire fails with 412 if it moved on.",
}


# --- schemas -----------------------------------------------------------------------------------


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class CreateCaseSchema(StrictSchema):
    definition = ma.fields.String(
        required=True, validate=ma.validate.Length(1, 63), metadata={"example": "repair_ticket"}
    )
    version = ma.fields.Integer(
        validate=ma.validate.Range(1, INT32_MAX),
        metadata={"description": "Default: the latest published version"},
    )
    business_key = ma.fields.String(
        validate=ma.validate.Length(1, 200), metadata={"example": "WX-20250930-0042"}
    )
    data = ma.fields.Dict(
        keys=ma.fields.String(),
        load_default=dict,
        metadata={
            "description": "Must match the definition's data_schema",
            "example": {
                "customer": "Xiangya Hospital",
                "device_serial": "CT-2025-0042",
                "fault": "Gantry does not rotate",
                "priority": "normal",
            },
        },
    )
    contract = ma.fields.String(
        validate=ma.validate.Length(1, 63),
        metadata={
            "description": "The service contract whose terms the case takes (default: its "
            "parent's, or the one covering its customer or device, or none; docs/contracts.md)"
        },
    )


class FireSchema(StrictSchema):
    trigger = ma.fields.String(
        required=True, validate=ma.validate.Length(1, 63), metadata={"example": "contact"}
    )
    payload = ma.fields.Dict(
        keys=ma.fields.String(),
        load_default=dict,
        metadata={
            "description": "Must match the trigger's payload_schema: GET "
            "/api/v1/definitions/{name}/versions/{version}/triggers lists them",
            "example": {"at": "2025-09-30T10:20:00+08:00"},
        },
    )


class CancelSchema(StrictSchema):
    reason = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, 1000),
        metadata={"example": "Duplicate of WX-20250930-0041"},
    )


class TimerSchema(ma.Schema):
    id = ma.fields.Integer()
    case_id = ma.fields.Integer()
    name = ma.fields.String()
    kind = ma.fields.String()
    sla = ma.fields.String(allow_none=True)
    trigger = ma.fields.String(allow_none=True)
    status = ma.fields.String(validate=ma.validate.OneOf(TIMER_STATUSES))
    due_at = ma.fields.DateTime()
    provisional = ma.fields.Boolean()
    attempts = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    fired_at = ma.fields.DateTime(allow_none=True)


class ClockSchema(ma.Schema):
    name = ma.fields.String(metadata={"example": "first_contact"})
    status = ma.fields.String(validate=ma.validate.OneOf(CLOCK_STATUSES))
    target_seconds = ma.fields.Float()
    elapsed_seconds = ma.fields.Float()
    remaining_seconds = ma.fields.Float()
    fraction = ma.fields.Float()
    started_at = ma.fields.String(allow_none=True)
    stopped_at = ma.fields.String(allow_none=True)
    due_at = ma.fields.String(allow_none=True)
    provisional = ma.fields.Boolean()
    warnings_reached = ma.fields.List(ma.fields.Float())
    calendar = ma.fields.String()
    unit = ma.fields.String()
    round = ma.fields.Integer(
        metadata={"description": "1, or which round of an SLA with rounds: repeat"}
    )


def flat_dumper(schema: ma.Schema) -> Callable[[Any], dict[str, Any]]:
    """``schema.dump`` of one object, for a flat schema (no nested schema, hook, default or
    dotted attribute): each field's own ``_serialize`` applied to the value read, without the
    per-field machinery around it (reading through the schema's accessor, defaults, checks),
    which cost more than the values: a repair ticket's fire answers with 7 clocks and a few
    timers, some 150 fields, 10% of the request. Same output as ``schema.dump`` (tested)."""
    if schema._hooks and any(schema._hooks.values()):
        raise TypeError(f"{type(schema).__name__} has hooks: dump it with the schema")
    fields = []
    for name, field in schema.dump_fields.items():
        attribute = field.attribute or name
        if (
            isinstance(field, ma.fields.Nested)
            or field.dump_default is not ma.missing
            or "." in attribute
        ):
            raise TypeError(f"{type(schema).__name__}.{name}: dump it with the schema")
        fields.append((field.data_key or name, attribute, field))

    def dump(obj: Any) -> dict[str, Any]:
        get = obj.get if isinstance(obj, Mapping) else functools.partial(getattr, obj)
        out = {}
        for key, attribute, field in fields:
            value = get(attribute, ma.missing)
            if value is not ma.missing:
                out[key] = field._serialize(value, attribute, obj)
        return out

    return dump


class Dumped(ma.fields.List):
    """A list whose items the view has dumped already (with :func:`flat_dumper` of the item
    schema): documented as the list of that schema it is, passed through as is."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else list(value)


dump_timer = flat_dumper(TimerSchema())
dump_clock = flat_dumper(ClockSchema())


class CaseSchema(ma.Schema):
    id = ma.fields.Integer(metadata={"example": 42})
    definition = ma.fields.String(
        attribute="definition_name", metadata={"example": "repair_ticket"}
    )
    definition_version = ma.fields.Integer(metadata={"example": 1})
    business_key = ma.fields.String(allow_none=True, metadata={"example": "WX-20250930-0042"})
    state = ma.fields.String(
        metadata={"description": "One of the definition's states", "example": "logged"}
    )
    status = ma.fields.String(validate=ma.validate.OneOf(CASE_STATUSES))
    data = ma.fields.Dict()
    version = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    state_entered_at = ma.fields.DateTime()
    allowed_triggers = ma.fields.List(ma.fields.String())
    contract = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "The contract the case was created under: id and version; on one "
            "case also its title and the terms it set (parameter values the case took)"
        },
    )
    # Dumped by _view already (dump_timer, dump_clock): the bulk of a fire's response.
    timers = Dumped(ma.fields.Nested(TimerSchema))
    sla = Dumped(ma.fields.Nested(ClockSchema))


class EventSchema(ma.Schema):
    seq = ma.fields.Integer(metadata={"example": 2})
    event_type = ma.fields.String(validate=ma.validate.OneOf(EVENT_TYPES))
    trigger = ma.fields.String(allow_none=True)
    from_state = ma.fields.String(allow_none=True)
    to_state = ma.fields.String()
    actor = ma.fields.String()
    payload = ma.fields.Dict()
    changes = ma.fields.Dict()
    at = ma.fields.DateTime(
        metadata={
            "description": "When it happened, as the case's clocks count it: for a fact reported "
            "late, the reported instant within its bounds (docs/timers.md)"
        }
    )
    idempotency_key = ma.fields.String(allow_none=True)
    context = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "About the event: an operator's reason, the counters a step read, "
            "and for a fact reported late reported_at, received_at and, when it counts "
            "elsewhere, counted_at and counted_because"
        },
    )
    hash = ma.fields.String(
        metadata={
            "description": "SHA-256 chaining the event to the case's previous one: "
            "docs/audit.md says how to verify a history",
            "example": "3f0c6f3e0b9c4be1a7d6f1b0c0a4e7d2b9e1c5a3f7d8e2b6c4a1f0e9d8c7b6a5",
        }
    )


class FireResultSchema(ma.Schema):
    case = ma.fields.Nested(CaseSchema)
    event = ma.fields.Nested(EventSchema)


class CaseListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CaseSchema))
    next_cursor = ma.fields.String(allow_none=True)


class CaseQuerySchema(StrictSchema):
    definition = ma.fields.String()
    state = ma.fields.String()
    status = ma.fields.String(validate=ma.validate.OneOf(CASE_STATUSES))
    business_key = ma.fields.String()
    data_field = ma.fields.String(validate=ma.validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"))
    data_value = ma.fields.String(metadata={"description": 'JSON value (5, true, "x") or text'})
    created_after = ma.fields.AwareDateTime(default_timezone=None)
    created_before = ma.fields.AwareDateTime(default_timezone=None)
    updated_after = ma.fields.AwareDateTime(default_timezone=None)
    updated_before = ma.fields.AwareDateTime(default_timezone=None)
    overdue = ma.fields.Boolean()
    contract = ma.fields.String(
        validate=ma.validate.Length(1, 63),
        metadata={"description": "Only the cases created under this service contract"},
    )
    cursor = ma.fields.String()
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 500))

    @ma.validates_schema
    def _pairs(self, data: dict[str, Any], **_: Any) -> None:
        if ("data_field" in data) != ("data_value" in data):
            raise ma.ValidationError("data_field and data_value go together.", "data_field")


# --- helpers -----------------------------------------------------------------------------------


def _etag(case: CaseRecord) -> str:
    return f'"{case.version}"'


def _view(case: CaseRecord, *, detail: bool = True) -> dict[str, Any]:
    """The case as the API shows it: with what may happen next, its timers and SLA clocks
    (engine/services/case_detail.py, which reads only what the definition can have)."""
    session = db.session()
    out: dict[str, Any] = dict(case.__dict__)
    out["contract"] = (
        {"id": case.contract_name, "version": case.contract_version}
        if case.contract_name is not None
        else None
    )
    if not detail:
        out["allowed_triggers"] = cases.allowed_triggers(session, case, current_actor())
        return out
    found = case_detail(session, case, now=g.now, actor=current_actor())
    if found.contract is not None:
        out["contract"] |= {
            "title": {"en": found.contract.title_en, "zh": found.contract.title_zh},
            "terms": found.terms,
        }
    out["allowed_triggers"] = found.allowed_triggers
    out["timers"] = [dump_timer(t) for t in found.timers]
    out["sla"] = [dump_clock(c.to_dict()) for c in found.clocks]
    return out


def _with_etag(response: Response, case: CaseRecord) -> Response:
    response.headers["ETag"] = _etag(case)
    return response


def _bad_if_match(header: str, why: str) -> NoReturn:
    abort(
        problem(
            400,
            "Bad Request",
            f"If-Match {header!r} {why}.",
            "bad-if-match",
            hint='Send the ETag the case was read with, e.g. "3".',
        )
    )


def _if_match_versions() -> set[int] | None:
    """The case versions If-Match accepts, or None when it accepts any (absent or ``*``).

    RFC 9110 compares If-Match strongly: a weak ETag (``W/"2"``) never matches, so a header
    of weak tags only fails the precondition (412) instead of being taken as ``"2"``."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = parse_etags(header)
    if tags.star_tag:
        return None
    strong = tags.as_set()
    # werkzeug gives None for a tag it cannot read (an empty "" among others): not an ETag.
    if not tags.as_set(include_weak=True) or not all(
        isinstance(tag, str) and tag.isdigit() for tag in strong
    ):
        _bad_if_match(header, "is not an ETag of a case")
    if not strong:
        abort(
            problem(
                412,
                "Precondition Failed",
                f"If-Match {header!r} has only weak ETags, which never match: If-Match "
                "compares ETags strongly (RFC 9110, section 13.1.1).",
                "precondition-failed",
                hint='Send the ETag the case was read with as is, e.g. "3".',
            )
        )
    return {int(tag) for tag in strong}


def _expected_version(session: Session, case_id: int, accepted: set[int] | None) -> int | None:
    """The one version the fire is conditional on: of several ETags, the case's own if it is
    among them (the UPDATE still checks it), else any, which then fails with 412."""
    if accepted is None:
        return None
    if len(accepted) > 1:
        current = cases.get_case(session, case_id).version
        if current in accepted:
            return current
    return min(accepted)


def _fire(case_id: int, args: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    accepted = _if_match_versions()
    with db.transaction() as session:
        expected = _expected_version(session, case_id, accepted)
        outcome = cases.fire(
            session,
            case_id,
            args["trigger"],
            args["payload"],
            actor=current_actor(),
            now=g.now,
            expected_version=expected,
            idempotency_key=g.get("idempotency_key"),
        )
        body = {"case": _view(outcome.case), "event": outcome.event}
    return body, 200, {"ETag": _etag(outcome.case)}


def _cursor(value: str | None) -> int | None:
    if not value:
        return None
    try:
        before = int(base64.urlsafe_b64decode(value.encode() + b"==").decode())
    except (ValueError, binascii.Error):
        before = 0
    if not 0 < before <= INT64_MAX:  # a forged id beyond the column overflows the driver
        abort(
            problem(
                400,
                "Bad Request",
                "The cursor is not one this API returned.",
                "bad-cursor",
                hint="Pass next_cursor from the previous page as is.",
            )
        )
    return before


def _encode_cursor(value: int | None) -> str | None:
    return (
        None
        if value is None
        else base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")
    )


# --- routes ------------------------------------------------------------------------------------


@blp.route("")
class Cases(MethodView):
    @roles(blp, *READERS)
    @blp.arguments(CaseQuerySchema, location="query")
    @blp.response(200, CaseListSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Search cases (newest first) with keyset pagination: pass next_cursor as cursor."""
        value: Any = query.get("data_value")
        if value is not None:
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):  # JSON nested too deep to read is text too
                parsed = value  # plain text
            # A number no database column holds can only be meant as text.
            big = isinstance(parsed, int) and not -INT64_MAX <= parsed <= INT64_MAX
            value = value if big else parsed
        f = CaseFilter(
            definition=query.get("definition"),
            state=query.get("state"),
            status=query.get("status"),
            business_key=query.get("business_key"),
            data_field=query.get("data_field"),
            data_value=value,
            created_after=query.get("created_after"),
            created_before=query.get("created_before"),
            updated_after=query.get("updated_after"),
            updated_before=query.get("updated_before"),
            overdue=query.get("overdue"),
            contract=query.get("contract"),
        )
        with db.transaction() as session:
            page, nxt = search_cases(
                session, f, now=g.now, before_id=_cursor(query.get("cursor")), limit=query["limit"]
            )
            items = [_view(c, detail=False) for c in page]
        return {"items": items, "next_cursor": _encode_cursor(nxt)}

    @roles(blp, INTEGRATOR)
    @idempotent
    @blp.arguments(CreateCaseSchema)
    @blp.response(201, CaseSchema)
    @blp.alt_response(404, schema=ProblemSchema, description="Unknown definition")
    @blp.alt_response(409, schema=ProblemSchema, description="Business key taken")
    @blp.alt_response(422, schema=ProblemSchema, description="Data does not match the schema")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Create a case of a published definition (latest version unless given)."""
        with db.transaction() as session:
            outcome = cases.create_case(
                session,
                args["definition"],
                args["data"],
                actor=current_actor(),
                now=g.now,
                version=args.get("version"),
                business_key=args.get("business_key"),
                idempotency_key=g.get("idempotency_key"),
                contract=args.get("contract"),
            )
            body = _view(outcome.case)
        location = url_for("cases.Case", case_id=outcome.case.id)
        return body, 201, {"ETag": _etag(outcome.case), "Location": location}


@blp.route("/<int:case_id>")
class Case(MethodView):
    @roles(blp, *READERS)
    @blp.response(200, CaseSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, case_id: int) -> tuple[dict[str, Any], int, dict[str, str]]:
        """A case with its allowed triggers, armed timers and SLA clocks."""
        with db.transaction() as session:
            case = cases.get_case(session, case_id)
            body = _view(case)
        return body, 200, {"ETag": _etag(case)}


@blp.route("/<int:case_id>/fire")
class Fire(MethodView):
    @roles(blp, INTEGRATOR)
    @idempotent
    @blp.arguments(FireSchema)
    @blp.response(200, FireResultSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="Not allowed now, or lost a race")
    @blp.alt_response(412, schema=ProblemSchema, description="If-Match does not match")
    @blp.alt_response(422, schema=ProblemSchema, description="Payload or data invalid")
    @blp.doc(parameters=[IDEMPOTENCY_KEY, IF_MATCH])
    def post(
        self, args: dict[str, Any], case_id: int
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Fire a trigger on a case."""
        return _fire(case_id, args)


class KeyQuerySchema(StrictSchema):
    definition = ma.fields.String(required=True, validate=ma.validate.Length(1, 63))
    business_key = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, 200),
        metadata={"description": "Any business key, '/' and '?' included (URL-encoded)"},
    )


KEY_QUERY = [
    {"name": name, "in": "query", "required": True, "schema": {"type": "string"}}
    for name in ("definition", "business_key")
]


@blp.route("/by-key")
class CaseByKeyQuery(MethodView):
    @roles(blp, *READERS)
    @blp.arguments(KeyQuerySchema, location="query")
    @blp.response(200, CaseSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, query: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """A case found by its definition and business key, given as query parameters: the
        form for every key, including those with '/' that cannot be a path segment."""
        with db.transaction() as session:
            case = cases.find_case(session, query["definition"], query["business_key"])
            body = _view(case)
        return body, 200, {"ETag": _etag(case)}


@blp.route("/by-key/fire")
class FireByKeyQuery(MethodView):
    @roles(blp, INTEGRATOR)
    @idempotent
    @blp.arguments(KeyQuerySchema, location="query")
    @blp.arguments(FireSchema)
    @blp.response(200, FireResultSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema)
    @blp.alt_response(412, schema=ProblemSchema)
    @blp.alt_response(422, schema=ProblemSchema)
    # Listed by hand: a doc's parameters replace those flask-smorest takes from the schema.
    @blp.doc(parameters=[*KEY_QUERY, IDEMPOTENCY_KEY, IF_MATCH])
    def post(
        self, query: dict[str, Any], args: dict[str, Any]
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Fire a trigger on the case with this business key (query form: any key)."""
        with db.transaction() as session:
            case_id = cases.find_case(session, query["definition"], query["business_key"]).id
            return _fire(case_id, args)


@blp.route("/by-key/<definition>/<business_key>")
class CaseByKey(MethodView):
    @roles(blp, *READERS)
    @blp.response(200, CaseSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, definition: str, business_key: str) -> tuple[dict[str, Any], int, dict[str, str]]:
        """A case found by its definition and business key (e.g. the hotline's ticket no.)."""
        with db.transaction() as session:
            case = cases.find_case(session, definition, business_key)
            body = _view(case)
        return body, 200, {"ETag": _etag(case)}


@blp.route("/by-key/<definition>/<business_key>/fire")
class FireByKey(MethodView):
    @roles(blp, INTEGRATOR)
    @idempotent
    @blp.arguments(FireSchema)
    @blp.response(200, FireResultSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema)
    @blp.alt_response(412, schema=ProblemSchema)
    @blp.alt_response(422, schema=ProblemSchema)
    @blp.doc(parameters=[IDEMPOTENCY_KEY, IF_MATCH])
    def post(
        self, args: dict[str, Any], definition: str, business_key: str
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Fire a trigger on the case with this business key."""
        with db.transaction() as session:
            case_id = cases.find_case(session, definition, business_key).id
            return _fire(case_id, args)


class HistoryQuerySchema(StrictSchema):
    after_seq = ma.fields.Integer(
        load_default=0,
        validate=ma.validate.Range(0, INT32_MAX),
        metadata={"description": "Only events after this seq (the last one already read)"},
    )


@blp.route("/<int:case_id>/history")
class History(MethodView):
    @roles(blp, *READERS)
    @blp.arguments(HistoryQuerySchema, location="query")
    @blp.response(200, EventSchema(many=True))
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, query: dict[str, Any], case_id: int) -> list[EventRecord]:
        """The case's events in order (seq 1, 2, 3 ...); with `after_seq`, only the newer."""
        with db.transaction() as session:
            return cases.history(session, case_id, after_seq=query["after_seq"])


@blp.route("/<int:case_id>/cancel")
class Cancel(MethodView):
    @roles(blp, INTEGRATOR)
    @idempotent
    @blp.arguments(CancelSchema)
    @blp.response(200, FireResultSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema)
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(
        self, args: dict[str, Any], case_id: int
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Cancel a case (its timers are cancelled; the reason is in the history)."""
        with db.transaction() as session:
            outcome = cases.cancel_case(
                session, case_id, actor=current_actor(), now=g.now, reason=args["reason"]
            )
            body = {"case": _view(outcome.case), "event": outcome.event}
        return body, 200, {"ETag": _etag(outcome.case)}


@blp.route("/<int:case_id>/timers")
class CaseTimers(MethodView):
    @roles(blp, *READERS)
    @blp.response(200, TimerSchema(many=True))
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, case_id: int) -> Any:
        """All timers of the case (armed, fired, cancelled, failed)."""
        with db.transaction() as session:
            cases.get_case(session, case_id)
            return timer_firing.case_timers(session, case_id)


class LinksSchema(ma.Schema):
    parent = ma.fields.Nested(CaseSchema, allow_none=True)
    children = ma.fields.List(ma.fields.Nested(CaseSchema))


@blp.route("/<int:case_id>/links")
class Links(MethodView):
    @roles(blp, *READERS)
    @blp.response(200, LinksSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, case_id: int) -> dict[str, Any]:
        """The case's parent and its children (e.g. a device file's tickets and visits)."""
        with db.transaction() as session:
            found = case_detail(session, case_id, now=g.now, relatives=True, actor=current_actor())
            return {
                "parent": _view(found.parent, detail=False) if found.parent else None,
                "children": [_view(c, detail=False) for c in found.children],
            }
