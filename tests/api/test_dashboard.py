"""The supervisors' dashboard (/dashboard) through the Flask test client, on SQLite.

Signing in with a token and out again, the role gate, CSRF on every form, each page in Chinese
and English, operator actions from the forms that record their reason, and the rule that a
supervisor cannot force a state. The app's clock is a ManualClock, so "now" is known; cases
are made through the services at earlier instants (tests/factories.py), on a database that
already holds the bundled workflows (the device file and repair tickets) plus the service
ticket of tests/workflows.py.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from api import state
from api.dashboard import i18n
from engine.core.local_time import DEFAULT_TIMEZONE
from engine.core.records import CaseRecord, EventRecord
from engine.errors import SettingInvalid
from engine.services import cases
from engine.services.search import CaseFilter, search_cases
from engine.services.tokens import revoke_token
from tests.api.conftest import DASHBOARD_NOW, REPAIR_DATA, build_dashboard_app, make_tokens
from tests.conftest import T0
from tests.factories import (
    complaint_with_two_rectification_rounds,
    create_case,
    create_ticket,
    fire,
    ticket_with_failed_reminder,
)
from tests.workflows import TICKET

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
NOW = DASHBOARD_NOW  # the app's clock, 15:00 in Beijing: a ticket made at T0 is past its SLA
SERIAL = REPAIR_DATA["device_serial"]
DEVICE_DATA = {"device_serial": SERIAL, "customer": REPAIR_DATA["customer"]}
NO_IMAGE = {**REPAIR_DATA, "fault": "No image"}  # a repair ticket for the device above
OTHER_DEVICE = {**REPAIR_DATA, "customer": "Other", "device_serial": "MR-1", "fault": "Noise"}

KPI_CONFIG = """\
timezone: Asia/Shanghai
groups: {team: team, customer: customer, device: device_serial}
sla_kpis:
  response_timeliness:
    definition: service_ticket
    sla: response
    target: 0.99
"""


@dataclass
class Dash:
    """The test client signed in (or not) as one role, with the database beside it."""

    app: Flask
    client: FlaskClient
    tokens: dict[str, str]
    sessions: sessionmaker[Session]

    def login(self, role: str = "supervisor", lang: str | None = None) -> TestResponse:
        if lang is not None:
            self.set_language(lang)
        page = self.client.get("/dashboard/login")
        return self.client.post(
            "/dashboard/login",
            data={"token": self.tokens[role], "csrf_token": csrf(page), "next": "/dashboard/"},
        )

    def set_language(self, lang: str) -> None:
        page = self.client.get("/dashboard/login")
        done = self.client.post(
            "/dashboard/lang",
            data={"lang": lang, "csrf_token": csrf(page), "next": "/dashboard/login"},
        )
        assert done.status_code == 302

    def page(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)[:2000]
        return response.get_data(as_text=True)

    def submit(self, page_path: str, url: str, **fields: Any) -> TestResponse:
        """Post a form the way a browser would: with the CSRF token of the page it is on."""
        token = csrf(self.client.get(page_path))
        return self.client.post(url, data={"csrf_token": token, "next": page_path, **fields})

    def history(self, case_id: int) -> list[EventRecord]:
        with self.sessions() as session, session.begin():
            return cases.history(session, case_id)

    def case(self, case_id: int) -> CaseRecord:
        with self.sessions() as session, session.begin():
            return cases.get_case(session, case_id)


def csrf(response: TestResponse | str) -> str:
    text = response if isinstance(response, str) else response.get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, "the page has no form with a CSRF token"
    return html.unescape(found.group(1))


@pytest.fixture
def db_url(api_sqlite_url: str) -> str:
    """SQLite with the bundled workflows published (tests/api/conftest.py)."""
    return api_sqlite_url


@pytest.fixture
def kpi_config(tmp_path: Path) -> Path:
    return tmp_path / "kpis.yaml"  # absent until a test writes it


@pytest.fixture
def dash(
    db_url: str, sessions: sessionmaker[Session], publish_workflow: Any, kpi_config: Path
) -> Iterator[Dash]:
    publish_workflow(TICKET)
    app = build_dashboard_app(db_url, kpi_config)
    yield Dash(app, app.test_client(), make_tokens(sessions, "dash"), sessions)
    state.of(app).runtime.close()


def _actions_url(body: str, case_id: int) -> str:
    """The URL a stuck finding's "Act on it" loads its forms from."""
    found = re.search(rf'data-src="(/dashboard/cases/{case_id}/actions[^"]*)"', body)
    assert found is not None, f"no actions link for case {case_id}"
    return html.unescape(found.group(1))


