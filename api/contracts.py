"""Service contracts: list, read, check and load (docs/contracts.md); a contract's monthly
compliance report."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, g
from flask.views import MethodView
from flask_smorest import Blueprint

from api import db
from api.auth import EVERY_ROLE, PROCESS_OWNER, SUPERVISOR, roles
from api.cases import StrictSchema
from api.definitions import store_version, stores_version
from api.idempotency import IDEMPOTENCY_KEY, idempotent
from api.inputs import INT32_MAX
from api.problems import ProblemSchema
from api.state import current
from engine.core.contracts import Contract
from engine.core.limits import SOURCE_MAX_CHARS
from engine.services import compliance, contracts

blp = Blueprint(
    "contracts", __name__, url_prefix="/api/v1/contracts", description="Service contracts"
)


class ContractSourceSchema(StrictSchema):
    source = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, SOURCE_MAX_CHARS),
        metadata={"description": "The contract as YAML text (docs/contracts.md)"},
    )


class VersionQuerySchema(StrictSchema):
    version = ma.fields.Integer(validate=ma.validate.Range(1, INT32_MAX))


class LoadResultSchema(ma.Schema):
    name = ma.fields.String(data_key="id")
    version = ma.fields.Integer()
    created = ma.fields.Boolean()


class ContractSchema(ma.Schema):
    id = ma.fields.String()
    version = ma.fields.Integer()
    title = ma.fields.Dict()
    customers = ma.fields.List(ma.fields.String())
    devices = ma.fields.List(ma.fields.String())
    valid_from = ma.fields.String(metadata={"description": "First day in force (Beijing)"})
    valid_until = ma.fields.String(allow_none=True, metadata={"description": "Last day"})
    parameters = ma.fields.Dict(metadata={"description": "Terms: definition -> parameters"})
    calendar = ma.fields.String(allow_none=True)
    team = ma.fields.String(allow_none=True)
    description = ma.fields.String()


class ContractReportSchema(ma.Schema):
    ok = ma.fields.Boolean()
    errors = ma.fields.List(ma.fields.Dict())


class ComplianceQuerySchema(StrictSchema):
    month = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"))
    format = ma.fields.String(
        load_default="json", validate=ma.validate.OneOf(["json", "csv", "html"])
    )


class ComplianceReportSchema(ma.Schema):
    contract = ma.fields.String()
    contract_version = ma.fields.Integer()
    month = ma.fields.String()
    promises = ma.fields.List(
        ma.fields.Dict(), metadata={"description": "definition, sla, met, breached"}
    )
    breaches = ma.fields.List(
        ma.fields.Dict(),
        metadata={
            "description": "case_id, definition, sla, due_at, actual_at (null: not kept yet), "
            "late_by_seconds and the case's history over the clock's run"
        },
    )


def _view(contract: Contract) -> dict[str, Any]:
    return {**contract.document(), "version": contract.version}


@blp.route("")
class Contracts(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.response(200, ContractSchema(many=True))
    def get(self) -> Any:
        """Every contract, at its latest version."""
        with db.transaction() as session:
            return [_view(s.contract) for s in contracts.list_contracts(session)]

    @stores_version(blp, ContractSourceSchema, LoadResultSchema, "Identical to the latest version")
    def post(self, args: dict[str, Any]) -> tuple[Any, int]:
        """Check and load a contract as its next version; running cases keep their terms."""
        return store_version(contracts.load_contract, args["source"])


@blp.route("/validate")
class Validate(MethodView):
    @roles(blp, PROCESS_OWNER)
    @idempotent
    @blp.arguments(ContractSourceSchema)
    @blp.response(200, ContractReportSchema)
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any]) -> dict[str, Any]:
        """Check a contract as loading would, without loading it: every problem with its
        line and element path."""
        with db.transaction() as session:
            _document, report = contracts.validate_contract_source(session, args["source"])
        return {"ok": report.ok, "errors": [p.to_dict() for p in report.errors]}


@blp.route("/<contract_id>")
class OneContract(MethodView):
    @roles(blp, *EVERY_ROLE)
    @blp.arguments(VersionQuerySchema, location="query")
    @blp.response(200, ContractSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, query: dict[str, Any], contract_id: str) -> dict[str, Any]:
        """A contract (its latest version unless one is asked for)."""
        with db.transaction() as session:
            return _view(contracts.get_contract(session, contract_id, query.get("version")))


@blp.route("/<contract_id>/compliance")
class Compliance(MethodView):
    @roles(blp, SUPERVISOR, PROCESS_OWNER)
    @blp.arguments(ComplianceQuerySchema, location="query")
    @blp.response(200, ComplianceReportSchema)
    @blp.alt_response(
        200,
        schema={"type": "string"},
        content_type="text/csv",
        description="format=csv: a row per promise, then a row per breach; format=html: the "
        "printable page",
        success=True,
    )
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, query: dict[str, Any], contract_id: str) -> Any:
        """A contract's compliance report for a month (R-REP-12): each promise (SLA) with
        its met and breached counts, every breach with its due and actual instants and the
        case's history."""
        zone = current().zone
        with db.transaction() as session:
            report = compliance.compliance_report(
                session, contract_id, month=query["month"], now=g.now, timezone=zone.key
            )
        if query["format"] == "csv":
            return Response(compliance.to_csv(report, zone), mimetype="text/csv")
        if query["format"] == "html":
            return Response(compliance.to_html(report, zone), mimetype="text/html")
        return compliance.describe(report)
