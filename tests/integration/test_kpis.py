"""Monthly KPIs and the audit sample (R-KPI-02, R-KPI-03, R-KPI-04) on real workflows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.core.definition import parse_source
from engine.errors import KpiError
from engine.services import cases, kpis
from tests.conftest import ADMIN, WORKFLOWS
from tests.factories import create_case, fire

CONFIG = parse_source((WORKFLOWS / "catalog" / "kpis.yaml").read_text("utf-8"))
OCT = datetime(2025, 10, 13, 1, 0, tzinfo=UTC)  # Monday 13 Oct 2025, 09:00 in Shanghai


def _ticket(sessions, now, team, serial):  # type: ignore[no-untyped-def]
    data = {
        "customer": "濮阳市人民医院",
        "device_serial": serial,
        "fault": "黑屏",
        "priority": "normal",
        "team": team,
    }
    return create_case(sessions, "repair_ticket", data, now=now).case.id


def _contact(sessions, case_id, at):  # type: ignore[no-untyped-def]
    fire(sessions, case_id, "contact", {"at": at.isoformat().replace("+00:00", "Z")}, now=at)


def _row(rows, kpi, group=kpis.TOTAL):  # type: ignore[no-untyped-def]
    return next(r for r in rows if r.kpi == kpi and r.group == group)


def test_response_timeliness_per_team_r_kpi_02(sessions, publish_workflow) -> None:
    for name in ("device", "loaner", "satisfaction_survey", "repair_ticket"):
        publish_workflow(f"{name}.yaml")
    on_time = _ticket(sessions, OCT, "north", "SN-1")
    _contact(sessions, on_time, OCT + timedelta(minutes=40))
    late = _ticket(sessions, OCT, "south", "SN-2")
    _contact(sessions, late, OCT + timedelta(hours=2))
    _ticket(sessions, OCT, "south", "SN-3")  # not contacted by the time of the report
    with sessions() as s, s.begin():
        rows = kpis.monthly_kpis(
            s, CONFIG, month="2025-10", group_by="team", now=OCT + timedelta(minutes=30, hours=2)
        )
    total = _row(rows, "response_timeliness")
    # The third ticket's first hour has passed too: a running clock past due is breached.
    assert (total.numerator, total.denominator) == (1, 3)
    assert _row(rows, "response_timeliness", "north").value == 1.0
    south = _row(rows, "response_timeliness", "south")
    assert (south.numerator, south.denominator, south.value) == (0, 2, 0.0)  # late and open


def test_satisfaction_and_share_below_four_r_fup_02(sessions, publish_workflow) -> None:
    publish_workflow("satisfaction_survey.yaml")
    survey = {"customer": "A", "service_definition": "repair_ticket"}
    for score in (5, 3, 4, 5):
        case_id = create_case(sessions, "satisfaction_survey", survey, now=OCT).case.id
        fire(sessions, case_id, "score", {"score": score}, now=OCT)
    with sessions() as s, s.begin():
        rows = kpis.monthly_kpis(s, CONFIG, month="2025-10", group_by=None, now=OCT)
    assert _row(rows, "satisfaction_average").value == 17 / 4
    assert _row(rows, "satisfaction").value == 0.75
    assert _row(rows, "satisfaction").met is False  # target 99%
    assert _row(rows, "satisfaction_below_threshold").value == 0.25


def test_audit_sample_is_reproducible_and_at_least_a_fifth_r_kpi_04(
    sessions, publish_workflow
) -> None:
    publish_workflow("loaner.yaml")
    loaner = {"device_serial": "X", "customer": "A", "reason": "requested"}
    made = []
    for _ in range(11):
        made.append(create_case(sessions, "loaner", loaner, now=OCT).case.id)
        with sessions() as s, s.begin():
            cases.cancel_case(s, made[-1], actor=ADMIN, now=OCT, reason="test")  # not completed
    with sessions() as s, s.begin():
        assert kpis.audit_sample(s, CONFIG, quarter="2025-Q4", seed=7) == []
        s.execute(kpis.cases.update().values(status="completed"))
        first = kpis.audit_sample(s, CONFIG, quarter="2025-Q4", seed=7)
        again = kpis.audit_sample(s, CONFIG, quarter="2025Q4", seed=7)
        by_seed = {tuple(kpis.audit_sample(s, CONFIG, quarter="2025-Q4", seed=n)) for n in range(5)}
    assert first == again and len(first) == 3  # ceil(0.2 * 11)
    assert len(set(first)) == 3 and set(first) <= set(made)  # three distinct records
    assert len(by_seed) > 1  # the seed picks the sample: it is drawn, not always the same


def test_bad_month_and_grouping_are_clear_errors(sessions) -> None:
    import pytest

    with sessions() as s, s.begin(), pytest.raises(KpiError, match="YYYY-MM"):
        kpis.monthly_kpis(s, CONFIG, month="10/2025", group_by=None, now=OCT)
    with sessions() as s, s.begin(), pytest.raises(KpiError, match="team, customer, device"):
        kpis.monthly_kpis(s, CONFIG, month="2025-10", group_by="region", now=OCT)