def _text(body: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, spaces squashed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


# --- signing in and out ------------------------------------------------------------------------


def test_pages_need_a_signed_in_session(dash: Dash) -> None:
    for path in ("/dashboard/", "/dashboard/stuck", "/dashboard/kpis", "/dashboard/cases/1"):
        response = dash.client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/dashboard/login?next=")


def test_a_supervisor_signs_in_and_out(dash: Dash) -> None:
    signed_in = dash.login("supervisor", lang="en")
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/dashboard/"
    assert "session=" in signed_in.headers["Set-Cookie"]
    overview = dash.page("/dashboard/")
    assert "dash-supervisor" in overview and "Signed in." in overview

    out = dash.submit("/dashboard/", "/dashboard/logout")
    assert out.status_code == 302 and out.headers["Location"] == "/dashboard/login"
    assert "Signed out." in dash.page("/dashboard/login")
    assert dash.client.get("/dashboard/").status_code == 302


def test_sign_in_returns_to_the_page_asked_for_but_never_leaves_the_dashboard(dash: Dash) -> None:
    page = dash.client.get("/dashboard/login?next=/dashboard/stuck")
    assert 'name="next" value="/dashboard/stuck"' in page.get_data(as_text=True)
    done = dash.client.post(
        "/dashboard/login",
        data={
            "token": dash.tokens["supervisor"],
            "csrf_token": csrf(page),
            "next": "/dashboard/stuck",
        },
    )
    assert done.headers["Location"] == "/dashboard/stuck"
    page = dash.client.get("/dashboard/login")
    for outside in ("https://evil.example/", "//evil.example/x", "/api/v1/cases"):
        done = dash.client.post(
            "/dashboard/login",
            data={"token": dash.tokens["supervisor"], "csrf_token": csrf(page), "next": outside},
        )
        assert done.headers["Location"] == "/dashboard/", outside
        page = dash.client.get("/dashboard/login")


def test_integrators_may_not_sign_in(dash: Dash) -> None:
    role = "integrator"  # the other roles' pages: tests/api/test_dashboard_roles.py
    refused = dash.login(role, lang="en")
    assert refused.status_code == 403
    text = _text(refused.get_data(as_text=True))
    assert f"has the role '{role}'" in text
    assert "supervisors, process owners and administrators only" in text
    assert dash.client.get("/dashboard/").status_code == 302  # not signed in

    assert dash.login("admin").status_code == 302
    assert dash.client.get("/dashboard/").status_code == 200


def test_an_unknown_token_is_refused_and_a_revoked_one_ends_the_session(dash: Dash) -> None:
    page = dash.client.get("/dashboard/login")
    wrong = dash.client.post(
        "/dashboard/login", data={"token": "svcf_nope", "csrf_token": csrf(page)}
    )
    assert wrong.status_code == 401
    assert "令牌无效或已被吊销" in wrong.get_data(as_text=True)  # Chinese by default

    dash.login("supervisor")
    assert dash.client.get("/dashboard/").status_code == 200
    with dash.sessions() as session, session.begin():
        revoke_token(session, "dash-supervisor", now=NOW)
    assert dash.client.get("/dashboard/").status_code == 302


# --- CSRF ---------------------------------------------------------------------------------------


def test_a_form_post_without_its_csrf_token_is_refused_and_changes_nothing(dash: Dash) -> None:
    case_id = create_ticket(dash.sessions)
    dash.login("supervisor", lang="en")
    before = dash.history(case_id)
    for token in (None, "forged"):
        data = {"reason": "customer asked", "confirm": "yes", "next": "/dashboard/"}
        if token:
            data["csrf_token"] = token
        refused = dash.client.post(f"/dashboard/cases/{case_id}/cancel", data=data)
        assert refused.status_code == 400
        assert "Form refused" in refused.get_data(as_text=True)
    assert dash.history(case_id) == before
    assert dash.case(case_id).status == "open"

    page = dash.client.get("/dashboard/login")
    assert (
        dash.client.post("/dashboard/login", data={"token": dash.tokens["admin"]}).status_code
        == 400
    )
    assert csrf(page)  # the login form itself carries one


def test_the_json_api_needs_no_csrf_token(dash: Dash) -> None:
    """CSRF is the dashboard's: bearer-token API calls are not forms and are not checked."""
    case_id = create_ticket(dash.sessions)
    dash.login("supervisor")  # a session cookie in the jar changes nothing for the API
    response = dash.client.post(
        f"/api/v1/supervision/cases/{case_id}/cancel",
        json={"reason": "duplicate"},
        headers={"Authorization": f"Bearer {dash.tokens['supervisor']}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)


# --- pages in both languages --------------------------------------------------------------------


def test_the_language_switch_is_kept_in_the_session(dash: Dash) -> None:
    dash.login("supervisor")
    assert "退出登录" in dash.page("/dashboard/")  # Chinese by default
    switched = dash.submit("/dashboard/stuck", "/dashboard/lang", lang="en")
    assert switched.headers["Location"] == "/dashboard/stuck"
    assert "Log out" in dash.page("/dashboard/stuck")
    assert "Log out" in dash.page("/dashboard/kpis")


def test_the_overview_draws_each_workflow_with_live_counts_and_stuck_states(dash: Dash) -> None:
    ticket_with_failed_reminder(dash.sessions)
    create_ticket(dash.sessions, now=NOW)  # in "received" too, and not stuck
    dash.login("supervisor", lang="en")
    body = dash.page("/dashboard/")
    assert body.count("<svg") >= 3  # every published definition has a diagram
    section = body[body.index('id="def-service_ticket"') :]
    section = section[: section.index("</section>")]
    # received has two open cases, one of them stuck: its node is highlighted
    node = section[section.index("<title>received</title>") :]
    node = node[: node.index("</g>")]
    assert 'fill="#fde2e1"' in node
    assert ">Received</text>" in node and ">(2)</text>" in node
    assert "<title>repairing</title>" in section
    assert re.search(r'data-reason="timer_failed">1<', body)
    assert re.search(r'data-reason="sla_breached">1<', body)

    dash.set_language("zh")
    zh = dash.page("/dashboard/")
    assert ">已受理</text>" in zh and "服务工单" in zh and "设备档案" in zh


def test_the_stuck_list_shows_findings_with_filters_in_both_languages(dash: Dash) -> None:
    failed, timer_id = ticket_with_failed_reminder(dash.sessions)
    dash.login("supervisor", lang="en")
    body = dash.page("/dashboard/stuck?reason=timer_failed")
    text = _text(body)
    assert f'data-case="{failed}" data-reason="timer_failed"' in body
    assert f"timer {timer_id}: GuardRejected" in text
    assert "then retry the timer" in text  # the suggested action
    assert 'class="action' not in body  # a finding's forms load when asked for
    actions = _actions_url(body, failed)
    assert f"timer={timer_id}" in actions
    assert f"/dashboard/timers/{timer_id}/retry" in dash.page(actions)
    assert "2025-09-30 12:00" in text  # since: the failure, in Beijing time
    assert 'data-reason="sla_breached"' not in body  # filtered out

    assert 'data-reason="sla_breached"' in dash.page("/dashboard/stuck")
    assert "data-case=" not in dash.page("/dashboard/stuck?definition=repair_ticket")
    assert dash.client.get("/dashboard/stuck?reason=bogus").status_code == 400

    dash.set_language("zh")
    zh = _text(dash.page("/dashboard/stuck?reason=timer_failed&definition=service_ticket"))
    assert "定时器失败" in zh and "服务工单 · 已受理" in zh
    assert f"定时器 {timer_id} remind 触发失败（第 1 次尝试）" in zh  # the detail in Chinese
    assert "本工单不允许提醒。" in zh and "GuardRejected" not in zh  # the guard's own words


def test_times_are_in_the_deployments_zone_named_below_each_page(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, db_url: str, kpi_config: Path
) -> None:
    monkeypatch.setenv("SVCFLOW_TIMEZONE", "Asia/Urumqi")  # UTC+06:00, two hours behind Beijing
    dash: Dash = request.getfixturevalue("dash")
    case_id, _ = ticket_with_failed_reminder(dash.sessions)  # created at T0: 10:00 in Beijing
    dash.login("supervisor", lang="en")

    text = _text(dash.page(f"/dashboard/cases/{case_id}"))
    assert "1 2025-09-30 08:00 created → Received" in text  # the timeline's first event
    assert "Times are Asia/Urumqi time (UTC+06:00)." in text
    dash.set_language("zh")
    assert "时间均为 Asia/Urumqi 时间（UTC+06:00）。" in _text(dash.page("/dashboard/"))

    monkeypatch.setenv("SVCFLOW_TIMEZONE", "Asia/Beijing")  # not a zone: the app does not start
    with pytest.raises(SettingInvalid, match="Asia/Beijing is not a time zone"):
        build_dashboard_app(db_url, kpi_config)


def test_times_are_in_beijing_time_by_default(dash: Dash) -> None:
    dash.login("supervisor", lang="en")
    assert "Times are Beijing time (Asia/Shanghai)." in _text(dash.page("/dashboard/"))


def test_the_case_page_shows_timeline_timers_clocks_and_links(dash: Dash) -> None:
    device = create_case(dash.sessions, "device", DEVICE_DATA, business_key=SERIAL).case.id
    case_id, timer_id = ticket_with_failed_reminder(dash.sessions)
    fire(dash.sessions, case_id, "start", now=T0 + 3 * HOUR, reason="parts arrived")
    child = create_case(dash.sessions, "repair_ticket", NO_IMAGE, now=T0 + HOUR).case.id
    dash.login("supervisor", lang="en")

    body = dash.page(f"/dashboard/cases/{case_id}")
    text = _text(body)
    assert "Case " + str(case_id) in text and "Service ticket" in text
    assert "created → Received" in text
    assert "Start the repair (start)" in text and "Received → Repairing" in text
    assert "Reason: parts arrived" in text
    assert "2025-09-30 13:00" in text  # the start, at T0 + 3 h in Beijing time
    # the response SLA stopped after 3 h of its 4 h: met, three quarters of its bar
    assert 'data-sla="response" data-status="met"' in body
    assert 'aria-valuenow="75.0"' in body and "3 h 0 min / 4 h 0 min" in text
    # the failed reminder is kept with its error (the case moved on, so it is not retried)
    assert f'data-timer="{timer_id}" data-status="failed"' in body
    assert "GuardRejected" in text

    ticket = _text(dash.page(f"/dashboard/cases/{child}"))
    assert f"#{device}" in ticket and "Parent case" in ticket  # attached to its device file
    device_page = dash.page(f"/dashboard/cases/{device}")
    assert f'/dashboard/cases/{child}"' in device_page and "Child cases" in device_page

    dash.set_language("zh")
    zh = _text(dash.page(f"/dashboard/cases/{case_id}"))
    assert "工单 " + str(case_id) in zh and "已受理 → 维修中" in zh and "开始维修" in zh
    assert "响应时限" in zh and "已达成" in zh and "历史记录" in zh
    assert dash.client.get("/dashboard/cases/999999").status_code == 404


def test_the_case_page_shows_each_round_of_a_repeating_clock(dash: Dash) -> None:
    case_id = complaint_with_two_rectification_rounds(dash.sessions)
    dash.login("supervisor", lang="en")

    body = dash.page(f"/dashboard/cases/{case_id}")
    assert 'data-sla="feedback" data-status="breached" data-round="1"' in body
    assert 'data-sla="feedback" data-status="met" data-round="2"' in body
    text = _text(body)
    assert "Result fed back round 1 breached" in text
    assert "Result fed back round 2 met 20 h 0 min / 2 d 0 h" in text
    # A clock that runs once is not labelled with a round.
    assert "Verification and written answer met" in text
    dash.set_language("zh")
    zh = _text(dash.page(f"/dashboard/cases/{case_id}"))
    assert "整改结果反馈 轮次 2" in zh


def test_the_device_file_lists_every_case_of_the_device_newest_first(dash: Dash) -> None:
    device = create_case(dash.sessions, "device", DEVICE_DATA, business_key=SERIAL).case.id
    first = create_case(dash.sessions, "repair_ticket", NO_IMAGE, now=T0 + HOUR).case.id
    # A service ticket naming the serial: no link to the device file, only the serial.
    named = create_ticket(dash.sessions, now=T0 + 2 * HOUR, device_serial=SERIAL)
    other = create_case(dash.sessions, "repair_ticket", OTHER_DEVICE, now=T0 + HOUR).case.id
    dash.login("supervisor", lang="en")

    body = dash.page(f"/dashboard/devices/{SERIAL}")
    assert f'data-testid="device-file"><a href="/dashboard/cases/{device}"' in body
    listed = [int(n) for n in re.findall(r'<tr data-case="(\d+)"', body)]
    assert listed == [named, first]  # newest first; not the device file, not another device
    assert other not in listed
    text = _text(body)
    # Each row names the case's workflow and state, as the supervisor reads them.
    assert f"#{named} Service ticket Received open" in text
    assert f"#{first} Repair ticket Logged open" in text

    dash.set_language("zh")
    zh = _text(dash.page(f"/dashboard/devices/{SERIAL}"))
    assert "一机一档" in zh and "服务工单" in zh and "设备档案" in zh
    assert dash.client.get("/dashboard/devices/NO-SUCH").status_code == 404
    assert dash.client.get(f"/dashboard/find?q={SERIAL}").headers["Location"] == (
        f"/dashboard/devices/{SERIAL}"
    )
    assert dash.client.get(f"/dashboard/find?q={first}").headers["Location"] == (
        f"/dashboard/cases/{first}"
    )


def test_the_kpi_page_says_plainly_when_kpis_are_not_configured(
    dash: Dash, kpi_config: Path
) -> None:
    dash.login("supervisor", lang="en")
    text = _text(dash.page("/dashboard/kpis"))
    assert f"KPIs are not configured: {kpi_config} does not exist" in text
    dash.set_language("zh")
    assert "尚未配置考核指标" in _text(dash.page("/dashboard/kpis"))


def test_the_kpi_page_charts_the_month_against_targets_and_six_months(
    dash: Dash, kpi_config: Path
) -> None:
    kpi_config.write_text(KPI_CONFIG, "utf-8")
    create_ticket(dash.sessions, team="north")  # made at T0: its 4 h SLA has run out
    on_time = create_ticket(dash.sessions, team="south")
    fire(dash.sessions, on_time, "start", now=T0 + HOUR)
    dash.login("supervisor", lang="en")

    # The last full month by default (it is 2025-09 in Beijing): the current one is partial.
    assert 'name="month" value="2025-08"' in dash.page("/dashboard/kpis")
    body = dash.page("/dashboard/kpis?month=2025-09")
    assert 'name="month" value="2025-09"' in body
    kpi = body[body.index('data-kpi="response_timeliness"') :]
    text = _text(kpi)
    assert "Response timeliness" in text and "Target ≥ 99%" in text
    assert "50%" in text and "not met" in text and "1 / 2" in text
    assert kpi.count('<svg class="chart') == 2  # the month's bars and the six-month trend
    assert all(f">{m}</text>" in kpi for m in ("2025-04", "2025-09"))

    grouped = _text(dash.page("/dashboard/kpis?month=2025-09&by=team"))
    assert re.search(r"north\s+0%\s+not met", grouped)
    assert re.search(r"south\s+100%\s+met", grouped)
    assert dash.client.get("/dashboard/kpis?month=2025-13").status_code == 400

    dash.set_language("zh")
    zh = _text(dash.page("/dashboard/kpis?month=2025-09"))
    assert "响应及时率" in zh and "未达标" in zh and "近六个月趋势" in zh


# --- operator actions ---------------------------------------------------------------------------


def _flash(response: TestResponse, dash: Dash) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    return _text(dash.page(response.headers["Location"]))


def test_operator_actions_from_the_forms_record_their_reason(dash: Dash) -> None:
    failed, timer_id = ticket_with_failed_reminder(dash.sessions)
    case_id = create_ticket(dash.sessions, now=NOW - HOUR)  # its response clock runs: 1 h of 4 h
    page = f"/dashboard/cases/{case_id}"
    dash.login("supervisor", lang="en")

    retried = dash.submit(
        "/dashboard/stuck",
        f"/dashboard/timers/{timer_id}/retry",
        case_id=failed,
        reason="guard data fixed",
    )
    assert retried.headers["Location"] == "/dashboard/stuck"
    assert f"Retry timer done on case {failed}." in _flash(retried, dash)
    (event,) = dash.history(failed)[-1:]
    assert (event.event_type, event.actor) == ("timer_retried", "token:dash-supervisor")
    assert event.payload == {"timer_id": timer_id, "reason": "guard data fixed"}
    shown = _text(dash.page(f"/dashboard/cases/{failed}"))
    assert "timer retried" in shown and "Reason: guard data fixed" in shown

    paused = dash.submit(
        page,
        f"/dashboard/cases/{case_id}/sla",
        sla="response",
        action="pause",
        reason="customer asked to wait",
    )
    assert "Pause SLA done" in _flash(paused, dash)
    resumed = dash.submit(
        page,
        f"/dashboard/cases/{case_id}/sla",
        sla="response",
        action="resume",
        reason="customer is back",
    )
    assert "Resume SLA done" in _flash(resumed, dash)
    moved = dash.submit(
        page, f"/dashboard/cases/{case_id}/reassign", assignee="Li Wei", reason="Zhang is on leave"
    )
    assert "Reassign done" in _flash(moved, dash)
    fired = dash.submit(
        page,
        f"/dashboard/cases/{case_id}/fire",
        trigger="start",
        payload="{}",
        reason="engineer on site already",
    )
    assert fired.headers["Location"] == page and "Fire trigger done" in _flash(fired, dash)

    events = dash.history(case_id)[1:]
    assert [e.event_type for e in events] == [
        "sla_paused",
        "sla_resumed",
        "reassigned",
        "transition",
    ]
    assert all(e.actor == "token:dash-supervisor" for e in events)
    assert events[0].payload == {"sla": "response", "reason": "customer asked to wait"}
    assert events[1].payload == {"sla": "response", "reason": "customer is back"}
    assert events[2].payload["reason"] == "Zhang is on leave"
    assert dash.case(case_id).data["engineer"] == "Li Wei"
    assert events[3].context == {"reason": "engineer on site already"}

    unconfirmed = dash.submit(page, f"/dashboard/cases/{case_id}/cancel", reason="duplicate")
    assert "Tick the confirmation box" in _flash(unconfirmed, dash)
    assert dash.case(case_id).status == "open"  # nothing without the box ticked
    cancelled = dash.submit(
        page, f"/dashboard/cases/{case_id}/cancel", reason="duplicate", confirm="yes"
    )
    assert "Cancel case done" in _flash(cancelled, dash)
    assert dash.case(case_id).status == "cancelled"
    assert dash.history(case_id)[-1].payload == {"reason": "duplicate"}
    assert "it takes no more actions" in _text(dash.page(page))


def test_a_pause_given_a_resume_time_on_the_form_is_listed_with_it_and_can_be_resumed(
    dash: Dash,
) -> None:
    """The form's date and time has no offset: it is read in the deployment's zone, the one
    the page shows times in. The stuck page lists the pause with its resume time and offers
    to resume it."""
    case_id = create_ticket(dash.sessions, now=NOW - HOUR)
    page = f"/dashboard/cases/{case_id}"
    dash.login("supervisor", lang="en")
    beijing = (NOW + timedelta(hours=21)).astimezone(ZoneInfo(DEFAULT_TIMEZONE))

    bad = _flash(
        dash.submit(
            page,
            f"/dashboard/cases/{case_id}/sla",
            sla="response",
            action="pause",
            reason="engineer abroad",
            resume_at="next monday",
        ),
        dash,
    )
    assert "next monday is not a date and time." in bad
    before_time = _flash(
        dash.submit(
            page,
            f"/dashboard/cases/{case_id}/sla",
            sla="response",
            action="pause",
            reason="engineer abroad",
            resume_at="0001-01-01T00:00",  # east of UTC, before the first instant there is
        ),
        dash,
    )
    assert "0001-01-01T00:00 is not a date and time." in before_time
    paused = dash.submit(
        page,
        f"/dashboard/cases/{case_id}/sla",
        sla="response",
        action="pause",
        reason="engineer abroad",
        resume_at=beijing.strftime("%Y-%m-%dT%H:%M"),
    )
    assert "Pause SLA done" in _flash(paused, dash)
    event = dash.history(case_id)[-1]
    assert event.payload["resume_at"] == (NOW + timedelta(hours=21)).isoformat()

    stuck = dash.page("/dashboard/stuck?reason=sla_paused")
    row = re.search(
        rf'<tr class="finding reason-sla_paused" data-case="{case_id}".*?</tr>', stuck, re.S
    )
    assert row is not None
    shown = _text(row.group(0))
    assert "paused by an operator until its resume time" in shown
    assert f"Resumes at {beijing:%Y-%m-%d %H:%M}" in shown
    forms = dash.page(_actions_url(row.group(0), case_id))
    assert 'name="action" value="resume"' in forms  # the finding's own clock, to resume


def test_a_call_logged_late_shows_when_it_happened_and_when_it_was_received(dash: Dash) -> None:
    case_id = create_case(dash.sessions, "repair_ticket", dict(REPAIR_DATA), now=T0).case.id
    fire(
        dash.sessions,
        case_id,
        "contact",
        {"at": (T0 + 20 * MINUTE).isoformat()},
        now=T0 + 35 * MINUTE,
    )
    dash.login("supervisor", lang="en")

    shown = _text(dash.page(f"/dashboard/cases/{case_id}"))

    # 10:20 and 10:35 in Beijing; the event sits at the instant it counts at, 10:20.
    assert "Reported as happened at 2025-09-30 10:20, received at 2025-09-30 10:35" in shown
    assert "outside the bounds" not in shown


def test_a_guard_refusal_shows_the_definition_s_words_in_the_page_s_language(dash: Dash) -> None:
    case_id = create_ticket(dash.sessions, allowed=False)
    page = f"/dashboard/cases/{case_id}"
    dash.login("supervisor", lang="zh")

    refused = _flash(
        dash.submit(
            page, f"/dashboard/cases/{case_id}/fire", trigger="remind", payload="{}", reason="x"
        ),
        dash,
    )

    assert "本工单不允许提醒。" in refused
    assert "data.allowed" not in refused


def test_a_refused_action_shows_the_engine_error_and_its_hint(dash: Dash) -> None:
    case_id = create_ticket(dash.sessions)
    page = f"/dashboard/cases/{case_id}"
    dash.login("supervisor", lang="en")
    before = dash.history(case_id)

    blank = _flash(dash.submit(page, f"/dashboard/cases/{case_id}/cancel", reason="   "), dash)
    assert "Cancel case on case" in blank and "the reason cannot be blank" in blank
    resumed = _flash(
        dash.submit(
            page, f"/dashboard/cases/{case_id}/sla", sla="nope", action="resume", reason="x"
        ),
        dash,
    )
    assert "'service_ticket' has no SLA 'nope'." in resumed
    assert "Hint: SLAs: response, repair." in resumed
    broken = _flash(
        dash.submit(
            page,
            f"/dashboard/cases/{case_id}/fire",
            trigger="start",
            payload="{not json",
            reason="x",
        ),
        dash,
    )
    assert "The payload is not a JSON object" in broken
    nul = _flash(
        dash.submit(
            page,
            f"/dashboard/cases/{case_id}/fire",
            trigger="start",
            payload='{"note": "a\\u0000b"}',
            reason="x",
        ),
        dash,
    )
    assert "The text has a NUL character." in nul
    long = _flash(dash.submit(page, f"/dashboard/cases/{case_id}/cancel", reason="x" * 1001), dash)
    assert "reason is longer than 1000 characters" in long
    retried = _flash(
        dash.submit(page, "/dashboard/timers/424242/retry", case_id=case_id, reason="x"), dash
    )
    assert "No failed timer with id 424242." in retried
    assert "svcflow timers failed" in retried  # the hint
    assert dash.history(case_id) == before


def test_a_supervisor_cannot_force_a_state_but_an_administrator_can(dash: Dash) -> None:
    case_id = create_ticket(dash.sessions)
    page = f"/dashboard/cases/{case_id}"
    dash.login("supervisor", lang="en")
    assert "/force" not in dash.page(page)  # no form for it
    refused = dash.submit(
        page, f"/dashboard/cases/{case_id}/force", state="closed", reason="I insist"
    )
    assert refused.status_code == 403
    assert "Only administrators may force" in refused.get_data(as_text=True)
    assert dash.case(case_id).state == "received"
    assert all(e.event_type != "forced" for e in dash.history(case_id))

    dash.submit(page, "/dashboard/logout")
    dash.login("admin", lang="en")
    assert f"/dashboard/cases/{case_id}/force" in dash.page(page)
    forced = dash.submit(
        page,
        f"/dashboard/cases/{case_id}/force",
        state="repairing",
        reason="fixed by phone, recorded late",
        confirm="yes",
    )
    assert "Force state (administrators) done" in _flash(forced, dash)
    last = dash.history(case_id)[-1]
    assert (last.event_type, last.to_state, last.actor) == (
        "forced",
        "repairing",
        "token:dash-admin",
    )
    assert last.payload == {"reason": "fixed by phone, recorded late"}


# --- the words ----------------------------------------------------------------------------------


def test_every_dashboard_string_has_chinese_and_english() -> None:
    tables = [i18n.STRINGS, i18n.REASONS, i18n.EVENTS, i18n.STATUSES, i18n.KPIS]
    assert all(tables), "an empty table would pass the check below on nothing"
    for table in tables:
        for key, entry in table.items():
            assert set(entry) == {"zh", "en"} and all(entry.values()), key
    assert set(i18n.REASONS) == set(i18n.REASON_ACTIONS)


def test_the_fire_form_offers_only_what_the_user_may_fire(dash: Dash) -> None:
    """chase is its timer's trigger (system-only); close is open to people."""
    case_id = create_ticket(dash.sessions)
    fire(dash.sessions, case_id, "start")
    dash.login("supervisor", lang="en")

    page = dash.page(f"/dashboard/cases/{case_id}")

    assert '<option value="close">' in page
    assert '<option value="chase">' not in page


# --- the definitions page ------------------------------------------------------------------------

TICKET_V2 = TICKET.replace("warn_at: [0.5]", "warn_at: [0.75]")


def test_definition_page_shows_versions_counts_diagram_and_changes(
    dash: Dash, publish_workflow: Any
) -> None:
    create_ticket(dash.sessions)
    assert publish_workflow(TICKET_V2) == 2
    dash.login("supervisor", lang="en")

    page = dash.page("/dashboard/definitions/service_ticket")

    rows = re.findall(r'<tr data-version="(\d)">(.*?)</tr>', page, re.DOTALL)
    assert [n for n, _ in rows] == ["1", "2"]
    assert "1 (received 1)" in rows[0][1] and "current" in rows[1][1]
    assert "<svg" in page
    assert "warn_at: [0.5] -&gt; [0.75]" in page  # the summary, from v1 to v2
    assert 'action="/dashboard/definitions/service_ticket/promote"' not in page  # admins only
    assert "/dashboard/definitions/service_ticket" in dash.page("/dashboard/")
    one = dash.page("/dashboard/definitions/service_ticket?version=1&from=2&to=1")
    assert "Changes from version 2 to 1" in one
    assert dash.client.get("/dashboard/definitions/service_ticket?version=9").status_code == 404
    assert dash.client.get("/dashboard/definitions/service_ticket?version=x").status_code == 400
    assert dash.client.get("/dashboard/definitions/nothing").status_code == 404


def test_a_versions_diagram_opens_full_size_with_its_running_cases(
    dash: Dash, publish_workflow: Any
) -> None:
    create_ticket(dash.sessions)
    assert publish_workflow(TICKET_V2) == 2
    dash.login("supervisor", lang="zh")
    path = "/dashboard/definitions/service_ticket"
    assert f'href="{path}/diagram.svg?version=2"' in dash.page(path)

    one = dash.client.get(f"{path}/diagram.svg?version=1")

    assert one.status_code == 200 and one.mimetype == "image/svg+xml"
    svg = one.get_data(as_text=True)
    assert svg.startswith("<svg") and ">已受理</text>" in svg  # the page's language
    received = svg[svg.index("<title>received</title>") :]
    assert ">(1)</text>" in received[: received.index("</g>")]  # the v1 case in received
    assert dash.client.get(f"{path}/diagram.svg").status_code == 200  # the current version
    assert dash.client.get(f"{path}/diagram.svg?version=9").status_code == 404
    assert dash.client.get(f"{path}/diagram.svg?version=x").status_code == 400
    assert dash.client.get("/dashboard/definitions/nothing/diagram.svg").status_code == 404
    dash.submit(path, "/dashboard/logout")
    assert dash.client.get(f"{path}/diagram.svg").status_code == 302  # to the login page


def test_an_administrator_promotes_a_version_from_the_page(
    dash: Dash, publish_workflow: Any
) -> None:
    assert publish_workflow(TICKET_V2) == 2
    path = "/dashboard/definitions/service_ticket"
    dash.login("supervisor", lang="en")
    refused = dash.submit(path, f"{path}/promote", version="1", reason="rollback")
    assert refused.status_code == 403
    dash.login("admin", lang="zh")

    done = dash.submit(path, f"{path}/promote", version="1", reason="v2 的预警太晚")

    assert done.status_code == 302
    page = dash.page(path)
    assert "service_ticket 的新工单现在使用版本 1。" in page
    assert "v2 的预警太晚" in page  # the decision, with its reason
    assert dash.case(create_ticket(dash.sessions)).definition_version == 1
    no_reason = dash.submit(path, f"{path}/promote", version="2", reason="")
    assert no_reason.status_code == 302
    assert "Say why you are promoting service_ticket version 2" in dash.page(path)
    assert dash.case(create_ticket(dash.sessions)).definition_version == 1  # nothing changed


def test_an_administrator_migrates_cases_from_the_page_after_a_dry_run(
    dash: Dash, publish_workflow: Any
) -> None:
    held = create_ticket(dash.sessions)
    fire(dash.sessions, held, "hold")
    renamed = TICKET.replace("on_hold", "waiting")
    assert publish_workflow(renamed) == 2
    path = "/dashboard/definitions/service_ticket"
    plan = {
        "from_version": "1",
        "to_version": "2",
        "map_state": "on_hold=waiting\n",
        "params": "keep",
        "reason": "rename on_hold",
    }
    dash.login("supervisor", lang="en")
    assert 'action="/dashboard/definitions/service_ticket/migrate"' not in dash.page(path)
    assert dash.submit(path, f"{path}/migrate", **plan).status_code == 403
    dash.login("admin", lang="en")
    assert 'action="/dashboard/definitions/service_ticket/migrate"' in dash.page(path)

    dry = dash.submit(path, f"{path}/migrate", **plan)
    text = dry.get_data(as_text=True)
    assert dry.status_code == 200 and 'data-testid="dry-run"' in text
    assert f'data-case="{held}" data-outcome="would_move"' in text
    assert dash.case(held).definition_version == 1  # nothing written

    done = dash.submit(path, f"{path}/migrate", **plan, apply="yes").get_data(as_text=True)
    assert f'data-case="{held}" data-outcome="moved"' in done
    case = dash.case(held)
    assert (case.definition_version, case.state) == (2, "waiting")
    assert dash.history(held)[-1].event_type == "migrated"

    wrong = dash.submit(path, f"{path}/migrate", **{**plan, "map_state": "on_hold=limbo"})
    assert wrong.status_code == 302
    assert "version 2 has no state &#39;limbo&#39;" in dash.page(path)


def test_an_administrator_edits_a_draft_sees_errors_at_their_lines_and_publishes(
    dash: Dash,
) -> None:
    path = "/dashboard/definitions/service_ticket/draft"
    dash.login("supervisor", lang="en")
    assert dash.client.get(path).status_code == 403
    dash.login("admin", lang="en")
    start = dash.page(path)
    assert "name: service_ticket" in start  # the current version's source to start from

    broken = TICKET.replace("    dest: repairing\n", "    dest: nowhere\n", 1)
    line = broken.splitlines().index("    dest: nowhere") + 1
    assert dash.submit(path, path, action="save", source=broken).status_code == 302
    page = dash.page(path)
    assert "Draft of service_ticket saved." in page
    assert f'data-line="{line}"' in page and "nowhere" in page
    assert "1 error(s)" in page
    assert re.search(r'value="publish" disabled', page)

    fixed = TICKET.replace("warn_at: [0.5]", "warn_at: [0.6]")
    dash.submit(path, path, action="save", source=fixed)
    assert "0 error(s)" in dash.page(path)
    published = dash.submit(path, path, action="publish")
    assert published.status_code == 302
    assert "service_ticket published as version 2." in dash.page(
        "/dashboard/definitions/service_ticket"
    )


def test_a_scenario_runs_against_the_saved_draft_on_virtual_time(dash: Dash) -> None:
    path = "/dashboard/definitions/service_ticket/draft"
    dash.login("admin", lang="en")
    dash.submit(path, path, action="save", source=TICKET)
    scenario = """\
start: 2025-09-30T10:00:00+08:00
steps:
  - create: {case: t1, definition: service_ticket, data: {allowed: true}}
  - advance: 3h
  - expect: {case: t1, state: received, triggers: [remind]}
  - expect: {case: t1, state: closed}
"""
    response = dash.submit(path, f"{path}/simulate", scenario=scenario)

    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "1 step(s) failed." in text and "2 timer(s) fired" in text  # remind, the SLA warning
    assert re.search(r'data-step="3" class="error"', text)
    assert 'data-step="2" class="ok"' in text
    with dash.sessions() as session, session.begin():  # nothing reached this database
        found, _ = search_cases(
            session, CaseFilter(definition="service_ticket"), now=T0, before_id=None, limit=5
        )
    assert found == []
    bad = dash.submit(path, f"{path}/simulate", scenario="steps: [")
    assert bad.status_code == 302
