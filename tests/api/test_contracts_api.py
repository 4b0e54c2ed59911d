"""Service contracts over HTTP and on the dashboard (issue 13): process owners load them,
integrators create cases under them, a case shows its contract and terms, supervisors read
the monthly compliance report as JSON, CSV and a printable page."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import state
from api.app import create_app
from engine.runtime.clock import ManualClock
from engine.runtime.embedded_redis import free_port
from tests.api.conftest import make_tokens
from tests.conftest import WORKFLOWS

MARCH = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 2 March 2026, 09:00 in Beijing
TICKET = {"customer": "某医院", "device_serial": "SN-9", "fault": "黑屏", "priority": "normal"}


def _source(name: str) -> str:
    return (WORKFLOWS / "contracts" / f"{name}.yaml").read_text("utf-8")


@pytest.fixture
def app(db_url: str) -> Iterator[Flask]:
    flask_app = create_app(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "SECRET_KEY": "contract-tests",
        }
    )
    state.of(flask_app).runtime.clock = ManualClock(MARCH)
    yield flask_app
    state.of(flask_app).runtime.close()


class Caller:
    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def get(self, url: str) -> Any:
        return self.client.get(url, headers=self.headers)

    def post(self, url: str, body: dict[str, Any]) -> Any:
        return self.client.post(url, json=body, headers=self.headers)


@pytest.fixture
def callers(app: Flask, sessions: Any) -> dict[str, Caller]:
    tokens = make_tokens(sessions, "contracts")
    client = app.test_client()
    return {role: Caller(client, token) for role, token in tokens.items()}


def _load_b2_b3(owner: Caller) -> None:
    for name in ("b2", "b3"):
        loaded = owner.post("/api/v1/contracts", {"source": _source(name)})
        assert loaded.status_code == 201, loaded.get_json()
        assert loaded.get_json() == {"id": name, "version": 1, "created": True}


def test_only_process_owners_load_contracts_and_bad_ones_get_every_problem(callers) -> None:
    refused = callers["integrator"].post("/api/v1/contracts", {"source": _source("b3")})
    assert refused.status_code == 403
    bad = _source("b3").replace("loaner_after: 12h", "loaner_after: 12")
    invalid = callers["process_owner"].post("/api/v1/contracts", {"source": bad})
    problem = invalid.get_json()
    assert invalid.status_code == 422 and problem["code"] == "contract-invalid"
    (term,) = problem["problems"]
    line = bad.splitlines().index("    loaner_after: 12") + 1
    assert (term["path"], term["line"]) == ("parameters.repair_ticket.loaner_after", line)
    checked = callers["process_owner"].post("/api/v1/contracts/validate", {"source": bad})
    assert checked.get_json()["ok"] is False
    assert callers["process_owner"].get("/api/v1/contracts").get_json() == []


def test_cases_created_under_two_contracts_show_their_terms(callers) -> None:
    _load_b2_b3(callers["process_owner"])
    made = {}
    for name in ("b3", "b2"):
        created = callers["integrator"].post(
            "/api/v1/cases",
            {"definition": "repair_ticket", "data": dict(TICKET), "contract": name},
        )
        assert created.status_code == 201, created.get_json()
        made[name] = created.get_json()
    b3 = callers["supervisor"].get(f"/api/v1/cases/{made['b3']['id']}").get_json()
    assert b3["contract"]["id"] == "b3" and b3["contract"]["version"] == 1
    assert b3["contract"]["terms"]["loaner_after"] == "12h"
    assert made["b2"]["contract"]["terms"]["loaner_after"] == "8h"
    unknown = callers["integrator"].post(
        "/api/v1/cases", {"definition": "repair_ticket", "data": dict(TICKET), "contract": "b9"}
    )
    assert unknown.status_code == 404 and unknown.get_json()["code"] == "contract-not-found"
    listed = callers["supervisor"].get("/api/v1/contracts").get_json()
    assert [c["id"] for c in listed] == ["b2", "b3"]
    found = callers["supervisor"].get("/api/v1/cases?contract=b3").get_json()["items"]
    assert [(c["id"], c["contract"]) for c in found] == [
        (made["b3"]["id"], {"id": "b3", "version": 1})
    ]


def _late_contact(callers: dict[str, Caller], app: Flask) -> int:
    """A b2 ticket contacted after 2 hours: b2's first-contact promise (1 hour) is broken."""
    _load_b2_b3(callers["process_owner"])
    created = (
        callers["integrator"]
        .post(
            "/api/v1/cases", {"definition": "repair_ticket", "data": dict(TICKET), "contract": "b2"}
        )
        .get_json()
    )
    clock = state.of(app).runtime.clock
    assert isinstance(clock, ManualClock)
    clock.set(MARCH + timedelta(hours=2))
    fired = callers["integrator"].post(
        f"/api/v1/cases/{created['id']}/fire",
        {"trigger": "contact", "payload": {"at": "2026-03-02T03:00:00Z"}},
    )
    assert fired.status_code == 200, fired.get_json()
    case_id: int = created["id"]
    return case_id


