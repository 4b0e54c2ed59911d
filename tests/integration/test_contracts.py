"""Service contracts on SQLite and PostgreSQL: loading and versions, the terms a case takes,
supervision by contract and the monthly compliance report (issue 13)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.core.definition import parse_source
from engine.errors import (
    ContractInvalid,
    ContractNotFound,
    ContractNotInForce,
    DefinitionSourceError,
    ParameterInvalid,
)
from engine.services import compliance, contracts, inspection, kpis
from tests.conftest import WORKFLOWS
from tests.factories import create_case, fire

BEIJING = ZoneInfo("Asia/Shanghai")
MARCH = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 2 March 2026, 09:00 in Beijing
BUNDLED = ("device", "loaner", "satisfaction_survey", "repair_ticket", "complaint")
BUNDLED += ("follow_up", "spare_part")
KPI_CONFIG = parse_source((WORKFLOWS / "catalog" / "kpis.yaml").read_text("utf-8"))


def _ticket(customer: str = "某医院", serial: str = "SN-1") -> dict[str, str]:
    return {"customer": customer, "device_serial": serial, "fault": "黑屏", "priority": "normal"}


def _load(sessions: sessionmaker[Session], text: str, now: datetime = MARCH) -> object:
    with sessions() as session, session.begin():
        return contracts.load_contract(session, text, actor="test", now=now, origin="c.yaml")


@pytest.fixture
def bundled(sessions, publish_workflow):  # type: ignore[no-untyped-def]
    """The bundled workflows used by b1..b4, and the four contracts loaded from their files."""
    for name in BUNDLED:
        publish_workflow(f"{name}.yaml")
    for name in ("b1", "b2", "b3", "b4"):
        _load(sessions, (WORKFLOWS / "contracts" / f"{name}.yaml").read_text("utf-8"))
    return sessions


def test_bundled_contracts_load_once_and_list(bundled) -> None:
    with bundled() as s, s.begin():
        listed = contracts.list_contracts(s)
        again = contracts.load_contract(
            s,
            (WORKFLOWS / "contracts" / "b3.yaml").read_text("utf-8"),
            actor="test",
            now=MARCH,
        )
    assert [c.contract.id for c in listed] == ["b1", "b2", "b3", "b4"]
    assert all(c.versions == 1 for c in listed)
    assert (again.version, again.created) == (1, False)  # unchanged: no new version


def test_b3_and_b2_tickets_in_one_database_run_by_their_own_terms(bundled) -> None:
    b3 = create_case(bundled, "repair_ticket", _ticket(), now=MARCH, contract="b3").case
    b2 = create_case(bundled, "repair_ticket", _ticket(serial="SN-2"), now=MARCH, contract="b2")
    none = create_case(bundled, "repair_ticket", _ticket(serial="SN-3"), now=MARCH).case
    assert (b3.contract_name, b3.contract_version, b3.params["loaner_after"]) == ("b3", 1, "12h")
    assert b2.case.params["loaner_after"] == "8h"
    assert none.contract_name is None and none.params["loaner_after"] == "8h"  # the default
    # Each ticket's loaner timer is armed at its own terms once the repair begins.
    for case_id in (b3.id, b2.case.id):
        for trigger, payload in (
            ("contact", {"at": "2026-03-02T01:10:00Z"}),
            ("remote_failed", {"reason": "x"}),
            ("dispatch", {"engineer": "王工"}),
            ("arrive", {}),
            (
                "diagnose",
                {
                    "diagnosis": "d",
                    "plan": "p",
                    "cause": "normal_use",
                    "warranty_until": "2027-01-01T00:00:00Z",
                },
            ),
            ("consent", {"consented_by": "科室"}),
        ):
            fire(bundled, case_id, trigger, payload, now=MARCH + timedelta(minutes=30))
    with bundled() as s, s.begin():
        due = {
            case_id: next(
                t.due_at
                for t in inspection_timers(s, case_id)
                if t.trigger == "loaner_due" and t.status == "armed"
            )
            for case_id in (b3.id, b2.case.id)
        }
    began = MARCH + timedelta(minutes=30)
    assert due == {b3.id: began + timedelta(hours=12), b2.case.id: began + timedelta(hours=8)}


def inspection_timers(session: Session, case_id: int):  # type: ignore[no-untyped-def]
    from engine.services.timer_firing import case_timers

    return case_timers(session, case_id)


def test_a_case_keeps_the_terms_it_was_created_under_when_the_contract_changes(bundled) -> None:
    before = create_case(bundled, "repair_ticket", _ticket(), now=MARCH, contract="b3").case
    changed = (WORKFLOWS / "contracts" / "b3.yaml").read_text("utf-8")
    changed = changed.replace("loaner_after: 12h", "loaner_after: 16h")
    result = _load(bundled, changed, now=MARCH + timedelta(days=1))
    after = create_case(
        bundled, "repair_ticket", _ticket("濮阳市人民医院", "SN-2"), now=MARCH + timedelta(days=1)
    ).case  # the hospital is covered by b3: matched by name, at its new version
    with bundled() as s, s.begin():
        kept = contracts.get_contract(s, "b3", 1)
        from engine.services.case_detail import case_detail

        detail = case_detail(s, before.id, now=MARCH + timedelta(days=1))
    assert result.version == 2  # type: ignore[attr-defined]
    assert (before.contract_version, before.params["loaner_after"]) == (1, "12h")
    assert (after.contract_name, after.contract_version) == ("b3", 2)
    assert after.params["loaner_after"] == "16h"
    assert kept.terms_for("repair_ticket")["loaner_after"] == "12h"
    assert detail.contract is not None and detail.contract.version == 1
    assert detail.terms["loaner_after"] == "12h"


def test_a_contract_s_team_fills_a_text_team_only(bundled) -> None:
    """B3 names a team (濮阳服务站): a ticket gets it; a complaint, whose team is an object
    (manager, expert, regional lead) filled later, is created without it instead of refused."""
    ticket = create_case(bundled, "repair_ticket", _ticket(customer="濮阳市人民医院"), now=MARCH)
    complaint_data = {"customer": "濮阳市人民医院", "category": "quality", "severity": "minor"}
    complaint = create_case(
        bundled, "complaint", {**complaint_data, "description": "维修后再次故障"}, now=MARCH
    )
    assert (ticket.case.contract_name, ticket.case.data["team"]) == ("b3", "濮阳服务站")
    assert complaint.case.contract_name == "b3"
    assert "team" not in complaint.case.data


def test_the_matching_rule_prefers_the_device_then_the_customer(bundled) -> None:
    extra = """\
