"""The dashboard's contract pages: the contracts in force, one contract with its terms, and
its monthly compliance report (a printable page and its CSV), the same report
``svcflow contracts report`` writes (engine/services/compliance.py)."""

from __future__ import annotations

from flask import Response, abort, g, render_template, request, url_for

from api.dashboard import access, bp, kpiboard, queries
from api.state import current
from engine.errors import ContractNotFound
from engine.services import compliance
from engine.services.contracts import get_contract, list_contracts, list_versions


@bp.get("/contracts")
def contracts_page() -> str:
    with queries.reading() as session:
        summaries = list_contracts(session)
        return render_template(
            "dashboard/contracts.html",
            summaries=summaries,
            month=kpiboard.current_month(g.now),
        )


@bp.get("/contracts/<contract_id>")
def contract_page(contract_id: str) -> str:
    with queries.reading() as session:
        try:
            contract = get_contract(session, contract_id)
        except ContractNotFound:
            abort(404)
        return render_template(
            "dashboard/contract.html",
            contract=contract,
            versions=list_versions(session, contract_id),
            month=request.args.get("month") or kpiboard.current_month(g.now),
        )


def _report(contract_id: str) -> compliance.ComplianceReport:
    month = request.args.get("month") or kpiboard.current_month(g.now)
    if not kpiboard.valid_month(month):
        abort(400, access.t("bad_month", month=month))
    with queries.reading() as session:
        try:
            return compliance.compliance_report(
                session, contract_id, month=month, now=g.now, timezone=current().zone.key
            )
        except ContractNotFound:
            abort(404)


@bp.get("/contracts/<contract_id>/compliance")
def compliance_page(contract_id: str) -> str:
    """A standalone page made to be printed and signed (no dashboard frame around it)."""
    report = _report(contract_id)
    link = url_for("dashboard.compliance_csv", contract_id=contract_id, month=report.month)
    style = url_for("dashboard.compliance_stylesheet")
    return compliance.to_html(report, current().zone, csv_link=link, stylesheet_url=style)


@bp.get("/compliance.css")
def compliance_stylesheet() -> Response:
    return Response(compliance.stylesheet(), mimetype="text/css")


@bp.get("/contracts/<contract_id>/compliance.csv")
def compliance_csv(contract_id: str) -> Response:
    report = _report(contract_id)
    name = compliance.report_filename(report, "csv")
    return Response(
        compliance.to_csv(report, current().zone),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
