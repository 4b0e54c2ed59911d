"""Fields and their values in the reader's language, from the definitions' ``fields``
glossary (docs/definitions.md, "Field labels"): the fire forms' labels and options, the case
page's data, the workbench's priority column and filters, and the bulk preview."""

from __future__ import annotations

import re

from tests.api import test_dashboard as dashboard_tests
from tests.api.conftest import REPAIR_DATA
from tests.api.test_dashboard import Dash, _text, csrf
from tests.conftest import T0
from tests.factories import COMPLAINT, create_case

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
    assert rows["fault"] == "Gantry does not rotate"  # unlabelled: its name, as data


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