id: lab
title: {en: Lab devices, zh: 检验科设备}
customers: [另一家医院]
devices: [BA-PY-0099]
valid_from: 2026-01-01
parameters:
  repair_ticket: {loaner_after: 6h}
"""
    _load(bundled, extra)
    by_device = create_case(
        bundled, "repair_ticket", _ticket("濮阳市人民医院", "BA-PY-0099"), now=MARCH
    ).case
    by_customer = create_case(
        bundled, "repair_ticket", _ticket("濮阳市人民医院", "BA-PY-0100"), now=MARCH
    ).case
    before_b3 = create_case(
        bundled, "repair_ticket", _ticket("濮阳市人民医院", "BA-PY-0101"), now=MARCH.replace(2025)
    ).case  # b3 is in force from 2026-01-01 (Beijing days)
    assert (by_device.contract_name, by_device.params["loaner_after"]) == ("lab", "6h")
    assert (by_customer.contract_name, by_customer.params["loaner_after"]) == ("b3", "12h")
    assert before_b3.contract_name is None


def test_a_spawned_child_inherits_its_parent_s_contract(bundled) -> None:
    ticket = create_case(bundled, "repair_ticket", _ticket(), now=MARCH, contract="b3").case
    fire(bundled, ticket.id, "contact", {"at": "2026-03-02T01:00:00Z"}, now=MARCH)
    fire(bundled, ticket.id, "remote_failed", {"reason": "x"}, now=MARCH)
    fire(bundled, ticket.id, "dispatch", {"engineer": "王工"}, now=MARCH)
    fire(bundled, ticket.id, "arrive", {}, now=MARCH)
    fire(
        bundled,
        ticket.id,
        "diagnose",
        {
            "diagnosis": "d",
            "plan": "p",
            "cause": "normal_use",
            "warranty_until": "2027-01-01T00:00:00Z",
        },
        now=MARCH,
    )
    fire(bundled, ticket.id, "consent", {"consented_by": "科室"}, now=MARCH)
    fire(bundled, ticket.id, "request_loaner", {}, now=MARCH)
    with bundled() as s, s.begin():
        from engine.services.cases import history
        from engine.store.case_store import children_of

        (loaner,) = children_of(s, ticket.id)
        created = history(s, loaner.id)[0]
    assert (loaner.contract_name, loaner.contract_version) == ("b3", 1)
    assert loaner.params["delivery_within"] == "5 working days"
    assert created.payload["contract"] == {"id": "b3", "version": 1}


def test_unknown_contract_and_one_not_in_force_are_clear_errors(bundled) -> None:
    with pytest.raises(ContractNotFound) as unknown:
        create_case(bundled, "repair_ticket", _ticket(), now=MARCH, contract="b9")
    assert "b1, b2, b3, b4" in (unknown.value.hint or "")
    with pytest.raises(ContractNotInForce) as expired:
        create_case(
            bundled, "repair_ticket", _ticket(), now=datetime(2028, 1, 1, tzinfo=UTC), contract="b2"
        )
    assert "2027-12-31" in expired.value.message and "2028-01-01" in expired.value.message


BAD = """\
id: b5
title: {en: Bad, zh: 坏}
customers: [濮阳市人民医院, 甲医院, 甲医院]
valid_from: "2026-02-30"
valid_until: 2026-01-01
colour: red
parameters:
  repair_ticket:
    loaner_after: 12
    loaner_afterr: 12h
  no_such_flow: {x: 1}