def test_the_compliance_report_as_json_csv_and_a_printable_page(callers, app) -> None:
    """R-REP-12: the evidence of a deposit deduction, in the three forms it is handed out."""
    case_id = _late_contact(callers, app)
    url = "/api/v1/contracts/b2/compliance?month=2026-03"
    assert callers["integrator"].get(url).status_code == 403
    report = callers["supervisor"].get(url).get_json()
    (breach,) = [b for b in report["breaches"] if b["sla"] == "first_contact"]
    assert breach["case_id"] == case_id
    assert breach["due_at"] == "2026-03-02T02:00:00+00:00"
    assert breach["actual_at"] == "2026-03-02T03:00:00+00:00"
    assert "contact" in [e["trigger"] for e in breach["history"]]
    text = callers["supervisor"].get(url + "&format=csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert any(r["section"] == "breach" and r["case_id"] == str(case_id) for r in rows)
    page = callers["process_owner"].get(url + "&format=html").get_data(as_text=True)
    assert f"Case {case_id}" in page
    assert callers["supervisor"].get(url.replace("b2", "zz")).status_code == 404
    assert callers["supervisor"].get(url.replace("2026-03", "2026-13")).status_code == 422


def _signed_in(app: Flask, sessions: Any) -> FlaskClient:
    client = app.test_client()
    token = make_tokens(sessions, "dash")["supervisor"]
    page = client.get("/dashboard/login").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    client.post(
        "/dashboard/login",
        data={"token": token, "csrf_token": html.unescape(found.group(1)), "next": "/dashboard/"},
    )
    return client


def test_the_dashboard_shows_contracts_terms_and_the_report(callers, app, sessions) -> None:
    case_id = _late_contact(callers, app)
    client = _signed_in(app, sessions)
    listing = client.get("/dashboard/contracts").get_data(as_text=True)
    assert 'data-contract="b2"' in listing and 'data-contract="b3"' in listing
    case_page = client.get(f"/dashboard/cases/{case_id}").get_data(as_text=True)
    assert "b2 v1" in case_page
    terms = re.search(r'data-testid="case-terms">(.*?)</table>', case_page, re.S)
    assert terms and "loaner_after" in terms.group(1) and "8h" in terms.group(1)
    report = client.get("/dashboard/contracts/b2/compliance?month=2026-03")
    assert report.status_code == 200
    printable = report.get_data(as_text=True)
    assert f"Case {case_id}" in printable
    # The Content-Security-Policy allows no inline style: the page links its stylesheet.
    assert "<style>" not in printable and 'href="/dashboard/compliance.css"' in printable
    assert client.get("/dashboard/compliance.css").mimetype == "text/css"
    download = client.get("/dashboard/contracts/b2/compliance.csv?month=2026-03")
    assert download.mimetype == "text/csv"
    assert "compliance-b2-2026-03.csv" in download.headers["Content-Disposition"]
    assert client.get("/dashboard/contracts/zz").status_code == 404
    assert client.get("/dashboard/contracts/b2/compliance?month=March").status_code == 400
    stuck = client.get("/dashboard/stuck?contract=b3").status_code
    assert stuck == 200
    by_contract = client.get("/dashboard/kpis?month=2026-03&by=contract").status_code
    assert by_contract == 200
