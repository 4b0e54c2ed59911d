"""Every scenario shipped with the bundled workflows passes on virtual time.

The scenarios under workflows/scenarios/ are the catalog's promises written as checks (an
emergency ticket on site 1h05m after its report, a complaint deadline across National Day,
...). They run through the same simulator process owners use: `svcflow simulate
workflows/scenarios/*.yaml`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.definition import parse_source
from engine.errors import ExpressionError
from engine.services import cases, kpis, sla_clocks
from engine.services.definitions import get_definition
from engine.simulation import run_scenario_file
from engine.store.models import Case, CaseSla
from tests.conftest import WORKFLOWS
from tests.factories import (
    COMPLAINT_ROUNDS,
    complaint_with_two_rectification_rounds,
    create_case,
    deliver_due,
    fire,
)

KPI_CONFIG = parse_source((WORKFLOWS / "catalog" / "kpis.yaml").read_text("utf-8"))
SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "workflows" / "scenarios").glob("*.yaml"))


def test_the_bundled_workflows_ship_scenarios() -> None:
    assert len(SCENARIOS) >= 6


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_passes(path: Path) -> None:
    report = run_scenario_file(path)
    failures = [f"steps[{s.index}] {s.kind}: {s.message}" for s in report.failures]
    assert report.ok, f"{path.name}: " + "; ".join(failures)


# --- SLA conditions and clocks counted from an earlier instant (issue 12 item 9) -------------
# The scenarios above show each newly exact promise on virtual time; these check what a
# scenario cannot: the KPIs, the refusal of a bad instant, and the kept clocks against a
# recomputation from the history, on every database.

SPARE = {"part_model": "CT-TUBE-1", "requested_by": "王工", "customer": "濮阳市人民医院"}
ISSUE = {"outbound_record": "CK-1", "signed_by": "库管李", "store": "郑州总库"}
MONDAY = datetime(2025, 10, 13, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


def _clock_rows(session: Session, case_id: int) -> list[tuple[Any, ...]]:
    rows = session.execute(
        select(CaseSla).where(CaseSla.case_id == case_id).order_by(CaseSla.sla, CaseSla.round)
    ).scalars()
    return [
        (r.sla, r.round, r.status, r.started_at, r.stopped_at, r.due_at, r.elapsed_seconds)
        for r in rows
    ]


def test_common_parts_kpi_leaves_out_custom_and_rejected_requests_r_spr_06(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """R-SPR-06: common parts reach the site within 24 hours. A request that turns out custom,
    or is rejected, is not a common part delivered late or in time: its round is not
    applicable and the KPI counts neither way."""
    publish_workflow("spare_part.yaml")
    in_time = create_case(sessions, "spare_part", SPARE, now=MONDAY).case.id
    late = create_case(sessions, "spare_part", SPARE, now=MONDAY).case.id
    custom = create_case(sessions, "spare_part", SPARE, now=MONDAY).case.id
    rejected = create_case(sessions, "spare_part", SPARE, now=MONDAY).case.id
    for case_id in (in_time, late):
        fire(sessions, case_id, "approve", {"reviewed_by": "张经理"}, now=MONDAY)
        fire(sessions, case_id, "issue", ISSUE, now=MONDAY + timedelta(hours=1))
    fire(sessions, in_time, "arrive_on_site", {}, now=MONDAY + timedelta(hours=20))
    custom_payload = {"confirmed_by": "王工", "special": False}
    fire(sessions, custom, "confirm_custom", custom_payload, now=MONDAY + timedelta(hours=2))
    refusal = {"reviewed_by": "张经理", "note": "非本院设备"}
    fire(sessions, rejected, "reject", refusal, now=MONDAY + timedelta(hours=3))

    now = MONDAY + timedelta(hours=30)
    with sessions() as session, session.begin():
        statuses = {
            case_id: session.execute(
                select(CaseSla.status).where(
                    CaseSla.case_id == case_id, CaseSla.sla == "common_part_on_site"
                )
            ).scalar_one()
            for case_id in (in_time, late, custom, rejected)
        }
        rows = kpis.monthly_kpis(session, KPI_CONFIG, month="2025-10", group_by=None, now=now)
    # The late part's clock is still open: a running clock past due counts as breached.
    assert statuses == {
        in_time: "met",
        late: "running",
        custom: "not_applicable",
        rejected: "not_applicable",
    }
    (delivery,) = [r for r in rows if r.kpi == "common_part_delivery"]
    assert (delivery.numerator, delivery.denominator) == (1, 2)


def test_complex_fault_kpi_counts_complex_tickets_only_r_rep_05(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """R-REP-05 (B4): a solution and the repair started within 48 hours, for complex faults;
    a general fault's ticket has no such clock to meet or break."""
    for name in ("device", "loaner", "satisfaction_survey", "repair_ticket"):
        publish_workflow(f"{name}.yaml")
    ticket = {"customer": "商丘市第一人民医院", "fault": "报警", "priority": "normal"}
    late = create_case(
        sessions,
        "repair_ticket",
        {**ticket, "device_serial": "SN-1", "severity": "complex"},
        now=MONDAY,
    ).case.id
    general = create_case(
        sessions,
        "repair_ticket",
        {**ticket, "device_serial": "SN-2", "severity": "general"},
        now=MONDAY,
    ).case.id
    deliver_due(sessions, late, MONDAY + timedelta(hours=48, seconds=1))
    with sessions() as session, session.begin():
        breaches = [
            e.payload["sla"] for e in cases.history(session, late) if e.event_type == "sla_breached"
        ]
        assert "complex_repair_start" in breaches
        assert ("complex_repair_start", 1, "not_applicable") in {
            row[:3] for row in _clock_rows(session, general)
        }
        rows = kpis.monthly_kpis(
            session, KPI_CONFIG, month="2025-10", group_by=None, now=MONDAY + timedelta(days=3)
        )
    (start,) = [r for r in rows if r.kpi == "complex_repair_start"]
    assert (start.numerator, start.denominator) == (0, 1)


