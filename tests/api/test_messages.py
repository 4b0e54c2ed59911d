"""Problem details quote what the client sent as JSON, never as Python spells it (docs/api.md,
"Errors"); tests/integration/test_messages.py walks the same rule through the services, the
simulator and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import REPAIR, REPAIR_DATA, assert_problem, sqlite_only
from tests.messages import assert_reads_as_written

CASES = "/api/v1/cases"


def _said(body: dict[str, Any]) -> list[str]:
    return [body["detail"], body.get("hint") or "", *map(str, body.get("errors") or [])]


@sqlite_only
def test_problem_details_spell_values_as_json(
    integrator: Any, owner: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    created = assert_problem(
        integrator.post(
            CASES,
            json={"definition": REPAIR, "data": {**REPAIR_DATA, "fault": None, "priority": True}},
        ),
        422,
        "data-invalid",
    )
    case = new_case("MSG-1")
    fired = assert_problem(
        integrator.post(
            f"{CASES}/{case['id']}/fire", json={"trigger": "contact", "payload": {"at": {"t": 1}}}
        ),
        422,
        "payload-invalid",
    )
    calendar = assert_problem(
        owner.put(
            "/api/v1/calendars/hospital",
            json={"definition": {"name": "hospital", "holidays": [None]}},
        ),
        422,
    )

    assert 'fault: null is not of type "string"' in created["detail"]
    assert 'priority: true is not one of ["emergency", "normal"]' in created["detail"]
    assert 'at: {"t": 1} is not of type "string"' in fired["detail"]
    assert "expected exactly the keys covered_years, format, holidays," in calendar["detail"]
    for body in (created, fired, calendar):
        assert_reads_as_written(*_said(body))
