"""The engine's own sentences on Chinese pages: a migration's reasons for not moving a case,
a failed timer's error on the stuck list and the case page, the engine-written notes of a
case's history. Each is said from its code and values in the reader's language; an error's
recorded English (a Python exception's text, say) follows a Chinese lead as a quotation
marked ``lang="en"``, and rows stored before the codes were kept still read, by their text.
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from typing import Any

from markupsafe import escape
from sqlalchemy import update

from api.dashboard import history_words, message_words
from api.dashboard.message_words import MESSAGE_WORDS, TIMER_WORDS
from engine.core.machine import Actor
from engine.core.messages import CHILD_NEWS_REFUSED, ENGLISH, Message
from engine.services import links, operations, timer_firing
from engine.store.models import Timer
from tests.api import test_dashboard as dashboard_tests
from tests.api.test_dashboard import Dash, _text
from tests.api.test_dashboard_matrix import english_words
from tests.conftest import T0
from tests.factories import (
    create_case,
    create_ticket,
    deliver_due,
    fire,
    ticket_with_failed_reminder,
)
from tests.integration.test_inspection import CHILD, PARENT
from tests.workflows import TICKET

# The dashboard tests' fixtures: SQLite with the bundled workflows, a signed-in test client.
db_url, kpi_config, dash = dashboard_tests.db_url, dashboard_tests.kpi_config, dashboard_tests.dash

HOUR = timedelta(hours=1)
PATH = "/dashboard/definitions/service_ticket"
# Version 2 renames on_hold: a held case has no counterpart unless the plan maps it.
V2 = TICKET.replace("on_hold", "waiting")
PLAN = {"from_version": "1", "to_version": "2", "params": "keep", "reason": "rename on_hold"}
# Quoted English, names in code and identifiers are data, not the page's words.
_DATA = re.compile(
    r'<q class="recorded" lang="en" translate="no">.*?</q>'
    r'|<(span|td) class="mono">.*?</\1>|<code>.*?</code>',
    re.S,
)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_engine_sentence_has_english_and_chinese_words_naming_only_its_values() -> None:
    assert sorted(set(ENGLISH) - set(MESSAGE_WORDS)) == []  # a code the pages cannot say
    assert sorted(set(MESSAGE_WORDS) - set(ENGLISH)) == []  # and none for codes that are gone
    for code, words in [*MESSAGE_WORDS.items(), *TIMER_WORDS.items()]:
        assert set(words) == {"en", "zh"} and all(words.values()), code
        if code in ENGLISH:  # a page can only name what the engine kept
            assert _fields(words["zh"]) | _fields(words["en"]) <= _fields(ENGLISH[code]), code


def _chinese_words_only(fragments: list[str]) -> list[str]:
    """The English words of these HTML fragments once recorded quotations, names in code and
    identifiers are set aside: what a reader of Chinese would be left to read in English."""
    identifiers = {"remind", "permit", "start", "chase", "hold", "unhold", "close"}
    words = english_words([_text(_DATA.sub(" ", f)) for f in fragments])
    return [w for w in words if w.split("'")[1] not in identifiers]


def _cells(page: str, pattern: str) -> list[str]:
    found = re.findall(pattern, page, re.S)
    assert found, f"nothing matches {pattern!r}"
    return found


def test_a_migration_s_refusals_are_said_in_chinese_and_in_english(
    dash: Dash, publish_workflow: Any
) -> None:
    held = create_ticket(dash.sessions)
    fire(dash.sessions, held, "hold")
    other = create_ticket(dash.sessions)
    assert publish_workflow(V2) == 2
    bad_set = {**PLAN, "map_state": "on_hold=waiting\n", "set": "team=data.nowhere.x\n"}

    dash.login("admin", lang="zh")
    zh = dash.submit(PATH, f"{PATH}/migrate", **PLAN).get_data(as_text=True)
    row = _cells(zh, rf'<tr data-case="{held}" data-outcome="refused">(.*?)</tr>')[0]
    assert "状态「挂起」" in _text(row) and "在版本 2 中没有对应状态" in _text(row)
    assert "「已受理」" in _text(row) and "(received)" in _text(row)  # what a state map names
    assert _chinese_words_only(_cells(zh, r"<td>(.*?)</td>")) == []
    assert "has no counterpart" not in zh

    # An error inside a reason: what its code means in Chinese, its English quoted.
    refused = dash.submit(PATH, f"{PATH}/migrate", **bad_set).get_data(as_text=True)
    row = _cells(refused, rf'<tr data-case="{other}" data-outcome="refused">(.*?)</tr>')[0]
    assert "无法计算字段" in row and "条件表达式无法编译或计算" in row
    assert '<q class="recorded" lang="en" translate="no">' in row
    assert _chinese_words_only(_cells(refused, r"<td>(.*?)</td>")) == []

    dash.set_language("en")
    en = _text(dash.submit(PATH, f"{PATH}/migrate", **PLAN).get_data(as_text=True))
    assert "state 'On hold' (on_hold) has no counterpart in version 2: map it to one of" in en


def test_a_failed_timer_reads_in_chinese_on_the_stuck_list_and_the_case_page(
    dash: Dash,
) -> None:
    refused, refused_timer = ticket_with_failed_reminder(dash.sessions)
    # A passing fault five times over: the timer gives up; its error is a Python exception's.
    broken = create_ticket(dash.sessions)
    with dash.sessions() as session:
        (remind,) = [t for t in timer_firing.case_timers(session, broken) if t.name == "remind"]
    for _attempt in range(timer_firing.MAX_ATTEMPTS):
        with dash.sessions() as session, session.begin():
            timer_firing.record_failure(
                session,
                remind.id,
                ConnectionError("server closed the connection"),
                now=remind.due_at,
            )

    dash.login("supervisor", lang="zh")
    stuck = dash.page("/dashboard/stuck?reason=timer_failed")
    details = _cells(stuck, r'<td class="detail" data-label="[^"]*">(.*?)</td>')
    assert _chinese_words_only(details) == []
    text = _text(stuck)
    assert (
        f"定时器 {refused_timer} remind 触发失败（第 1 次尝试），不再自动重试：本工单不允许提醒。"
        in text
    )
    assert f"定时器 {remind.id} remind 触发失败（第 5 次尝试），不再自动重试：意外错误：" in text
    assert "ConnectionError: server closed the connection" in text  # quoted, as recorded

    for case_id in (refused, broken):
        page = dash.page(f"/dashboard/cases/{case_id}")
        said = _cells(page, r'<div class="error-text">(.*?)</div>')
        said += _cells(page, r'<div class="note" data-testid="event-note">(.*?)</div>')
        assert _chinese_words_only(said) == [], case_id
        assert "payload" not in page.split('data-event="timer_failed"')[1].split("</li>")[0]
    broken_page = _text(dash.page(f"/dashboard/cases/{broken}"))
    assert "尝试 5 次后放弃" in broken_page  # the timer's note
    assert "第 1 次尝试），将于 2025-09-30 12:00 重试" in broken_page  # its first attempt

    dash.set_language("en")
    english = _text(dash.page(f"/dashboard/cases/{refused}"))
    assert "Timer remind failed (attempt 1), not retried any more: GuardRejected: " in english


def test_rows_failed_before_errors_were_kept_as_data_show_their_stored_text(dash: Dash) -> None:
    case_id, timer_id = ticket_with_failed_reminder(dash.sessions)
    with dash.sessions() as session, session.begin():  # as an older release left the row
        session.execute(update(Timer).where(Timer.id == timer_id).values(failure=None))

    dash.login("supervisor", lang="zh")
    stuck = dash.page("/dashboard/stuck?reason=timer_failed")
    (detail,) = _cells(stuck, r'<td class="detail" data-label="[^"]*">(.*?)</td>')
    assert _chinese_words_only([detail]) == []
    assert '<q class="recorded" lang="en" translate="no">GuardRejected: ' in detail
    (cell,) = _cells(
        dash.page(f"/dashboard/cases/{case_id}"), r'<div class="error-text">(.*?)</div>'
    )
    assert "触发失败（第 1 次尝试）" in cell and "GuardRejected: " in cell

    # A history event of before: the lead from its facts, the stored error quoted.
    old = {"timer": "remind", "attempt": 2, "error": "RuntimeError: boom", "gave_up": False}
    said = message_words.timer_failure(
        timer="remind",
        attempt=old["attempt"],
        stored_error=None,
        text=old["error"],
        retry_at="2025-09-30T04:00:10+00:00",
        lang="zh",
        local_time=lambda at: at[:16],
    )
    assert str(said) == (
        '定时器 <span class="mono">remind</span> 触发失败（第 2 次尝试），将于 2025-09-30T04:00 '
        '重试：<q class="recorded" lang="en" translate="no">RuntimeError: boom</q>'
    )
    # A reason the engine wrote into an event: from its code, or else its stored text quoted.
    resumed = "the pause's resume time was reached"
    stored = timer_firing.RESUME_REACHED.to_dict()
    assert message_words.say_stored(stored, resumed, "zh") == "已到暂停时设定的恢复时间"
    assert message_words.say_stored({"code": "gone"}, resumed, "zh") == (
        f'<q class="recorded" lang="en" translate="no">{escape(resumed)}</q>'
    )


def test_the_engine_s_history_entries_read_in_chinese(dash: Dash) -> None:
    """Events the engine records (a timer's SLA warning and breach, a pause ended by its
    resume time, a failed timer dismissed because its case moved on) by their words, their
    clocks' titles and the engine's actors; the English page keeps English words."""
    supervisor = Actor("duty-supervisor", frozenset({"supervisor"}))
    case_id, timer_id = ticket_with_failed_reminder(dash.sessions)
    with dash.sessions() as session, session.begin():
        operations.set_sla_paused(
            session,
            case_id,
            "response",
            True,
            actor=supervisor,
            reason="客户要求稍后上门",
            now=T0 + HOUR,
            resume_at=T0 + 2 * HOUR,
        )
    deliver_due(dash.sessions, case_id, T0 + 6 * HOUR)  # the resume, the warning, the breach
    fire(dash.sessions, case_id, "start", now=T0 + 7 * HOUR)
    with dash.sessions() as session, session.begin():
        operations.retry_timer(
            session, timer_id, actor=supervisor, reason="重试", now=T0 + 8 * HOUR
        )
    kinds = [e.event_type for e in dash.history(case_id)]
    assert {"sla_resumed", "sla_warning", "sla_breached", "timer_cancelled"} <= set(kinds)

    dash.login("supervisor", lang="zh")
    page = dash.page(f"/dashboard/cases/{case_id}")
    history = page[page.index('data-testid="history"') :]
    entries = _cells(history, r'<div class="what">(.*?)</div>\s*</li>')
    # A case's data is data (``allowed = false``): what is left are the page's words.
    entries = [re.sub(r'<div class="changes">.*?</div>', " ", e, flags=re.S) for e in entries]
    assert _chinese_words_only(entries) == []
    text = _text(history)
    assert "已到暂停时设定的恢复时间" in text  # the resume the timer recorded
    assert "时限: 响应时限" in text and "截止: 2025-09-30" in text  # sla_warning, sla_breached
    assert "操作人: 定时器（系统）" in text
    assert f"工单 {case_id} 已离开该定时器所属的状态（当前为「维修中」 (repairing) ）" in text
    timers = _cells(page, r'<td data-kind="(\w+)">([^<]*)</td>')
    assert ("after", "延时") in timers  # chase_parts, armed in 'repairing'

    dash.set_language("en")
    english = _text(dash.page(f"/dashboard/cases/{case_id}"))
    assert "the pause's resume time was reached" in english
    assert "SLA: Response time" in english and "Actor: timer (svcflow)" in english
    assert f"case {case_id} has left the state this timer belonged to (now 'Repairing'" in english


def test_a_refused_plan_lists_its_problems_in_the_reader_s_language(
    dash: Dash, publish_workflow: Any
) -> None:
    create_ticket(dash.sessions)
    assert publish_workflow(V2) == 2
    wrong = {**PLAN, "map_state": "nowhere=received\non_hold=closed\n", "reason": " "}
    wrong["where"] = "data.("

    dash.login("admin", lang="zh")
    sent = dash.submit(PATH, f"{PATH}/migrate", **wrong)
    assert sent.status_code == 302
    page = dash.page(sent.headers["Location"])
    (flash,) = _cells(page, r'<div class="flash error" role="alert">(.*?)</div>')
    assert flash.startswith("工单迁移方案有误（migration-invalid）：")
    for words in [
        "必须填写原因",
        "版本 1 中没有要映射的状态",
        "将被映射到结束状态",
        "条件表达式无法编译或计算",
    ]:
        assert words in flash, words
    assert _chinese_words_only([flash]) == []
    assert "cannot run" not in page and "a reason is required" not in page

    dash.set_language("en")
    sent = dash.submit(PATH, f"{PATH}/migrate", **wrong)
    english = _text(dash.page(sent.headers["Location"]))
    assert "cannot run: a reason is required" in english  # the engine's own sentence
    assert "'on_hold' would map to final state 'closed'" in english


def test_a_parent_s_refusal_of_a_child_s_news_is_said_by_its_code_and_the_guard_s_words() -> None:
    guard = {"code": "guard-rejected", "message": "'loaner_back' cannot be fired in 'open' yet"}
    guard["reasons"] = [{"en": "No loaner is out.", "zh": "没有借出的备用机。"}]
    news = {"trigger": "loaner_back", "not_fired": "guard-rejected", "reason": guard["message"]}
    stored = {
        **news,
        "messages": {"reason": Message(CHILD_NEWS_REFUSED, {"error": guard}).to_dict()},
    }
    assert history_words.refusal(stored, "zh") == "没有借出的备用机。"
    assert history_words.refusal(stored, "en") == escape(guard["message"])
    # A child_update recorded before the codes were kept: its code's meaning, its text quoted.
    assert history_words.refusal(news, "zh") == (
        "不满足该操作的前提条件（<code>guard-rejected</code>）："
        f'<q class="recorded" lang="en" translate="no">{escape(guard["message"])}</q>'
    )


def test_a_draft_s_simulation_report_reads_in_chinese(dash: Dash) -> None:
    path = "/dashboard/definitions/service_ticket/draft"
    dash.login("admin", lang="zh")
    dash.submit(path, path, action="save", source=TICKET)
    scenario = """\