"""


def test_a_bad_contract_file_lists_every_problem_at_its_line(bundled) -> None:
    with pytest.raises(ContractInvalid) as shape:
        _load(bundled, BAD)
    found = {(p.line, p.path, p.code) for p in shape.value.problems}
    assert (3, "customers[2]", "duplicate-name") in found
    assert (4, "valid_from", "bad-date") in found
    assert (6, "colour", "unknown-key") in found
    # The shape is right once those are fixed; then the terms are checked against the
    # published definitions, by set-param's own rule, each at its line.
    fixed = BAD.replace(", 甲医院]", "]").replace('"2026-02-30"', "2026-01-01")
    fixed = fixed.replace("colour: red\n", "").replace("valid_until: 2026-01-01", "")
    with pytest.raises(ContractInvalid) as terms:
        _load(bundled, fixed)
    found = {(p.line, p.path, p.code) for p in terms.value.problems}
    assert (8, "parameters.repair_ticket.loaner_after", "parameter-invalid") in found
    assert (9, "parameters.repair_ticket.loaner_afterr", "parameter-invalid") in found
    assert (10, "parameters.no_such_flow", "unknown-definition") in found
    assert (3, "customers[0]", "covered-twice") in found  # b3 covers that hospital
    with bundled() as s, s.begin():
        assert [c.contract.id for c in contracts.list_contracts(s)] == ["b1", "b2", "b3", "b4"]
    # Unquoted, YAML reads a day as a date, and an impossible one stops the reading itself.
    with pytest.raises(DefinitionSourceError) as unreadable:
        _load(bundled, BAD.replace('"2026-02-30"', "2026-02-30"))
    assert unreadable.value.fields["line"] == 4


def test_contract_terms_follow_the_same_rule_as_set_param(bundled) -> None:
    """One function checks both, so a value one refuses the other refuses too."""
    from engine.services.definitions import set_parameter

    with bundled() as s, s.begin(), pytest.raises(ParameterInvalid) as by_set_param:
        set_parameter(s, "repair_ticket", "loaner_after", "soon", actor="t", now=MARCH)
    contract = """\
id: b6
title: {en: Six, zh: 六}
customers: [丙医院]
valid_from: 2026-01-01
parameters:
  repair_ticket: {loaner_after: soon}
