"""The traceability matrix: citations in definitions and tests reach the right IDs."""

from __future__ import annotations

from engine.core.traceability import build_matrix, citations_in_tests, render_markdown

CATALOG = {
    "R-TST-02": "Contact within 1 hour",
    "R-TST-07": "Replace after two repairs",
    "R-TST-04": "Audit sample",
    "R-TST-09": "Quarterly report",
}
DEFINITION = {
    "name": "repair_ticket",
    "requirements": ["R-TST-02"],
    "parameters": {
        "contact_within": {"type": "duration", "default": "1h", "requirements": ["R-TST-02"]}
    },
    "states": [
        {
            "name": "logged",
            "requirements": ["R-TST-02"],
            "timers": [{"name": "contact_overdue", "requirements": ["R-TST-02"]}],
        }
    ],
    "transitions": [
        {"trigger": "replace", "source": ["a", "b"], "dest": "c", "requirements": ["R-TST-07"]}
    ],
    "counters": {"device_repairs": {"key": "data.serial", "requirements": ["R-TST-07"]}},
    "decisions": {"replace_after": {"inputs": {}, "requirements": ["R-TST-07"]}},
}
TEST_MODULE = '''"""Module about R-TST-02."""
def test_contact_deadline():
    # R-TST-02: one hour
    pass

def test_replacement():
    """R-TST-07"""
'''


def test_citations_name_the_enclosing_test_function() -> None:
    cites = list(citations_in_tests("tests/test_x.py", TEST_MODULE))
    assert cites == [
        ("R-TST-02", "tests/test_x.py"),
        ("R-TST-02", "tests/test_x.py::test_contact_deadline"),
        ("R-TST-07", "tests/test_x.py::test_replacement"),
    ]


def test_matrix_maps_every_kind_of_element_and_status() -> None:
    traces = {
        t.id: t
        for t in build_matrix(
            CATALOG,
            {"R-TST-04": "A report over cases, not one case's life."},
            [DEFINITION],
            [("tests/test_x.py", TEST_MODULE)],
        )
    }
    assert traces["R-TST-02"].elements == [
        "`repair_ticket`",
        "`repair_ticket` parameter `contact_within` (default '1h')",
        "`repair_ticket` state `logged`",
        "`repair_ticket` state `logged` timer `contact_overdue`",
    ]
    assert traces["R-TST-02"].status == "implemented, tested"
    assert traces["R-TST-07"].elements == [
        "`repair_ticket` transitions[0] `replace`: a,b -> c",
        "`repair_ticket` counter `device_repairs`",
        "`repair_ticket` decision table `replace_after`",
    ]
    assert traces["R-TST-04"].status == "not a case life cycle"
    assert traces["R-TST-09"].status == "NOT COVERED"


def test_markdown_lists_what_is_not_covered() -> None:
    text = render_markdown(build_matrix(CATALOG, {}, [DEFINITION], []))
    assert "| R-TST-07 | Replace after two repairs | implemented, NOT TESTED |" in text
    assert "- R-TST-09: Quarterly report" in text
    assert "- R-TST-04: Audit sample" in text


def test_ranges_cite_every_id_in_between() -> None:
    from engine.core.traceability import cited_ids

    assert cited_ids("R-TST-03..R-TST-05 and R-TST-09") == [
        "R-TST-03",
        "R-TST-04",
        "R-TST-05",
        "R-TST-09",
    ]
    assert cited_ids("R-ABC-01..02") == ["R-ABC-01", "R-ABC-02"]
