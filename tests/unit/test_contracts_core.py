"""The contract document on its own (engine/core/contracts.py): shape checks with their
lines, the period in Beijing days, and the stored form."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from engine.core.contracts import check_contract_text, contract_from_document

BEIJING = ZoneInfo("Asia/Shanghai")
GOOD = """\
id: b3
title: {en: B3, zh: 乙三}
customers: [濮阳市人民医院]
valid_from: 2026-01-01
valid_until: 2026-12-31
parameters:
  repair_ticket: {loaner_after: 12h}
"""


def test_a_good_document_has_no_problem_and_builds() -> None:
    document, report = check_contract_text(GOOD)
    assert report.ok, report.problems
    contract = contract_from_document(document, version=2)
    assert (contract.id, contract.version, contract.valid_from) == ("b3", 2, date(2026, 1, 1))
    assert contract.terms_for("repair_ticket") == {"loaner_after": "12h"}
    assert contract.terms_for("loaner") == {}
    stored = contract_from_document(contract.document(), version=2)
    assert stored == contract and stored.fingerprint == contract.fingerprint


def test_the_period_is_beijing_days_both_ends_included() -> None:
    contract = contract_from_document(check_contract_text(GOOD)[0])
    # 2025-12-31T16:00Z is midnight of 1 January 2026 in Beijing: in force.
    assert contract.in_force(datetime(2025, 12, 31, 16, 0, tzinfo=UTC), BEIJING)
    assert not contract.in_force(datetime(2025, 12, 31, 15, 59, tzinfo=UTC), BEIJING)
    assert contract.in_force(datetime(2026, 12, 31, 15, 59, tzinfo=UTC), BEIJING)
    assert not contract.in_force(datetime(2026, 12, 31, 16, 0, tzinfo=UTC), BEIJING)


def test_every_shape_problem_is_reported_at_its_line() -> None:
    text = """\
id: B 3
title: {en: "", zh: 乙}
customers: []
devices: [SN-1, 7]
valid_from: "yesterday"
valid_until: 2025-01-01
parameters: {repair_ticket: {}}
team: 5
"""
    _document, report = check_contract_text(text)
    found = {(p.line, p.path, p.code) for p in report.problems}
    assert found == {
        (1, "id", "bad-identifier"),
        (2, "title.en", "bad-title"),
        (3, "customers", "bad-list"),
        (4, "devices[1]", "bad-name"),
        (5, "valid_from", "bad-date"),
        (7, "parameters.repair_ticket", "bad-parameters"),
        (8, "team", "not-text"),
    }


def test_missing_keys_and_a_non_mapping() -> None:
    _document, report = check_contract_text("id: b1\n")
    missing = {p.message for p in report.problems if p.code == "missing-key"}
    assert missing == {
        "A contract needs 'title'.",
        "A contract needs 'customers'.",
        "A contract needs 'valid_from'.",
        "A contract needs 'parameters'.",
    }
    _document, report = check_contract_text("- b1\n")
    assert [p.code for p in report.problems] == ["not-a-mapping"]