start: 2025-09-30T10:00:00+08:00
steps:
  - create: {case: t1, definition: service_ticket, data: {allowed: true}}
  - advance: 3h
  - expect: {case: t1, state: closed, data: {team: east}, sla: {response: met}}
  - expect_error: {code: guard-rejected, fire: {case: t1, trigger: start}}
  - fire: {case: t1, trigger: close}
"""
    report = dash.submit(path, f"{path}/simulate", scenario=scenario).get_data(as_text=True)
    rows = _cells(report, r'<tr data-step="\d+" class="(?:ok|error)">(.*?)</tr>')
    assert len(rows) == 5
    assert _chinese_words_only(rows) == []
    text = _text(report)
    assert "已创建工单 1，状态为 received" in text and "触发了 2 个定时器" in text
    assert "未通过" in text and "不存在，预期为" in text  # data.team
    assert "预期错误 guard-rejected ，但该步骤成功了" in text  # (the code set as a name)
    assert "close ： repairing → closed" in text

    dash.set_language("en")
    english = _text(dash.submit(path, f"{path}/simulate", scenario=scenario).get_data(as_text=True))
    english = re.sub(r"\s+(?=[,;])", "", english)  # the space before a name's end
    assert 'state is "received", expected "closed"' in english
    assert "expected error guard-rejected, but the step succeeded" in english


def test_news_a_parent_could_not_take_reads_in_chinese_with_its_child_linked(
    dash: Dash, publish_workflow: Any
) -> None:
    publish_workflow(PARENT)
    publish_workflow(CHILD)
    job = create_case(dash.sessions, "ins_job", {"device": "CT-1"}).case.id
    fire(dash.sessions, job, "send_loaner", now=T0 + timedelta(minutes=1))
    with dash.sessions() as session:
        (loaner,) = [c.id for c in links.children(session, job)]
    fire(dash.sessions, job, "hold", now=T0 + HOUR)
    fire(dash.sessions, loaner, "return", now=T0 + 2 * HOUR)  # the parent on hold: not taken

    dash.login("supervisor", lang="zh")
    page = dash.page(f"/dashboard/cases/{job}")
    (update,) = _cells(page, r'data-event="child_update">(.*?)</li>')
    assert "工单当前状态不允许该操作（<code>invalid-trigger</code>）：" in update
    assert f'<a href="/dashboard/cases/{loaner}">下级工单: #{loaner}</a>' in update
    assert "not_fired" not in update and _chinese_words_only([update]) == []
    stuck = dash.page("/dashboard/stuck?reason=orphaned_wait")
    (detail,) = _cells(stuck, r'<td class="detail" data-label="[^"]*">(.*?)</td>')
    assert detail.startswith(f"子工单 {loaner}（ins_loaner）的消息未能触发「loaner_returned」：")
    assert "工单当前状态不允许该操作" in detail and _chinese_words_only([detail]) == []
