"""Fields and their values in the reader's language, from the definitions' ``fields``
glossary (docs/definitions.md, "Field labels"): the fire forms' labels and options, the case
page's data, the workbench's priority column and filters, and the bulk preview."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from engine.core.definition import SYSTEM_ROLE, WorkflowDefinition
from engine.core.machine import Actor
from engine.services.definitions import get_definition
from tests.api import test_dashboard as dashboard_tests
from tests.api.conftest import REPAIR_DATA
from tests.api.test_dashboard import Dash, _text, csrf
from tests.conftest import ADMIN, T0
from tests.factories import COMPLAINT, create_case, create_ticket, fire

MINUTE = timedelta(minutes=1)

# The dashboard tests' fixtures: SQLite with the bundled workflows, a signed-in test client.
db_url, kpi_config, dash = dashboard_tests.db_url, dashboard_tests.kpi_config, dashboard_tests.dash


def _form(body: str, trigger: str) -> str:
    form = body[body.index(f'data-trigger="{trigger}"') :]
    return form[: form.index("</details>")]


def _label_of(form: str, name: str) -> str:
    """The text of the label holding input or select ``p.<name>`` (less a required mark)."""
    for label in re.findall(r"<label>(.*?)</label>", form, re.S):
        if f'name="p.{name}"' in label:
            return label.split("<", 1)[0].strip().removesuffix(" *")
    raise AssertionError(f"no field p.{name} in the form")


def _options(form: str, name: str) -> list[tuple[str, str]]:
    select = form[form.index(f'<select name="p.{name}"') :]
    select = select[: select.index("</select>")]
    return [(v, t) for v, t in re.findall(r'<option value="([^"]*)">([^<]*)</option>', select) if v]


def test_a_fire_form_on_a_chinese_page_labels_fields_and_options_in_chinese(dash: Dash) -> None:
    case_id = create_case(dash.sessions, "complaint", COMPLAINT, now=T0).case.id
    dash.login("supervisor", lang="zh")
    body = dash.page(f"/dashboard/cases/{case_id}")

    contact = _form(body, "contact")
    assert _label_of(contact, "at") == "时间"
    assert _label_of(contact, "manager") == "服务经理"
    reclassify = _form(body, "reclassify")
    assert _label_of(reclassify, "category") == "类别"
    assert _options(reclassify, "category") == [
        ("quality", "质量类"),
        ("non_quality", "非质量类"),
        ("other", "其他"),
    ]
    assert _options(reclassify, "severity") == [("minor", "一般"), ("serious", "严重")]

    dash.set_language("en")
    english = _form(dash.page(f"/dashboard/cases/{case_id}"), "reclassify")
    assert _options(english, "severity") == [("minor", "Minor"), ("serious", "Serious")]


def test_a_labelled_choice_still_sends_its_value(dash: Dash) -> None:
    case_id = create_case(dash.sessions, "complaint", COMPLAINT, now=T0).case.id
    dash.login("supervisor", lang="zh")
    page = f"/dashboard/cases/{case_id}"
    sent = dash.submit(
        page,
        f"/dashboard/cases/{case_id}/fire",
        trigger="reclassify",
        payload_form="1",
        **{"p.category": "other", "p.severity": "minor"},
        reason="重新分类",
    )
    assert sent.status_code == 302
    last = dash.history(case_id)[-1]
    assert (last.trigger, last.payload) == (
        "reclassify",
        {"category": "other", "severity": "minor"},
    )


def test_the_case_data_reads_in_the_readers_language(dash: Dash) -> None:
    data = {**REPAIR_DATA, "priority": "emergency", "team": "East"}
    case_id = create_case(dash.sessions, "repair_ticket", data, now=T0).case.id
    dash.login("supervisor", lang="zh")
    body = dash.page(f"/dashboard/cases/{case_id}")
    rows = dict(re.findall(r"<tr><th[^>]*>([^<]*)</th><td>([^<]*)</td></tr>", body))
    assert rows["优先级"] == "紧急"
    assert rows["客户"] == "Xiangya Hospital"  # data itself is shown as written
    assert "priority" not in rows  # the raw name is gone where the glossary has a label
    assert rows["故障描述"] == "Gantry does not rotate"

    unlabelled = create_ticket(dash.sessions)  # tests/workflows.py: a definition without labels
    body = dash.page(f"/dashboard/cases/{unlabelled}")
    rows = dict(re.findall(r"<tr><th[^>]*>([^<]*)</th><td>([^<]*)</td></tr>", body))
    assert rows["allowed"] == "true"  # its name, as data


def _field_names(definition: WorkflowDefinition) -> set[str]:
    """The data fields of ``definition`` and the fields of the records they hold or list."""
    names = set()
    for name, spec in definition.data_schema["properties"].items():
        names.add(name)
        names |= set(spec.get("properties", {})) | set(spec.get("items", {}).get("properties", {}))
    return names


def _chinese_case_page(
    dash: Dash, definition_name: str, case_id: int
) -> tuple[list[str], dict[str, str], str]:
    """What a supervisor reads of a case on its Chinese page: the data field names of the
    definition shown as written (in the data table or the history's changes and payloads),
    the data table's rows (label -> text), and all of that text."""
    dash.login("supervisor", lang="zh")
    body = dash.page(f"/dashboard/cases/{case_id}")
    with dash.sessions() as session:
        definition = get_definition(session, definition_name)
    data = body[body.index('<table class="data">') :]
    shown = [data[: data.index("</table>")]]
    shown += re.findall(r'<div class="(?:changes|payload muted)">(.*?)</div>', body, re.S)
    assert len(shown) > 3, "the history shows changes and payloads"
    visible = " ".join(_text(part) for part in shown)
    raw = sorted(n for n in _field_names(definition) if re.search(rf"\b{n}\b", visible))
    rows = dict(re.findall(r"<tr><th[^>]*>([^<]*)</th><td>([^<]*)</td></tr>", shown[0]))
    return raw, rows, visible


def _repair_ticket_with_every_kind_of_data(dash: Dash) -> int:
    """A repair ticket taken from the report through a paid repair with replaced parts, a
    loaner, a recorded breach and the service report: most of its data fields are set."""
    data = {
        **REPAIR_DATA,
        "contact": "Dr Wang",
        "device_model": "Revolution CT",
        "site_address": "Changsha",
        "team": "East",
        "clinical_impact": "stopped",
        "channel": "wechat",
        "distance_class": "same_city",
        "severity": "complex",
    }
    case_id = create_case(dash.sessions, "repair_ticket", data, now=T0).case.id
    system = Actor("engine", frozenset({SYSTEM_ROLE}))
    steps: list[tuple[str, dict[str, Any], Actor]] = [
        ("contact", {"at": T0.isoformat()}, ADMIN),
        ("remote_failed", {"reason": "Needs a visit"}, ADMIN),
        ("dispatch", {"engineer": "Li"}, ADMIN),
        (
            "confirm_visit",
            {"confirmed_with": "Dr Wang", "planned_arrival": "2025-09-30T04:00:00Z"},
            ADMIN,
        ),
        ("record_breach", {"sla": "arrival"}, system),
        ("arrive", {"at": (T0 + 5 * MINUTE).isoformat()}, ADMIN),
        (
            "diagnose",
            {
                "diagnosis": "Slip ring worn",
                "plan": "Replace the slip ring",
                "cause": "misuse",
                "warranty_until": "2027-01-01T00:00:00Z",
            },
            ADMIN,
        ),
        (
            "sign_fee_agreement",
            {
                "signed_by": "Dr Wang",
                "items": [{"item": "Slip ring", "amount": 1200}],
                "parts_fee": 1200,
                "labour_fee": 300,
            },
            ADMIN,
        ),
        ("order_parts", {"expected_at": "2025-10-02T00:00:00Z", "custom": False}, ADMIN),
        ("escalate", {"reason": "Second opinion"}, ADMIN),
        ("request_loaner", {}, ADMIN),
        (
            "repair_done",
            {"replaced_parts": [{"part": "Slip ring", "part_no": "SR-1", "disposal": "destroyed"}]},
            ADMIN,
        ),
        ("sign", {"signed_by": "Dr Wang"}, ADMIN),
        (
            "deliver_report",
            {"report_no": "R-1", "performance_test_passed": True, "operator_instructed": True},
            ADMIN,
        ),
        ("close", {"feedback": "Done"}, ADMIN),
    ]
    for minutes, (trigger, payload, actor) in enumerate(steps, start=1):
        fire(dash.sessions, case_id, trigger, payload, now=T0 + minutes * MINUTE, actor=actor)
    return case_id


def test_a_chinese_case_page_shows_no_raw_name_of_a_repair_tickets_data(dash: Dash) -> None:
    """Every data field of a repair ticket, and every field of the records it lists, reads
    by its Chinese label in the data table and in the history's changes and payloads."""
    case_id = _repair_ticket_with_every_kind_of_data(dash)
    raw, rows, visible = _chinese_case_page(dash, "repair_ticket", case_id)
    assert raw == [], f"raw field names on a Chinese case page: {raw}"
    # Labels, enum values and a breach's clock read in Chinese.
    assert rows["距离类别"] == "同城"
    part = rows["更换的配件"].strip("[]").split(", ")
    assert sorted(part) == sorted(["配件: Slip ring", "配件编号: SR-1", "旧件处置: 销毁"])
    assert "超时时限: 到场" in rows["超时违约记录"] and "时间: 2025-09-30" in rows["超时违约记录"]
    assert "超时时限: 到场" in visible  # the breach's payload in the history


def test_a_chinese_case_page_shows_no_raw_name_of_a_maintenance_visits_data(dash: Dash) -> None:
    """A maintenance visit performed and reported: each data field and each of the six
    checklist items reads by its Chinese label, and an item's done / not applicable too."""
    data = {
        "device_serial": "CT-0042",
        "customer": "Xiangya Hospital",
        "device_model": "Revolution CT",
        "site_address": "Changsha",
        "kind": "full_inspection",
        "in_warranty": True,
    }
    case_id = create_case(dash.sessions, "preventive_maintenance", data, now=T0).case.id
    checklist = {
        "cleaning": "done",
        "performance_check": "done",
        "calibration": "not_applicable",
        "software_update": "done",
        "risk_check": "done",
        "consumables_reminder": "not_applicable",
    }
    steps: list[tuple[str, dict[str, Any]]] = [
        ("schedule", {"engineer": "Li", "planned_for": "2025-10-08T01:00:00Z"}),
        ("reschedule", {"engineer": "Zhao", "planned_for": "2025-10-09T01:00:00Z"}),
        (
            "perform",
            {
                "checklist": checklist,
                "findings": "Filter clogged",
                "consumables_due": "Filter",
                "faults_found": "Tube arcing",
                "ticket_ref": "RT-7",
            },
        ),
        ("deliver_report", {"report_ref": "PM-1", "received_by": "Dr Wang"}),
    ]
    for minutes, (trigger, payload) in enumerate(steps, start=1):
        fire(dash.sessions, case_id, trigger, payload, now=T0 + minutes * MINUTE, actor=ADMIN)
    raw, rows, _ = _chinese_case_page(dash, "preventive_maintenance", case_id)
    assert raw == [], f"raw field names on a Chinese case page: {raw}"
    assert rows["保养类型"] == "全面检测"
    items = dict(item.split(": ") for item in rows["保养检查项"].split(", "))
    assert items == {
        "清洁": "已完成",
        "性能检测": "已完成",
        "校准": "不适用",
        "软件升级": "已完成",
        "安全风险检查": "已完成",
        "耗材更换提醒": "不适用",
    }


def test_the_workbench_shows_and_filters_priority_by_its_label(dash: Dash) -> None:
    urgent = create_case(
        dash.sessions, "repair_ticket", {**REPAIR_DATA, "priority": "emergency"}, now=T0
    ).case.id
    create_case(dash.sessions, "repair_ticket", REPAIR_DATA, now=T0)
    dash.login("supervisor", lang="zh")
    body = dash.page("/dashboard/work?definition=repair_ticket")
    row = body[body.index(f'<tr data-case="{urgent}"') :]
    assert "紧急" in row[: row.index("</tr>")]
    assert '<option value="emergency">紧急</option>' in body
    assert '<option value="normal">普通</option>' in body
    # The severity filter the definition offers is a select of its labelled values.
    assert '<select name="data.severity">' in body and ">重大故障</option>" in body
    assert "严重程度" in _text(body)

    chosen = dash.page("/dashboard/work?definition=repair_ticket&priority=emergency")
    assert re.findall(r'<tr data-case="(\d+)"', chosen) == [str(urgent)]
    assert '<option value="emergency" selected>紧急</option>' in chosen


def test_the_bulk_preview_shows_priority_in_the_readers_language(dash: Dash) -> None:
    case_id = create_case(
        dash.sessions, "repair_ticket", {**REPAIR_DATA, "priority": "emergency"}, now=T0
    ).case.id
    dash.login("supervisor", lang="zh")
    view = dash.page("/dashboard/work")
    preview = dash.client.post(
        "/dashboard/work/bulk",
        data={
            "csrf_token": csrf(view),
            "action": "reassign",
            "assignee": "Li",
            "reason": "值班",
            "case_id": str(case_id),
            "view": "",
        },
    )
    assert preview.status_code == 200, preview.get_data(as_text=True)[:500]
    table = preview.get_data(as_text=True).split('<table class="workbench">', 1)[1]
    assert "<th>优先级</th>" in table and "<td>紧急</td>" in table