"""
    with pytest.raises(ContractInvalid) as by_contract:
        _load(bundled, contract)
    term = next(
        p for p in by_contract.value.problems if p.path == "parameters.repair_ticket.loaner_after"
    )
    assert term.message == by_set_param.value.message


def _contact_at(sessions, case_id: int, at: datetime) -> None:  # type: ignore[no-untyped-def]
    fire(sessions, case_id, "contact", {"at": at.isoformat().replace("+00:00", "Z")}, now=at)


def test_kpis_and_the_stuck_list_by_contract(bundled) -> None:
    on_time = create_case(bundled, "repair_ticket", _ticket(), now=MARCH, contract="b3").case
    _contact_at(bundled, on_time.id, MARCH + timedelta(minutes=30))
    late = create_case(bundled, "repair_ticket", _ticket(serial="2"), now=MARCH, contract="b2")
    _contact_at(bundled, late.case.id, MARCH + timedelta(hours=2))
    open_b2 = create_case(bundled, "repair_ticket", _ticket(serial="3"), now=MARCH, contract="b2")
    now = MARCH + timedelta(hours=3)
    with bundled() as s, s.begin():
        grouped = kpis.monthly_kpis(s, KPI_CONFIG, month="2026-03", group_by="contract", now=now)
        only_b2 = kpis.monthly_kpis(
            s, KPI_CONFIG, month="2026-03", group_by=None, now=now, contract="b2"
        )
        stuck_b2 = inspection.inspect(
            s, now=now, reasons=[inspection.Reason.SLA_BREACHED], contract="b2"
        )
        stuck_b3 = inspection.inspect(
            s, now=now, reasons=[inspection.Reason.SLA_BREACHED], contract="b3"
        )
        counted = {c: inspection.counts(s, now=now, contract=c) for c in ("b2", "b3")}

    def row(rows, group):  # type: ignore[no-untyped-def]
        return next(r for r in rows if r.kpi == "response_timeliness" and r.group == group)

    assert (row(grouped, "b3").numerator, row(grouped, "b3").denominator) == (1, 1)
    assert (row(grouped, "b2").numerator, row(grouped, "b2").denominator) == (0, 2)
    assert (row(only_b2, kpis.TOTAL).numerator, row(only_b2, kpis.TOTAL).denominator) == (0, 2)
    assert {(f.case_id, f.contract) for f in stuck_b2 if f.ref == "first_contact"} == {
        (open_b2.case.id, "b2")
    }
    assert not [f for f in stuck_b3 if f.ref == "first_contact"]
    assert counted["b2"]["sla_breached"] == len(stuck_b2)
    assert counted["b3"]["sla_breached"] == len(stuck_b3)


def test_the_monthly_compliance_report_lists_each_breach_with_its_evidence(bundled) -> None:
    """R-REP-12: a breach on record with its times, per contract and month."""
    kept = create_case(bundled, "repair_ticket", _ticket(), now=MARCH, contract="b2").case
    _contact_at(bundled, kept.id, MARCH + timedelta(minutes=40))
    late = create_case(bundled, "repair_ticket", _ticket(serial="2"), now=MARCH, contract="b2")
    _contact_at(bundled, late.case.id, MARCH + timedelta(hours=2))
    other = create_case(bundled, "repair_ticket", _ticket(serial="3"), now=MARCH, contract="b3")
    _contact_at(bundled, other.case.id, MARCH + timedelta(hours=3))  # b3's, not b2's
    now = MARCH + timedelta(hours=4)
    with bundled() as s, s.begin():
        report = compliance.compliance_report(
            s, "b2", month="2026-03", now=now, timezone="Asia/Shanghai"
        )
        april = compliance.compliance_report(
            s, "b2", month="2026-04", now=now, timezone="Asia/Shanghai"
        )
    tally = next(p for p in report.promises if p.sla == "first_contact")
    assert (tally.met, tally.breached) == (1, 1)
    (breach,) = [b for b in report.breaches if b.sla == "first_contact"]
    assert breach.case_id == late.case.id
    assert breach.due_at == MARCH + timedelta(hours=1)
    assert breach.actual_at == MARCH + timedelta(hours=2)
    assert [e.trigger for e in breach.excerpt if e.trigger] == ["contact"]
    assert not april.promises and not april.breaches
    rows = list(csv.DictReader(io.StringIO(compliance.to_csv(report, BEIJING))))
    breach_row = next(r for r in rows if r["section"] == "breach" and r["sla"] == "first_contact")
    assert breach_row["due_at"] == "2026-03-02 10:00:00+08:00"
    assert breach_row["actual_at"] == "2026-03-02 11:00:00+08:00"
    assert "contact" in breach_row["history"]
    page = compliance.to_html(report, BEIJING)
    assert f"Case {late.case.id}" in page and "2026-03-02 10:00:00+08:00" in page
    assert f"Case {other.case.id}" not in page


def test_terms_for_a_case_are_checked_against_its_definition_version(bundled) -> None:
    with bundled() as s, s.begin():
        contract = contracts.get_contract(s, "b3")
        from engine.services.definitions import get_definition

        definition = get_definition(s, "repair_ticket")
        params = contracts.terms_for_case(s, definition, contract, definition.default_params())
    assert params["loaner_after"] == "12h" and params["contact_within"] == "1h"


def test_a_scenario_names_contracts_and_its_mistakes_are_clear(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from engine.errors import ScenarioError
    from engine.simulation import run_scenario

    scenario = {
        "definitions": [str(WORKFLOWS / f"{n}.yaml") for n in ("repair_ticket", "loaner")]
        + [str(WORKFLOWS / f"{n}.yaml") for n in ("satisfaction_survey", "device")],
        "contracts": [str(WORKFLOWS / "contracts" / "b3.yaml")],
        "start": "2026-03-02T09:00:00+08:00",
        "steps": [
            {"create": {"case": "t", "definition": "repair_ticket", "data": _ticket()}},
            {"expect": {"case": "t", "contract": None, "params": {"loaner_after": "8h"}}},
            {
                "create": {
                    "case": "u",
                    "definition": "repair_ticket",
                    "data": _ticket(serial="2"),
                    "contract": "b3",
                }
            },
            {"expect": {"case": "u", "contract": "b3", "params": {"loaner_after": "8h"}}},
        ],
    }
    report = run_scenario(scenario, tmp_path)
    assert [s.ok for s in report.steps] == [True, True, True, False]
    assert report.steps[3].message == 'params.loaner_after is "12h", expected "8h"'
    with pytest.raises(ScenarioError, match="not a file path"):
        run_scenario({**scenario, "contracts": [3]}, tmp_path)
    with pytest.raises(ScenarioError, match="must be a contract id"):
        run_scenario(
            {**scenario, "steps": [{"create": {**scenario["steps"][2]["create"], "contract": 3}}]},
            tmp_path,
        )
    unknown = {**scenario["steps"][2]["create"], "contract": "b9"}
    failed = run_scenario({**scenario, "steps": [{"create": unknown}]}, tmp_path)
    assert failed.steps[0].message.startswith("contract-not-found: No contract 'b9'.")


SITE_CONTRACT = """\
id: site
title: {en: A hospital with its own days off, zh: 有自定休息日的医院}
customers: [自定医院]
valid_from: 2026-01-01
calendar: hospital-days
parameters:
  repair_ticket: {loaner_calendar: cn-workdays, loaner_after: 1 working day}
