"""The case workbench through the Flask test client, on SQLite with the bundled workflows: the
columns a supervisor acts on, the filter in the URL, exports that open as spreadsheets, action
forms fetched per row, and bulk actions that change nothing until confirmed."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import openpyxl

from api.dashboard.error_words import ERROR_ZH
from engine.core.records import EventRecord
from engine.errors import SvcflowError
from tests.api import test_dashboard as dashboard_tests
from tests.api.conftest import REPAIR_DATA
from tests.api.test_dashboard import Dash, _text, csrf
from tests.conftest import T0
from tests.factories import create_case, create_ticket

# The dashboard tests' fixtures: SQLite with the bundled workflows, a signed-in test client.
db_url, kpi_config, dash = dashboard_tests.db_url, dashboard_tests.kpi_config, dashboard_tests.dash

TEAMS = ("East", "West")


def _tickets(dash: Dash, n: int = 6) -> list[int]:
    """Repair tickets opened at T0 (their response clocks overdue at NOW), alternating teams."""
    made = []
    for i in range(n):
        data: dict[str, Any] = {
            **REPAIR_DATA,
            "customer": f"Hospital {i % 3}",
            "team": TEAMS[i % 2],
            "engineer": f"Engineer {i}",
        }
        made.append(
            create_case(
                dash.sessions, "repair_ticket", data, business_key=f"T-2026-{i + 1:04d}", now=T0
            ).case.id
        )
    return made


def _rows(body: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr data-case="(\d+)"', body)]


def _events(dash: Dash, case_id: int) -> list[EventRecord]:
    return dash.history(case_id)


def test_the_workbench_shows_who_which_customer_and_how_late(dash: Dash) -> None:
    made = _tickets(dash)
    dash.login("supervisor", lang="en")
    body = dash.page("/dashboard/work")
    text = _text(body)

    assert sorted(_rows(body)) == sorted(made)
    assert "T-2026-0001" in text and "Hospital 1" in text and "Engineer 2" in text
    assert "East" in text and "West" in text
    assert "overdue by" in text  # clocks started at T0 are late at NOW
    assert "First contact · 500%" in text  # 5 hours of a 1-hour promise used
    assert "6 open cases match." in text
    # Rows carry no action forms: each is fetched when opened.
    assert 'class="action fire"' not in body
    assert body.count('class="row-actions"') == 6

    dash.set_language("zh")
    zh = _text(dash.page("/dashboard/work"))
    assert "已超时" in zh and "工单工作台" in zh and "客户" in zh


def test_the_filter_lives_in_the_url_and_pages_follow_it(dash: Dash) -> None:
    made = _tickets(dash, 8)
    dash.login("supervisor", lang="en")
    east = dash.page("/dashboard/work?team=East&sort=business_key&desc=1")
    assert _rows(east) == [made[6], made[4], made[2], made[0]]
    assert 'value="East"' in east  # the form shows the filter it came from

    first = dash.page("/dashboard/work?size=25&sort=customer")
    assert len(_rows(first)) == 8 and 'rel="next"' not in first
    # A customer filter, and a reason filter: every ticket's response clock is breached.
    assert len(_rows(dash.page("/dashboard/work?customer=Hospital+0"))) == 3
    assert len(_rows(dash.page("/dashboard/work?stuck=sla_breached"))) == 8


def test_bad_query_values_get_a_page_saying_what_is_allowed(dash: Dash) -> None:
    dash.login("supervisor", lang="en")
    sort = dash.client.get("/dashboard/work?sort=colour")
    assert sort.status_code == 400
    assert "urgency" in _text(sort.get_data(as_text=True))
    assert dash.client.get("/dashboard/work?stuck=bogus").status_code == 400
    assert dash.client.get("/dashboard/work?size=7").status_code == 400
    cursor = dash.client.get("/dashboard/work?after=garbage")
    assert cursor.status_code == 422  # an Invalid engine error, as on every page
    assert "first page" in _text(cursor.get_data(as_text=True))
    field = dash.client.get("/dashboard/work?definition=repair_ticket&data.fault=x")
    assert field.status_code == 422
    assert "severity" in _text(field.get_data(as_text=True))  # what is offered instead


def test_a_rows_action_forms_load_on_demand_and_return_to_the_view(dash: Dash) -> None:
    (case_id,) = _tickets(dash, 1)
    dash.login("supervisor", lang="en")
    view = "/dashboard/work?team=East"
    fragment = dash.client.get(
        f"/dashboard/cases/{case_id}/actions?next={view.replace('&', '%26').replace('?', '%3F')}",
        headers={"X-Svcflow-Fragment": "1"},
    ).get_data(as_text=True)
    assert "<html" not in fragment
    assert f"/dashboard/cases/{case_id}/fire" in fragment
    assert f'name="next" value="{view}"' in fragment
    assert 'class="action force"' not in fragment  # supervisors cannot force
    page = dash.page(f"/dashboard/cases/{case_id}/actions")
    assert "<html" in page and f"/dashboard/cases/{case_id}/cancel" in page


def test_exports_hold_the_filtered_rows_as_csv_and_xlsx(dash: Dash) -> None:
    _tickets(dash)
    dash.login("supervisor", lang="zh")
    got = dash.client.get("/dashboard/work.csv?team=West")
    assert got.status_code == 200
    assert got.headers["Content-Disposition"].startswith("attachment;")
    text = got.get_data().decode("utf-8")
    assert text.startswith("\ufeff")  # Excel opens it as UTF-8
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert table[0][:3] == ["工单", "业务编号", "客户"]
    assert len(table) == 1 + 3
    assert {row[3] for row in table[1:]} == {"West"}
    assert all(row[10].startswith("已超时") for row in table[1:])

    xlsx = dash.client.get("/dashboard/work.xlsx?team=West")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.get_data())).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0][:3] == ["工单", "业务编号", "客户"]
    assert sorted(row[1] for row in cells[1:]) == ["T-2026-0002", "T-2026-0004", "T-2026-0006"]
    assert all(isinstance(row[0], int) for row in cells[1:])


def test_a_csv_cell_that_looks_like_a_formula_stays_text(dash: Dash) -> None:
    data = {**REPAIR_DATA, "customer": "=HYPERLINK(1)", "team": "East"}
    create_case(dash.sessions, "repair_ticket", data, now=T0)
    dash.login("supervisor", lang="en")
    text = dash.client.get("/dashboard/work.csv").get_data().decode("utf-8")
    assert "'=HYPERLINK(1)" in text


def test_a_bulk_action_previews_without_acting_then_acts_on_exactly_those_cases(
    dash: Dash,
) -> None:
    made = _tickets(dash)
    before = {c: len(_events(dash, c)) for c in made}
    dash.login("supervisor", lang="en")
    page = dash.page("/dashboard/work?team=East")
    assert 'form="bulk" name="view" value="team=East"' in page  # the view the form acts on
    preview = dash.client.post(
        "/dashboard/work/bulk",
        data={
            "csrf_token": csrf(page),
            "view": "team=East",
            "action": "reassign",
            "assignee": "Li Wei",
            "reason": "Wang is on leave",
            "targets": "filter",
        },
    )
    assert preview.status_code == 200
    body = preview.get_data(as_text=True)
    listed = sorted(int(v) for v in re.findall(r'name="case_id" value="(\d+)"', body))
    assert listed == [made[0], made[2], made[4]]
    assert "Nothing has been done yet" in _text(body)
    assert {c: len(_events(dash, c)) for c in made} == before  # the preview changed nothing

    done = dash.client.post(
        "/dashboard/work/bulk/apply",
        data={
            "csrf_token": csrf(body),
            "next": "/dashboard/work?team=East",
            "action": "reassign",
            "assignee": "Li Wei",
            "reason": "Wang is on leave",
            "case_id": [str(c) for c in listed],
        },
    )
    assert done.status_code == 302 and done.headers["Location"] == "/dashboard/work?team=East"
    for case_id in made:
        last = _events(dash, case_id)[-1]
        if case_id in listed:
            assert last.event_type == "reassigned" and last.payload["to"] == "Li Wei"
            assert last.payload["reason"] == "Wang is on leave"
        else:
            assert len(_events(dash, case_id)) == before[case_id]
    assert "3 done, 0 refused" in _text(dash.page("/dashboard/work?team=East&assignee=Li+Wei"))


def test_bulk_needs_a_selection_or_a_filter_and_force_needs_an_administrator(
    dash: Dash,
) -> None:
    made = _tickets(dash, 2)
    dash.login("supervisor", lang="en")
    page = dash.page("/dashboard/work")
    fields = {"csrf_token": csrf(page), "action": "cancel", "reason": "duplicate"}
    nothing = dash.client.post("/dashboard/work/bulk", data={**fields, "targets": "selected"})
    assert nothing.status_code == 302
    assert "Select at least one case" in _text(dash.page("/dashboard/work"))
    everything = dash.client.post("/dashboard/work/bulk", data={**fields, "targets": "filter"})
    assert everything.status_code == 302
    assert "needs a filter" in _text(dash.page("/dashboard/work"))
    forced = dash.client.post(
        "/dashboard/work/bulk/apply",
        data={**fields, "action": "force", "state": "closed", "case_id": [str(made[0])]},
    )
    assert forced.status_code == 403
    assert all(dash.case(c).status == "open" for c in made)


def test_the_search_box_finds_business_keys_customers_and_serials(dash: Dash) -> None:
    made = _tickets(dash, 4)
    create_case(
        dash.sessions,
        "device",
        {"device_serial": "MR-7", "customer": "Hospital 9"},
        business_key="MR-7",
        now=T0,
    )
    dash.login("supervisor", lang="en")

    def found(q: str) -> str:
        response = dash.client.get("/dashboard/find", query_string={"q": q})
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        return response.headers["Location"]

    assert found("T-2026-0003") == f"/dashboard/cases/{made[2]}"
    assert found(f"#{made[1]}") == f"/dashboard/cases/{made[1]}"
    assert found("MR-7") == "/dashboard/devices/MR-7"  # a device file's key is its serial
    assert found("Hospital 2") == "/dashboard/work?customer=Hospital+2"
    # Part of a name: several customers of open cases contain it, so they are listed.
    several = dash.client.get("/dashboard/find?q=Hospital").get_data(as_text=True)
    assert "/dashboard/work?customer=Hospital+0" in several
    assert "/dashboard/work?customer=Hospital+1" in several
    assert found("ital 1") == "/dashboard/work?customer=Hospital+1"
    assert found("CT-404") == "/dashboard/devices/CT-404"  # anything else: a serial
    # LIKE's wildcards are text here: "%" matches no customer.
    assert found("%") == "/dashboard/devices/%25"


def _codes(kind: type[SvcflowError]) -> set[str]:
    found = set()
    for sub in kind.__subclasses__():
        if sub.code != SvcflowError.code:
            found.add(sub.code)
        found |= _codes(sub)
    return found


def test_every_engine_error_code_has_a_chinese_meaning() -> None:
    codes = _codes(SvcflowError)
    assert len(codes) > 30  # the walk found the tree
    assert sorted(codes - set(ERROR_ZH)) == []
    assert sorted(set(ERROR_ZH) - codes) == []  # and none for codes that are gone


def test_a_chinese_page_says_what_a_refusal_means_in_chinese(dash: Dash) -> None:
    (case_id,) = _tickets(dash, 1)
    dash.login("supervisor", lang="zh")
    page = f"/dashboard/cases/{case_id}"
    refused = dash.submit(page, f"/dashboard/cases/{case_id}/fire", trigger="close", reason="x")
    assert refused.status_code == 302
    text = _text(dash.page(page))
    assert "工单当前状态不允许该操作（invalid-trigger）" in text
    assert "'close'" in text  # the engine's own detail follows


def test_fire_forms_are_generated_from_the_payload_schema_and_typed_back(dash: Dash) -> None:
    (case_id,) = _tickets(dash, 1)
    dash.login("supervisor", lang="en")
    page = f"/dashboard/cases/{case_id}"
    body = dash.page(page)
    # contact requires the instant of the first contact: a date-and-time input.
    form = body[body.index('data-trigger="contact"') :]
    form = form[: form.index("</details>")]
    assert 'type="datetime-local"' in form and 'name="p.at"' in form and "required" in form
    assert 'name="payload_form" value="1"' in form

    refused = dash.submit(
        page,
        f"/dashboard/cases/{case_id}/fire",
        trigger="contact",
        payload_form="1",
        **{"p.at": "not a time"},
        reason="called back",
    )
    assert refused.status_code == 302
    assert "is not a datetime value" in _text(dash.page(page))
    assert dash.case(case_id).state == "logged"

    done = dash.submit(
        page,
        f"/dashboard/cases/{case_id}/fire",
        trigger="contact",
        payload_form="1",
        **{"p.at": "2025-09-30T10:20"},  # Beijing wall time, as the page shows times
        reason="called back",
    )
    assert done.status_code == 302
    last = dash.history(case_id)[-1]
    assert (last.trigger, last.payload["at"]) == ("contact", "2025-09-30T02:20:00Z")


def test_kpi_counts_read_as_cases_and_device_time_as_hours() -> None:
    from api.dashboard.kpiboard import counted

    assert counted("device_uptime", 2.25818e8, 2.48832e8, "en") == "62,727 h / 69,120 h"
    assert counted("device_uptime", 2.25818e8, 2.48832e8, "zh") == "62,727小时 / 69,120小时"
    assert counted("timely_resolution", 1234, 1250, "en") == "1,234 / 1,250"


def test_the_kpi_table_exports_as_xlsx_in_the_readers_language(
    dash: Dash, kpi_config: Path
) -> None:
    kpi_config.write_text(dashboard_tests.KPI_CONFIG, "utf-8")
    create_ticket(dash.sessions, team="north")  # its 4 h response clock has run out by NOW
    dash.login("supervisor", lang="zh")
    assert "/dashboard/kpis.xlsx?month=2025-08" in dash.page("/dashboard/kpis")
    got = dash.client.get("/dashboard/kpis.xlsx?month=2025-09&by=team")
    assert got.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(got.get_data())).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == ["指标", "分组", "计数", "数值", "目标", "是否达标"]
    north = next(row for row in cells if row[1] == "north")
    assert north[0] == "响应及时率" and north[2] == "0 / 1" and north[3] == "0%"
    assert north[5] == "未达标"
    assert dash.client.get("/dashboard/kpis.xlsx?month=2025-13").status_code == 400
