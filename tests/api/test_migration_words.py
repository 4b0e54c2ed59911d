"""The migration page's data cells in the reader's language: the outcome of each case, its
states by the definitions' titles, and the past transitions the new version has none for
worded on the page rather than as the engine's English sentence."""

from __future__ import annotations

from typing import Any

from tests.api import test_dashboard as dashboard_tests
from tests.api.test_dashboard import Dash, _text
from tests.factories import create_ticket, fire
from tests.workflows import TICKET

# The dashboard tests' fixtures: SQLite with the bundled workflows, a signed-in test client.
db_url, kpi_config, dash = dashboard_tests.db_url, dashboard_tests.kpi_config, dashboard_tests.dash

PATH = "/dashboard/definitions/service_ticket"
# Version 2 renames on_hold to waiting and calls putting a case on hold "pause": a held
# case's past ('hold' into the renamed state) is no transition of version 2.
V2 = TICKET.replace("on_hold", "waiting").replace("trigger: hold\n", "trigger: pause\n")
PLAN = {
    "from_version": "1",
    "to_version": "2",
    "map_state": "on_hold=waiting\n",
    "params": "keep",
    "reason": "rename on_hold",
}


def test_a_dry_run_s_outcomes_states_and_warnings_are_in_the_reader_s_language(
    dash: Dash, publish_workflow: Any
) -> None:
    assert "trigger: hold\n" in TICKET  # what V2 renames
    held = create_ticket(dash.sessions)
    fire(dash.sessions, held, "hold")
    waiting = create_ticket(dash.sessions)
    assert publish_workflow(V2) == 2

    dash.login("admin", lang="zh")
    zh = dash.submit(PATH, f"{PATH}/migrate", **PLAN).get_data(as_text=True)
    assert f'data-case="{held}" data-outcome="would_move"' in zh  # the code stays for machines
    row = _row(zh, held)
    assert "将迁移" in row and "would_move" not in row
    assert "挂起 → 挂起" in row  # on_hold is waiting in version 2, by the same title
    assert "事件 2：「hold」从「已受理」到「挂起」在版本 2 中没有对应的转换" in row
    assert "is not a transition" not in zh
    other = _row(zh, waiting)
    assert "已受理 → 已受理" in other and "数据无变更" in other and "事件" not in other

    dash.set_language("en")
    en = _text(dash.submit(PATH, f"{PATH}/migrate", **PLAN).get_data(as_text=True))
    assert "would move" in en
    assert "event 2: hold from Received to On hold is not a transition of version 2" in en


def _row(page: str, case_id: int) -> str:
    """The text of the case's row in the page's table of moves."""
    start = page.index(">", page.index(f'<tr data-case="{case_id}"')) + 1
    return _text(page[start : page.index("</tr>", start)])