"""


def test_a_contract_calendar_moves_every_business_clock_of_its_cases(bundled) -> None:
    """The contract's calendar is its customers' working days: the ticket's loaner, counted
    in working days, skips the hospital's own day off; a clock on the wall clock does not."""
    from engine.services.calendars import save_calendar

    with bundled() as s, s.begin():  # Tuesday 3 March 2026 is the hospital's day off
        save_calendar(
            s, "hospital-days", actor="test", now=MARCH, overrides={"holidays_add": ["2026-03-03"]}
        )
    _load(bundled, SITE_CONTRACT)
    at_site = create_case(bundled, "repair_ticket", _ticket("自定医院", "SN-9"), now=MARCH)
    assert at_site.case.contract_name == "site"
    assert at_site.case.params["@calendar"] == "hospital-days"
    began = MARCH + timedelta(minutes=30)  # Monday 2 March, 09:30 in Beijing
    for trigger, payload in (
        ("contact", {"at": "2026-03-02T01:10:00Z"}),
        ("remote_failed", {"reason": "x"}),
        ("dispatch", {"engineer": "王工"}),
        ("arrive", {}),
        (
            "diagnose",
            {
                "diagnosis": "d",
                "plan": "p",
                "cause": "normal_use",
                "warranty_until": "2027-01-01T00:00:00Z",
            },
        ),
        ("consent", {"consented_by": "科室"}),
    ):
        fire(bundled, at_site.case.id, trigger, payload, now=began)
    with bundled() as s, s.begin():
        timers = {t.trigger: t for t in inspection_timers(s, at_site.case.id)}
    # One working day from Monday 09:30 is Tuesday 09:30 on cn-workdays; the hospital works
    # on Wednesday instead.
    assert timers["loaner_due"].due_at == datetime(2026, 3, 4, 9, 30, tzinfo=BEIJING)


def test_a_contract_calendar_must_have_working_days(bundled) -> None:
    with pytest.raises(ContractInvalid) as caught:
        _load(bundled, SITE_CONTRACT.replace("hospital-days", "24x7"))
    assert "contract-calendar-wall-clock" in {p.code for p in caught.value.problems}
