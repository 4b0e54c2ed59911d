"""KPIs (R-KPI-02) as JSON or CSV, and the quarterly audit sample (R-KPI-04)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import marshmallow as ma
from flask import Response, current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from api import db
from api.auth import SUPERVISOR, roles
from api.problems import ProblemSchema
from engine.core.definition import parse_source
from engine.services.kpi_summary import team_summary
from engine.services.kpis import audit_sample, last_full_month, monthly_kpis, to_csv_rows

blp = Blueprint("kpis", __name__, url_prefix="/api/v1/kpis", description="KPIs")


def config() -> dict[str, Any]:
    path = Path(current_app.config.get("KPI_CONFIG", "workflows/catalog/kpis.yaml"))
    loaded: dict[str, Any] = parse_source(path.read_text("utf-8"), str(path))
    return loaded


class KpiQuerySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    month = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"))
    by = ma.fields.String(validate=ma.validate.OneOf(["team", "customer", "device", "contract"]))
    contract = ma.fields.String(
        validate=ma.validate.Length(1, 63),
        metadata={"description": "Only the cases created under this service contract"},
    )
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(["json", "csv"]))


class KpiRowSchema(ma.Schema):
    kpi = ma.fields.String()
    group = ma.fields.String()
    numerator = ma.fields.Float()
    denominator = ma.fields.Float()
    value = ma.fields.Float(allow_none=True)
    target = ma.fields.Float(allow_none=True)
    met = ma.fields.Boolean(allow_none=True)


class KpiSummaryQuerySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    month = ma.fields.String(
        validate=ma.validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$"),
        metadata={"description": "YYYY-MM; by default the last full month"},
    )
    by = ma.fields.String(
        load_default="team",
        validate=ma.validate.OneOf(["team", "customer", "device", "contract"]),
    )
    contract = ma.fields.String(
        validate=ma.validate.Length(1, 63),
        metadata={"description": "Only the cases created under this service contract"},
    )
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(["json", "csv"]))


class KpiSummaryColumnSchema(ma.Schema):
    kpi = ma.fields.String()
    target = ma.fields.Float(allow_none=True)


class KpiSummaryCellSchema(ma.Schema):
    kpi = ma.fields.String()
    value = ma.fields.Float(allow_none=True)
    numerator = ma.fields.Float()
    denominator = ma.fields.Float()
    status = ma.fields.String(
        validate=ma.validate.OneOf(["met", "not_met", "no_target", "no_data"])
    )


class KpiSummaryRowSchema(ma.Schema):
    group = ma.fields.String(metadata={"description": "(all) for every case, first"})
    cells = ma.fields.List(ma.fields.Nested(KpiSummaryCellSchema))


class KpiSummarySchema(ma.Schema):
    month = ma.fields.String()
    by = ma.fields.String()
    columns = ma.fields.List(ma.fields.Nested(KpiSummaryColumnSchema))
    rows = ma.fields.List(ma.fields.Nested(KpiSummaryRowSchema))


class AuditQuerySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    quarter = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^\d{4}-?Q[1-4]$"))
    seed = ma.fields.Integer(required=True)
    share = ma.fields.Float(load_default=0.2, validate=ma.validate.Range(0.2, 1.0))


class AuditSampleSchema(ma.Schema):
    quarter = ma.fields.String()
    seed = ma.fields.Integer()
    share = ma.fields.Float()
    cases = ma.fields.List(ma.fields.Integer())


@blp.route("")
class Kpis(MethodView):
    @roles(blp, SUPERVISOR)
    @blp.arguments(KpiQuerySchema, location="query")
    @blp.response(200, KpiRowSchema(many=True))
    @blp.alt_response(
        200,
        schema={"type": "string"},
        content_type="text/csv",
        description="The same rows as CSV with format=csv",
        success=True,
    )
    @blp.alt_response(422, schema=ProblemSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """A month's KPIs with targets, overall or per team, customer, device or contract, of
        every case or one contract's (CSV with format=csv)."""
        with db.transaction() as session:
            rows = monthly_kpis(
                session,
                config(),
                month=query["month"],
                group_by=query.get("by"),
                now=g.now,
                contract=query.get("contract"),
            )
        if query["format"] == "csv":
            out = io.StringIO()
            csv.writer(out).writerows(to_csv_rows(rows))
            return Response(out.getvalue(), mimetype="text/csv")
        return [r.to_dict() for r in rows]


@blp.route("/summary")
class KpiSummary(MethodView):
    @roles(blp, SUPERVISOR)
    @blp.arguments(KpiSummaryQuerySchema, location="query")
    @blp.response(200, KpiSummarySchema)
    @blp.alt_response(
        200,
        schema={"type": "string"},
        content_type="text/csv",
        description="One line per group and KPI with format=csv",
        success=True,
    )
    @blp.alt_response(422, schema=ProblemSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Did each team (or customer, device, contract) meet each target in a month: a
        row per group, a cell per summary KPI with its value and met, not_met, no_target
        or no_data. The month is the last full one unless named."""
        loaded = config()
        month = query.get("month") or last_full_month(
            g.now, loaded.get("timezone", "Asia/Shanghai")
        )
        with db.transaction() as session:
            summary = team_summary(
                session,
                loaded,
                month=month,
                now=g.now,
                group_by=query["by"],
                contract=query.get("contract"),
            )
        if query["format"] == "csv":
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(
                ["group", "kpi", "numerator", "denominator", "value", "target", "status"]
            )
            for group, cells in summary.rows:
                for cell in cells:
                    d = cell.to_dict()
                    writer.writerow(
                        [
                            group,
                            cell.kpi,
                            d["numerator"],
                            d["denominator"],
                            d["value"],
                            summary.targets.get(cell.kpi),
                            d["status"],
                        ]
                    )
            return Response(out.getvalue(), mimetype="text/csv")
        return summary.to_dict()


@blp.route("/audit-sample")
class AuditSample(MethodView):
    @roles(blp, SUPERVISOR)
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditSampleSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The quarter's audit sample: the same seed always gives the same cases."""
        with db.transaction() as session:
            ids = audit_sample(
                session,
                config(),
                quarter=query["quarter"],
                seed=query["seed"],
                share=query["share"],
            )
        return {**query, "cases": ids}
