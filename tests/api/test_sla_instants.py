"""A clock counted from an instant in the data refuses an instant in the future over HTTP:
a problem+json naming the element and the value, and nothing stored (R-INS-01)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import assert_problem

BASE = "/api/v1/cases"
DEVICE = {"device_serial": "CT-API-1", "customer": "新乡市中心医院"}


def test_a_contract_date_in_the_future_is_a_422_and_stores_nothing_r_ins_01(
    integrator: Any, supervisor: Any
) -> None:
    ahead = {**DEVICE, "contract_signed_at": "2099-01-01T00:00:00Z"}

    body = assert_problem(
        integrator.post(BASE, json={"definition": "device", "data": ahead}),
        422,
        "expression-error",
    )

    assert body["detail"].startswith(
        "Expression at slas[0].counted_from gave 2099-01-01T00:00:00Z, after the instant the "
        "clock starts at"
    )
    assert "may not lie in the future" in body["hint"]
    listed = supervisor.get(BASE, query_string={"definition": "device"}).get_json()
    assert listed["items"] == []
    # The same file with a contract date in the past is taken, counted from that date.
    past = {**DEVICE, "contract_signed_at": "2025-09-01T10:00:00+08:00"}
    created = integrator.post(BASE, json={"definition": "device", "data": past})
    assert created.status_code == 201, created.get_data(as_text=True)
    (installation,) = [c for c in created.get_json()["sla"] if c["name"] == "installation"]
    assert installation["started_at"] == "2025-09-01T02:00:00Z"
