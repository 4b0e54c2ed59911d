"""The team x target summary and the drill-down behind each of its figures (R-KPI-02), on a
seeded month of the bundled workflows: surveys count for their ticket's team, devices for the
team on their file (else the team serving them), complaints for their regional team, and
every figure's drill-down lists exactly the cases it counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session, sessionmaker

from engine.cli import main
from engine.core.definition import parse_source
from engine.errors import KpiError
from engine.runtime.clock import ManualClock
from engine.services import kpi_summary, kpis, workbench
from engine.services.kpis import KpiSelection
from engine.services.workbench import WorkbenchQuery
from tests.conftest import WORKFLOWS
from tests.factories import create_case, fire

CONFIG = parse_source((WORKFLOWS / "catalog" / "kpis.yaml").read_text("utf-8"))
OCT = datetime(2025, 10, 13, 1, 0, tzinfo=UTC)  # Monday 13 Oct 2025, 09:00 in Shanghai
NOV = datetime(2025, 11, 5, 2, 0, tzinfo=UTC)  # the report is read in November
MONTH_END = datetime(2025, 10, 31, 16, 0, tzinfo=UTC)  # 1 Nov 00:00 in Shanghai
MONTH_SECONDS = 31 * 86400.0
SINGLE_CLOCK = ("response_timeliness", "on_time_arrival", "timely_resolution", "satisfaction")


def _ticket(sessions: sessionmaker[Session], team: str, serial: str, at: datetime) -> int:
    data = {"customer": "瑞金医院", "device_serial": serial, "fault": "黑屏"}
    return create_case(
        sessions, "repair_ticket", {**data, "priority": "normal", "team": team}, now=at
    ).case.id


def _device(sessions: sessionmaker[Session], serial: str, **data: Any) -> int:
    return create_case(
        sessions,
        "device",
        {"device_serial": serial, "customer": "瑞金医院", **data},
        business_key=serial,
        now=datetime(2025, 1, 6, 1, 0, tzinfo=UTC),
    ).case.id


def _survey(sessions: sessionmaker[Session], ticket: int, score: int) -> int:
    survey = create_case(
        sessions,
        "satisfaction_survey",
        {"customer": "瑞金医院", "service_definition": "repair_ticket"},
        parent_id=ticket,
        now=OCT + timedelta(days=2),
    ).case.id
    fire(sessions, survey, "score", {"score": score}, now=OCT + timedelta(days=3))
    return survey


@pytest.fixture
def month(sessions: sessionmaker[Session], publish_workflow: Any) -> dict[str, int]:
    """October 2025: an East ticket answered on time, two West tickets (one late, one never
    answered), a survey of each team, four device files and two complaints."""
    for name in ("device", "loaner", "satisfaction_survey", "repair_ticket", "complaint"):
        publish_workflow(f"{name}.yaml")
    made = {
        "dev_east": _device(sessions, "DEV-E1", team="East"),  # the team on its file
        "dev_w1": _device(sessions, "DEV-W1"),
        "dev_w2": _device(sessions, "DEV-W2"),  # West serves it (a September ticket)
        "dev_none": _device(sessions, "DEV-N"),  # never served, no team on file
    }
    made["september"] = _ticket(sessions, "West", "DEV-W2", datetime(2025, 9, 20, tzinfo=UTC))
    made["east"] = _ticket(sessions, "East", "DEV-E1", OCT)
    fire(sessions, made["east"], "contact", {"at": "2025-10-13T01:40:00Z"}, now=OCT + 40 * _MIN)
    made["west_late"] = _ticket(sessions, "West", "DEV-W1", OCT)
    fire(
        sessions, made["west_late"], "contact", {"at": "2025-10-13T03:00:00Z"}, now=OCT + _HOUR * 2
    )
    made["west_silent"] = _ticket(sessions, "West", "DEV-W1", OCT + _HOUR * 5)
    made["survey_east"] = _survey(sessions, made["east"], 5)
    made["survey_west"] = _survey(sessions, made["west_late"], 4)
    made["survey_west_low"] = _survey(sessions, made["west_silent"], 3)
    complaint = {"customer": "瑞金医院", "category": "quality", "severity": "minor"}
    team = {"manager": "Zhao", "expert": "Chen", "regional_lead": "Wu"}
    made["complaint_east"] = create_case(
        sessions,
        "complaint",
        {**complaint, "description": "x", "team": team, "regional_team": "East"},
        now=OCT,
    ).case.id
    return made


_MIN, _HOUR = timedelta(minutes=1), timedelta(hours=1)


def _summary(sessions: sessionmaker[Session]) -> kpi_summary.TeamSummary:
    with sessions() as session, session.begin():
        return kpi_summary.team_summary(session, CONFIG, month="2025-10", now=NOV)


def _cell(summary: kpi_summary.TeamSummary, group: str, kpi: str) -> kpi_summary.SummaryCell:
    cells = dict(summary.rows)[group]
    return next(c for c in cells if c.kpi == kpi)


def _selected(sessions: sessionmaker[Session], **selection: Any) -> set[int]:
    with sessions() as session, session.begin():
        return kpis.selected_cases(
            session, CONFIG, KpiSelection(month="2025-10", **selection), now=NOV
        )


def test_each_team_gets_a_row_and_each_target_a_column(
    sessions: sessionmaker[Session], month: dict[str, int]
) -> None:
    summary = _summary(sessions)
    assert summary.columns == CONFIG["summary"]
    assert summary.targets["satisfaction"] == 0.99
    assert summary.targets["device_uptime"] == 0.995
    assert summary.targets["response_timeliness"] is None  # the bids name no share for it
    assert [group for group, _ in summary.rows] == [kpis.TOTAL, "East", "West", kpis.NONE]

    # Surveys count for the team of the ticket that spawned them.
    assert _cell(summary, "East", "satisfaction").status == kpi_summary.MET
    west = _cell(summary, "West", "satisfaction")
    assert west.row is not None and (west.row.numerator, west.row.denominator) == (1, 2)
    assert west.status == kpi_summary.NOT_MET
    # Response: East answered in 40 minutes, West late once and never once.
    east = _cell(summary, "East", "response_timeliness")
    assert east.row is not None and (east.row.numerator, east.row.denominator) == (1, 1)
    assert east.status == kpi_summary.NO_TARGET
    west = _cell(summary, "West", "response_timeliness")
    assert west.row is not None and (west.row.numerator, west.row.denominator) == (0, 2)
    # The complaint counts for its regional team; West had none: no data, not a zero.
    assert _cell(summary, "East", "complaint_deadlines").row is not None
    assert _cell(summary, "West", "complaint_deadlines").status == kpi_summary.NO_DATA


def test_uptime_counts_each_device_for_the_team_on_its_file_else_the_team_serving_it(
    sessions: sessionmaker[Session], month: dict[str, int]
) -> None:
    summary = _summary(sessions)
    east = _cell(summary, "East", "device_uptime").row
    down_east = (MONTH_END - OCT).total_seconds()  # the East ticket never came back up
    assert east is not None
    assert (east.numerator, east.denominator) == (MONTH_SECONDS - down_east, MONTH_SECONDS)
    assert east.met is False
    west = _cell(summary, "West", "device_uptime").row
    down_west = down_east + (MONTH_END - OCT - 5 * _HOUR).total_seconds()
    assert west is not None
    assert (west.numerator, west.denominator) == (2 * MONTH_SECONDS - down_west, 2 * MONTH_SECONDS)
    never = _cell(summary, kpis.NONE, "device_uptime")
    assert never.row is not None and never.row.value == 1.0 and never.status == kpi_summary.MET
    total = _cell(summary, kpis.TOTAL, "device_uptime").row
    assert total is not None and total.denominator == 4 * MONTH_SECONDS

    # Its drill-down: the device files counted, and the tickets whose downtime was counted.
    assert _selected(sessions, kpi="device_uptime", group_by="team", group="West") == {
        month["dev_w1"],
        month["dev_w2"],
    }
    breached = _selected(
        sessions, kpi="device_uptime", group_by="team", group="West", outcome=kpis.BREACHED
    )
    assert breached == {month["west_late"], month["west_silent"]}
    met = _selected(sessions, kpi="device_uptime", group_by="team", group="West", outcome="met")
    assert met == {month["dev_w2"]}


def test_every_summary_figure_drills_down_to_exactly_the_cases_it_counted(
    sessions: sessionmaker[Session], month: dict[str, int]
) -> None:
    summary = _summary(sessions)
    checked = 0
    for group, cells in summary.rows:
        for cell in cells:
            if cell.row is None or cell.kpi not in SINGLE_CLOCK:
                continue
            counted = _selected(sessions, kpi=cell.kpi, group_by="team", group=group)
            met = _selected(sessions, kpi=cell.kpi, group_by="team", group=group, outcome="met")
            missed = _selected(
                sessions, kpi=cell.kpi, group_by="team", group=group, outcome="breached"
            )
            assert len(counted) == cell.row.denominator, (group, cell.kpi)
            assert len(met) == cell.row.numerator, (group, cell.kpi)
            assert met | missed == counted and not met & missed
            checked += 1
    assert checked >= 8
    low = _selected(sessions, kpi="satisfaction", group_by="team", group="West", outcome="breached")
    assert low == {month["survey_west_low"]}
    # Every case of the complaint deadlines is listed once, however many of its clocks counted.
    complaint = _cell(summary, "East", "complaint_deadlines").row
    listed = _selected(sessions, kpi="complaint_deadlines", group_by="team", group="East")
    assert listed == {month["complaint_east"]} and complaint is not None
    assert complaint.denominator >= 1


def test_the_workbench_lists_a_figures_cases_closed_ones_included(
    sessions: sessionmaker[Session], month: dict[str, int]
) -> None:
    selection = KpiSelection("satisfaction", "2025-10", "team", "West")
    ids = _selected(sessions, kpi="satisfaction", group_by="team", group="West")
    with sessions() as session, session.begin():
        page = workbench.page(
            session, WorkbenchQuery(kpi=selection, counted_in=frozenset(ids)), now=NOV
        )
        plain = workbench.page(session, WorkbenchQuery(definition="satisfaction_survey"), now=NOV)
    assert page.total == 2  # the figure's denominator
    assert {r.case.id for r in page.rows} == {month["survey_west"], month["survey_west_low"]}
    # The conforming survey is closed: the plain workbench (open cases) does not list it.
    assert {r.case.id for r in plain.rows} == {month["survey_west_low"]}


def test_a_drill_down_of_an_unknown_kpi_or_outcome_says_what_exists(
    sessions: sessionmaker[Session], month: dict[str, int]
) -> None:
    with pytest.raises(KpiError, match=r"no KPI 'uptime'.*device_uptime"):
        _selected(sessions, kpi="uptime")
    with pytest.raises(KpiError, match="counted, met, breached"):
        _selected(sessions, kpi="satisfaction", outcome="late")


def test_a_summary_naming_a_kpi_the_configuration_lacks_is_refused(
    sessions: sessionmaker[Session],
) -> None:
    config = {**CONFIG, "summary": ["satisfaction", "uptime_typo"]}
    with sessions() as session, session.begin(), pytest.raises(KpiError, match="uptime_typo"):
        kpi_summary.team_summary(session, config, month="2025-10", now=NOV)


def test_without_a_summary_list_the_columns_are_the_kpis_with_targets() -> None:
    config = {k: v for k, v in CONFIG.items() if k != "summary"}
    assert kpi_summary.columns(config) == ["device_uptime", "satisfaction", "timely_resolution"]


def test_last_full_month_is_the_whole_month_before_in_the_configured_zone() -> None:
    # 00:30 on 1 December in Shanghai is 30 November in UTC: November is over there.
    assert kpis.last_full_month(datetime(2025, 11, 30, 16, 30, tzinfo=UTC), "Asia/Shanghai") == (
        "2025-11"
    )
    assert kpis.last_full_month(datetime(2025, 11, 30, 15, 30, tzinfo=UTC), "Asia/Shanghai") == (
        "2025-10"
    )
    assert kpis.last_full_month(datetime(2026, 1, 10, tzinfo=UTC), "Asia/Shanghai") == "2025-12"


def test_the_command_line_prints_the_summary_for_last_month(
    db_url: str, month: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("engine.cli.app.SystemClock", lambda: ManualClock(NOV))

    def svcflow(*args: str) -> Result:
        config = str(WORKFLOWS / "catalog" / "kpis.yaml")
        return CliRunner().invoke(
            main, ["--database-url", db_url, "kpis", "--summary", "--config", config, *args]
        )

    shown = svcflow()  # no month: October, the last full one
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "month 2025-10"
    assert "satisfaction (>= 99.0%)" in lines[1] and "device_uptime (>= 99.5%)" in lines[1]
    west = next(line for line in lines if line.startswith("West"))
    assert "50.00% NOT MET" in west and "no data" in west  # satisfaction; no complaint
    as_json = json.loads(svcflow("--format", "json").output)
    assert as_json["month"] == "2025-10"
    assert [row["group"] for row in as_json["rows"]] == [kpis.TOTAL, "East", "West", kpis.NONE]
    bad = svcflow("--month", "2025-13")
    assert bad.exit_code != 0 and "2025-13" in bad.output