def test_a_contract_date_in_the_future_is_refused_and_nothing_is_stored_r_ins_01(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow("device.yaml")
    device = {"device_serial": "CT-1", "customer": "新乡市中心医院"}
    ahead = {**device, "contract_signed_at": "2025-10-14T09:00:00+08:00"}

    with pytest.raises(ExpressionError) as caught:
        create_case(sessions, "device", ahead, now=MONDAY)

    assert caught.value.message == (
        "Expression at slas[0].counted_from gave 2025-10-14T01:00:00Z, after the instant the "
        "clock starts at (2025-10-13T01:00:00Z): a clock can count from an earlier instant only."
    )
    assert caught.value.hint is not None and "may not lie in the future" in caught.value.hint
    with sessions() as session:
        assert session.execute(select(func.count()).select_from(Case)).scalar_one() == 0
    # The same device with its real contract date: 30 days from it, not from the file.
    signed = {**device, "contract_signed_at": "2025-09-20T10:00:00+08:00"}
    case_id = create_case(sessions, "device", signed, now=MONDAY).case.id
    with sessions() as session:
        (installation, *_) = _clock_rows(session, case_id)
    assert installation[:2] == ("installation", 1)
    assert installation[5] == datetime(2025, 10, 20, 2, 0, tzinfo=UTC)  # 20 Oct, 10:00 Beijing


def test_kept_clocks_agree_with_a_recomputation_from_the_history_r_cmp_04(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """The rectification rounds (each counted from the answer) and the conditional clocks
    are advanced one event at a time with the case as each event left it; recomputing them
    from the history, folding the data out of it, must give the same rows."""
    publish_workflow("complaint.yaml")
    publish_workflow("spare_part.yaml")
    complaint = complaint_with_two_rectification_rounds(sessions)
    part = create_case(sessions, "spare_part", SPARE, now=MONDAY).case.id
    custom_payload = {"confirmed_by": "王工", "special": False}
    fire(sessions, part, "confirm_custom", custom_payload, now=MONDAY + timedelta(hours=2))
    for case_id, now in ((complaint, COMPLAINT_ROUNDS["fed_back"]), (part, MONDAY)):
        with sessions() as session, session.begin():
            kept = _clock_rows(session, case_id)
            case = cases.get_case(session, case_id)
            definition = get_definition(session, case.definition_name, case.definition_version)
            sla_clocks.recompute(session, definition, case, now=now)
            assert _clock_rows(session, case_id) == kept
    with sessions() as session:
        rounds = [row for row in _clock_rows(session, complaint) if row[0] == "rectification"]
    answered = COMPLAINT_ROUNDS["created"] + timedelta(days=1)
    assert [(r[1], r[2], r[3]) for r in rounds] == [(1, "met", answered), (2, "met", answered)]
