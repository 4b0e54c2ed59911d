"""The stuck list through the Flask test client, on SQLite with the bundled workflows: its
weight stays bounded because a finding's action forms load on demand (from the per-case
actions page the workbench rows use, focused on the finding's own timer or clock), and on a
Chinese page the engine's English details are worded in Chinese."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from api.dashboard.pages import finding_detail
from engine.services.definitions import get_definition
from engine.services.inspection import Finding, Reason
from tests.api import test_dashboard as dashboard_tests
from tests.api.conftest import REPAIR_DATA
from tests.api.test_dashboard import Dash, _actions_url, _text
from tests.conftest import T0
from tests.factories import create_case, create_ticket, ticket_with_failed_reminder

# The dashboard tests' fixtures: SQLite with the bundled workflows, a signed-in test client.
db_url, kpi_config, dash = dashboard_tests.db_url, dashboard_tests.kpi_config, dashboard_tests.dash

# A repair ticket opened at T0 is, at the dashboard's NOW, one breached clock (first contact)
# and three late timers (no worker runs in these tests); the list keeps at most 200 findings
# a reason, so 100 tickets are 100 + 200 = 300 findings.
TICKETS = 100
FINDINGS = 300
# What one finding may weigh: its visible cells (the suggested action, the longest, is about
# 200 characters, three bytes each in Chinese) and the link its forms load from. A row that
# carried its forms again (a fire form lists every allowed trigger, a force form every state)
# weighs 4 KB and more, which is what made the list of about 300 findings 1.24 MB.
ROW_BYTES = 1_500
# The page around the rows: header, filters, footer.
FRAME_BYTES = 8_000


def _tickets(dash: Dash, n: int) -> list[int]:
    return [
        create_case(
            dash.sessions, "repair_ticket", dict(REPAIR_DATA), business_key=f"T-{i:04d}", now=T0
        ).case.id
        for i in range(n)
    ]


def _rows(body: str) -> int:
    return body.count('<tr class="finding')


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_stuck_list_at_300_findings_weighs_a_bounded_amount_per_finding(
    dash: Dash, lang: str
) -> None:
    _tickets(dash, TICKETS)
    dash.login("supervisor", lang=lang)
    empty = dash.page("/dashboard/stuck?definition=service_ticket")
    full = dash.page("/dashboard/stuck")

    assert _rows(empty) == 0 and _rows(full) == FINDINGS
    frame, size = len(empty.encode()), len(full.encode())
    assert frame <= FRAME_BYTES, frame
    per_finding = (size - frame) / FINDINGS
    assert per_finding <= ROW_BYTES, f"{size} bytes: {per_finding:.0f} a finding"
    assert size <= FRAME_BYTES + FINDINGS * ROW_BYTES  # 458 KB at most, a third of before
    table = full[full.index('<table class="findings">') : full.index("</table>")]
    assert "<form" not in table and "<input" not in table  # each row's forms load when opened
    assert full.count('<details class="row-actions" data-src="/dashboard/cases/') == FINDINGS


def test_a_failed_timer_s_forms_load_on_demand_with_its_retry_first_and_act(dash: Dash) -> None:
    case_id, timer_id = ticket_with_failed_reminder(dash.sessions)
    dash.login("supervisor", lang="en")
    stuck = dash.page("/dashboard/stuck?reason=timer_failed")
    url = _actions_url(stuck, case_id)
    assert url == (
        f"/dashboard/cases/{case_id}/actions?next=/dashboard/stuck?reason%3Dtimer_failed"
        f"&timer={timer_id}"
    )

    fragment = dash.client.get(url, headers={"X-Svcflow-Fragment": "1"})
    assert fragment.status_code == 200
    forms = fragment.get_data(as_text=True)
    assert "<html" not in forms  # a fragment for the row, not a page
    first = re.search(r'<form method="post" class="action (\w+)" action="([^"]+)"', forms)
    assert first is not None and first.groups() == ("retry", f"/dashboard/timers/{timer_id}/retry")
    assert 'name="next" value="/dashboard/stuck?reason=timer_failed"' in forms

    retried = dash.submit(
        url,
        f"/dashboard/timers/{timer_id}/retry",
        case_id=case_id,
        reason="guard data fixed",
        next="/dashboard/stuck?reason=timer_failed",
    )
    assert retried.headers["Location"] == "/dashboard/stuck?reason=timer_failed"
    event = dash.history(case_id)[-1]
    assert (event.event_type, event.payload["timer_id"]) == ("timer_retried", timer_id)

    # The timer is armed again: its old link says so instead of offering a stale form.
    stale = dash.client.get(url)
    assert stale.status_code == 404
    assert f"Timer {timer_id} is not a failed timer of case {case_id}" in _text(
        stale.get_data(as_text=True)
    )


def test_a_finding_s_clock_form_acts_on_that_clock_and_bad_links_say_what_is_wrong(
    dash: Dash,
) -> None:
    case_id = _tickets(dash, 1)[0]
    dash.login("supervisor", lang="en")
    stuck = dash.page("/dashboard/stuck?reason=sla_breached")
    urls = re.findall(rf'data-src="(/dashboard/cases/{case_id}/actions[^"]*)"', stuck)
    assert len(urls) == 1 and urls[0].endswith("&amp;sla=first_contact")
    base = f"/dashboard/cases/{case_id}/actions?next=/dashboard/stuck"

    forms = dash.page(f"{base}&sla=first_contact")
    clock = re.search(r'<form method="post" class="action sla".*?</form>', forms, re.S)
    assert clock is not None
    assert re.findall(r'<option value="(\w+)">', clock.group(0)) == [
        "pause",
        "resume",
        "first_contact",
    ]  # the action to choose, and only the finding's own clock
    resume = dash.page(f"{base}&sla=first_contact&sla_action=resume")
    assert 'name="action" value="resume"' in resume

    for query, status, words in [
        ("&sla=no_such_clock", 404, f"Case {case_id} has no SLA 'no_such_clock'"),
        ("&sla=first_contact&sla_action=explode", 400, "sla_action='explode' is not valid"),
        ("&timer=12ab", 400, "timer='12ab' is not valid here: use a timer id (digits)."),
        ("&timer=999999", 404, "Timer 999999 is not a failed timer of case"),
    ]:
        response = dash.client.get(base + query)
        assert response.status_code == status, query
        assert words in _text(response.get_data(as_text=True)), query
    dash.set_language("zh")
    refused = dash.client.get(base + "&sla=no_such_clock")
    assert "没有名为 'no_such_clock' 的时限" in _text(refused.get_data(as_text=True))


def test_on_a_chinese_page_the_findings_details_are_chinese(dash: Dash) -> None:
    failed, timer_id = ticket_with_failed_reminder(dash.sessions)
    ticket = _tickets(dash, 1)[0]
    dash.login("supervisor", lang="zh")
    zh = _text(dash.page("/dashboard/stuck"))
    assert "「首次联系」已超时" in zh
    # The guard's own Chinese words (guard_message), after a lead in Chinese.
    assert (
        f"定时器 {timer_id} remind 触发失败（第 1 次尝试），不再自动重试：本工单不允许提醒。" in zh
    )
    assert "定时器" in zh and "逾期未送达" in zh
    assert "SLA first_contact" not in zh and "not delivered" not in zh
    dash.set_language("en")
    en = _text(dash.page("/dashboard/stuck"))
    assert "SLA first_contact (First contact)" in en and f"timer {timer_id}: GuardRejected" in en
    assert failed != ticket


def test_every_reason_has_a_chinese_detail_from_the_finding_s_facts(dash: Dash) -> None:
    create_ticket(dash.sessions)
    with dash.sessions() as session, session.begin():
        repair = get_definition(session, "repair_ticket")

    def finding(reason: Reason, ref: object = None, **more: object) -> Finding:
        return Finding(reason, 1, "repair_ticket", "logged", T0, "English detail", ref, **more)

    orphan = {"child_id": 7, "child_definition": "loaner", "trigger": "loaner_back"}
    orphan |= {"not_fired": "guard-rejected", "reason": "No loaner is out."}
    recorded = '<q class="recorded" lang="en" translate="no">'
    paused_until = "「首次联系」已被操作员暂停，到恢复时间自动恢复"
    usual = timedelta(days=2, hours=3).total_seconds()
    orphaned = (
        "子工单 7（loaner）的消息未能触发「loaner_back」：不满足该操作的前提条件"
        f"（<code>guard-rejected</code>）：{recorded}No loaner is out.</q>"
    )
    # A failed timer's row before errors were kept as data: the lead, its English quoted.
    failed = (
        '定时器 <span class="mono">5</span> 触发失败（第 1 次尝试），不再自动重试：'
        f"{recorded}Boom: no</q>"
    )
    expected = [
        (finding(Reason.SLA_BREACHED, "first_contact"), "「首次联系」已超时"),
        (finding(Reason.SLA_WARNING, "first_contact"), "「首次联系」已过预警线"),
        (finding(Reason.SLA_PAUSED, "first_contact"), "「首次联系」已被操作员暂停，未设恢复时间"),
        (finding(Reason.SLA_PAUSED, "first_contact", until=T0), paused_until),
        (finding(Reason.TIMER_FAILED, 5, facts={"error": "Boom: no"}), failed),
        (finding(Reason.TIMER_FAILED, 5), "定时器 5 失败：未记录错误"),
        (finding(Reason.TIMER_LATE, 6), "定时器 6 逾期未送达"),
        (finding(Reason.SILENT_STALL), "长时间无任何活动，也没有待触发的定时器"),
        (finding(Reason.DWELLING, usual), "停留在「已登记」；95% 的工单在 2天3小时 内离开"),
        (finding(Reason.ORPHANED_WAIT, facts=orphan), orphaned),
        (finding(Reason.WAITING_ON_CANCELLED, 8), "子工单 8 已取消"),
    ]
    assert {f.reason for f, _ in expected} == set(Reason)
    for f, words in expected:
        assert finding_detail(f, repair, "zh") == words, f.reason
    # English pages keep the engine's sentence (and add a clock's title).
    assert finding_detail(finding(Reason.TIMER_LATE, 6), repair, "en") == "English detail"
    assert (
        finding_detail(finding(Reason.SLA_BREACHED, "first_contact"), repair, "en")
        == "English detail (First contact)"
    )
