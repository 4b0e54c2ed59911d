"""The traceability matrix: citations in definitions and tests reach the right IDs."""

from __future__ import annotations

from engine.traceability import build_matrix, render_markdown, citations_in_tests

CATALOG = {"R-REP-02": "Contact within 1 hour", "R-REP-07": "Replace after two repairs",
           "R-KPI-04": "Audit sample", "R-PM-02": "Quarterly report"}
DEFINITION = {
    "name": "repair_ticket",
    "requirements": ["R-REP-02"],
    "parameters": {"contact_within": {"type": "duration", "default": "1h",
                                      "requirements": ["R-REP-02"]}},
    "states": [{"name": "logged", "requirements": ["R-REP-02"],
                "timers": [{"name": "contact_overdue", "requirements": ["R-REP-02"]}]}],
    "transitions": [{"trigger": "replace", "source": ["a", "b"], "dest": "c",
                     "requirements": ["R-REP-07"]}],
    "counters": {"device_repairs": {"key": "data.serial", "requirements": ["R-REP-07"]}},
}
TEST_MODULE = '''"""Module about R-REP-02."""
def test_contact_deadline():
    # R-REP-02: one hour
    pass

def test_replacement():
    """R-REP-07"""
'''


def test_citations_name_the_enclosing_test_function() -> None:
    cites = list(citations_in_tests("tests/test_x.py", TEST_MODULE))
    assert cites == [
        ("R-REP-02", "tests/test_x.py"),
        ("R-REP-02", "tests/test_x.py::test_contact_deadline"),
        ("R-REP-07", "tests/test_x.py::test_replacement"),
    ]


def test_matrix_maps_every_kind_of_element_and_status() -> None:
    traces = {t.id: t for t in build_matrix(
        CATALOG, {"R-KPI-04": "A report over cases, not one case's life."}, [DEFINITION],
        [("tests/test_x.py", TEST_MODULE)],
    )}
    assert traces["R-REP-02"].elements == [
        "`repair_ticket`",
        "`repair_ticket` parameter `contact_within` (default '1h')",
        "`repair_ticket` state `logged`",
        "`repair_ticket` state `logged` timer `contact_overdue`",
    ]
    assert traces["R-REP-02"].status == "implemented, tested"
    assert traces["R-REP-07"].elements == [
        "`repair_ticket` transitions[0] `replace`: a,b -> c",
        "`repair_ticket` counter `device_repairs`",
    ]
    assert traces["R-KPI-04"].status == "not a case life cycle"
    assert traces["R-PM-02"].status == "NOT COVERED"


def test_markdown_lists_what_is_not_covered() -> None:
    text = render_markdown(build_matrix(CATALOG, {}, [DEFINITION], []))
    assert "| R-REP-07 | Replace after two repairs | implemented, NOT TESTED |" in text
    assert "- R-PM-02: Quarterly report" in text
    assert "- R-KPI-04: Audit sample" in text
