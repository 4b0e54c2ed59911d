"""The supervisor labels a case row keeps, read from the bundled workflows' data."""

from __future__ import annotations

from pathlib import Path

from engine.core.definition import WorkflowDefinition, parse_source
from engine.core.supervision import as_label, case_labels, changed_labels
from engine.core.validation import load_definition

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def _bundled(name: str) -> WorkflowDefinition:
    return load_definition(parse_source((WORKFLOWS / f"{name}.yaml").read_text("utf-8")))


def test_a_complaint_is_grouped_by_its_regional_team_not_by_an_object() -> None:
    complaint = _bundled("complaint")
    data = {
        "customer": "Ruijin Hospital",
        "severity": "serious",
        "team": {"manager": "Zhao", "expert": "Qian", "regional_lead": "Wu"},
        "regional_team": "East China",
    }
    assert case_labels(complaint, data) == {
        "customer": "Ruijin Hospital",
        "team": "East China",
        "priority": "serious",
        "assignee": None,
    }
    # Without a regional team there is no team label, never the regional lead's name.
    assert case_labels(complaint, {"customer": "Ruijin Hospital"})["team"] is None


def test_only_the_labels_whose_fields_an_event_set_are_rewritten() -> None:
    ticket = _bundled("repair_ticket")
    data = {"customer": "Huashan", "team": "East", "priority": "normal", "engineer": "Li"}
    assert changed_labels(ticket, data, {"engineer": "Li"}) == {"assignee": "Li"}
    assert changed_labels(ticket, data, {"contacted_at": "2026-01-01T00:00:00Z"}) == {}
    assert changed_labels(ticket, data, {}) == {}


def test_lifetime_and_on_loan_states_are_the_bundled_expected_waits() -> None:
    assert set(_bundled("loaner").supervision.expected_waits) == {"delivered", "in_use"}
    device = _bundled("device")
    assert "in_warranty" in device.supervision.expected_waits
    assert "ordered" not in device.supervision.expected_waits  # an installation can stall
    assert device.supervision.expected_waits["in_warranty"].zh


def test_a_label_is_one_value_cut_to_the_column() -> None:
    assert as_label({"a": 1}) is None
    assert as_label(["a"]) is None
    assert as_label(True) == "true"
    assert as_label(3) == "3"
    assert as_label("") is None
    assert as_label("x" * 300) == "x" * 200
