"""The KPI page's team x target summary, its drill-downs into the workbench, its XLSX export
and the summary API, through the Flask test client on SQLite (R-KPI-02). The drill-down's case
count must equal the figure it was opened from."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta
from pathlib import Path

import openpyxl

from api.dashboard import charts
from tests.api import test_dashboard as dashboard_tests
from tests.api.test_dashboard import KPI_CONFIG, Dash, _text
from tests.conftest import T0
from tests.factories import create_ticket, fire

db_url, kpi_config, dash = dashboard_tests.db_url, dashboard_tests.kpi_config, dashboard_tests.dash
HOUR = timedelta(hours=1)


def _month(dash: Dash) -> dict[str, list[int]]:
    """September 2025 (the app's clock is 30 September, 15:00 in Beijing): two north tickets
    left unanswered past their 4 h clock, a south ticket answered in time and one not."""
    made: dict[str, list[int]] = {"north": [], "south_late": [], "south_on_time": []}
    made["north"] = [create_ticket(dash.sessions, team="north") for _ in range(2)]
    on_time = create_ticket(dash.sessions, team="south")
    fire(dash.sessions, on_time, "start", now=T0 + HOUR)
    made["south_on_time"] = [on_time]
    made["south_late"] = [create_ticket(dash.sessions, team="south")]
    return made


def _summary_cell(body: str, group: str, kpi: str) -> str:
    table = body[body.index('data-testid="kpi-summary"') :]
    row = table[table.index(f'<tr data-group="{group}">') :]
    row = row[: row.index("</tr>")]
    cell = row[row.index(f'data-kpi="{kpi}"') :]
    return cell[: cell.index("</td>")]


def _href(fragment: str) -> str:
    found = re.search(r'href="([^"]+)"', fragment)
    assert found, fragment
    return html.unescape(found.group(1))


def _listed(body: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr data-case="(\d+)"', body)]


def test_the_summary_answers_each_team_and_each_figure_opens_its_cases(
    dash: Dash, kpi_config: Path
) -> None:
    kpi_config.write_text(KPI_CONFIG, "utf-8")
    made = _month(dash)
    dash.login("supervisor", lang="en")
    body = dash.page("/dashboard/kpis?month=2025-09")
    summary = _text(body[body.index('data-testid="kpi-summary"') : body.index("</section>")])
    assert "Targets by Team" in summary and "Target ≥ 99%" in summary
    assert re.search(r"\(all\) 25% not met north 0% not met south 50% not met", summary)

    # Each cell opens the workbench on exactly the cases it counted, closed or open.
    for group, expected in (
        ("north", made["north"]),
        ("south", made["south_late"] + made["south_on_time"]),
        ("(all)", made["north"] + made["south_late"] + made["south_on_time"]),
    ):
        drill = dash.page(_href(_summary_cell(body, group, "response_timeliness")))
        assert sorted(_listed(drill)) == sorted(expected), group
        assert f"{len(expected)} cases, open and closed." in _text(drill)
        assert "Cases counted in Response timeliness" in _text(drill)

    # The grouped page: its bars, table rows and "missed" links open the same cases.
    grouped = dash.page("/dashboard/kpis?month=2025-09&by=team")
    chart = grouped[grouped.index('data-kpi="response_timeliness"', grouped.index("</section>")) :]
    rows = chart[chart.index('<table class="kpi-rows">') :]
    south_row = re.search(r'<tr class="[a-z_]+"><td><a href="[^"]+">south</a>.*?</tr>', rows)
    assert south_row is not None
    links = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', south_row.group(0))]
    assert len(links) == 4  # group, value, counted, missed
    assert sorted(_listed(dash.page(links[0]))) == sorted(
        made["south_late"] + made["south_on_time"]
    )
    assert _listed(dash.page(links[3])) == made["south_late"]  # the missed ones
    bars = chart[chart.index('<svg class="chart bars"') :]
    assert links[0] in html.unescape(bars[: bars.index("</svg>")])
    trend = chart[chart.index('<svg class="chart trend"') :]
    assert "kpi_month=2025-09" in html.unescape(trend[: trend.index("</svg>")])

    # The drill-down keeps its figure when the workbench's own filter is applied.
    drill = dash.page(_href(_summary_cell(body, "north", "response_timeliness")))
    assert '<input type="hidden" name="kpi" value="response_timeliness">' in drill
    assert '<input type="hidden" name="kpi_group" value="north">' in drill

    dash.set_language("zh")
    zh = _text(dash.page("/dashboard/kpis?month=2025-09"))
    assert "各团队目标达成情况" in zh and "未达标" in zh


def test_a_process_owner_reads_the_figures_without_links_to_the_workbench(
    dash: Dash, kpi_config: Path
) -> None:
    """Process owners read the KPIs but do not work the cases: no figure links to the
    workbench, which would only answer them 403."""
    kpi_config.write_text(KPI_CONFIG, "utf-8")
    _month(dash)
    dash.login("process_owner", lang="en")
    for by in ("", "&by=team"):
        body = dash.page(f"/dashboard/kpis?month=2025-09{by}")
        assert "north" in body and "25%" in body
        assert "/dashboard/work" not in body, by
    dash.login("supervisor", lang="en")
    assert "/dashboard/work?kpi=" in html.unescape(dash.page("/dashboard/kpis?month=2025-09"))


def test_a_drill_down_with_bad_values_is_a_400_page_saying_what_to_do(
    dash: Dash, kpi_config: Path
) -> None:
    kpi_config.write_text(KPI_CONFIG, "utf-8")
    dash.login("supervisor", lang="en")
    unknown = dash.client.get("/dashboard/work?kpi=uptime&kpi_month=2025-09")
    assert unknown.status_code == 400
    assert "no KPI 'uptime'" in _text(unknown.get_data(as_text=True))
    assert "response_timeliness" in unknown.get_data(as_text=True)
    outcome = dash.client.get(
        "/dashboard/work?kpi=response_timeliness&kpi_month=2025-09&kpi_outcome=x"
    )
    assert outcome.status_code == 400 and "counted, met or breached" in _text(
        outcome.get_data(as_text=True)
    )
    month = dash.client.get("/dashboard/work?kpi=response_timeliness&kpi_month=9-2025")
    assert month.status_code == 400


def test_the_summary_exports_as_xlsx_in_the_readers_language(dash: Dash, kpi_config: Path) -> None:
    kpi_config.write_text(KPI_CONFIG, "utf-8")
    _month(dash)
    dash.login("supervisor", lang="zh")
    page = dash.page("/dashboard/kpis?month=2025-09")
    assert "/dashboard/kpis/summary.xlsx?month=2025-09" in page
    got = dash.client.get("/dashboard/kpis/summary.xlsx?month=2025-09")
    assert got.status_code == 200
    assert 'filename="svcflow-kpi-summary-2025-09-team.xlsx"' in got.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(got.get_data())).active
    assert sheet is not None
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == ["团队", "响应及时率 ≥ 99%", "是否达标"]
    assert cells[1:] == [
        ["（全部）", "25%", "未达标"],
        ["north", "0%", "未达标"],
        ["south", "50%", "未达标"],
    ]
    assert dash.client.get("/dashboard/kpis/summary.xlsx?month=2025-13").status_code == 400
    assert dash.client.get("/dashboard/kpis/summary.xlsx?by=region").status_code == 400


def test_the_summary_api_gives_each_group_its_verdicts_as_json_and_csv(
    dash: Dash, kpi_config: Path
) -> None:
    kpi_config.write_text(KPI_CONFIG, "utf-8")
    _month(dash)
    auth = {"Authorization": f"Bearer {dash.tokens['supervisor']}"}
    got = dash.client.get("/api/v1/kpis/summary?month=2025-09", headers=auth)
    assert got.status_code == 200, got.get_data(as_text=True)
    body = got.get_json()
    assert body["by"] == "team" and body["columns"] == [
        {"kpi": "response_timeliness", "target": 0.99}
    ]
    south = next(r for r in body["rows"] if r["group"] == "south")
    assert south["cells"] == [
        {
            "kpi": "response_timeliness",
            "value": 0.5,
            "numerator": 1,
            "denominator": 2,
            "status": "not_met",
        }
    ]
    # Without a month: the last full one (the clock is in September 2025 in Beijing).
    default = dash.client.get("/api/v1/kpis/summary", headers=auth).get_json()
    assert default["month"] == "2025-08" and [r["group"] for r in default["rows"]] == ["(all)"]
    assert default["rows"][0]["cells"][0]["status"] == "no_data"
    table = dash.client.get("/api/v1/kpis/summary?month=2025-09&format=csv", headers=auth)
    lines = list(csv.reader(io.StringIO(table.get_data(as_text=True))))
    assert lines[0] == ["group", "kpi", "numerator", "denominator", "value", "target", "status"]
    assert ["north", "response_timeliness", "0.0", "2.0", "0.0", "0.99", "not_met"] in lines
    bad = dash.client.get("/api/v1/kpis/summary?month=2025-9", headers=auth)
    assert bad.status_code == 422 and "month" in bad.get_data(as_text=True)


def test_the_trend_axis_spans_at_least_five_points_of_a_share() -> None:
    low, high = charts._range([0.992, 0.995, 0.993], ratio=True)
    assert high == 1.0 and high - low >= 0.05  # 0.3 points stay a small move
    low, high = charts._range([0.5, 0.503], ratio=True)
    assert low <= 0.5 and high >= 0.503 and high - low >= 0.05 - 1e-9
    low, high = charts._range([0.001, 0.002], ratio=True)
    assert low == 0.0 and high >= 0.05
    low, high = charts._range([4.2, 4.3], ratio=False)
    assert high - low >= 1.0
