"""Who may use which dashboard page and action (api/dashboard/access.py ENDPOINT_ROLES).

Supervisors work the cases; process owners steer the definitions (versions, drafts, publish,
promote, retire, migrate) and read the overview and the KPIs; administrators do both;
integrators cannot sign in. A page or action refused to a role is a 403 page before the view
runs, so nothing changes, and the navigation shows only what the role may use.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api import state
from api.dashboard.access import PUBLIC_ENDPOINTS, roles_for
from tests.api.conftest import build_dashboard_app, make_tokens
from tests.api.test_dashboard import Dash, csrf
from tests.factories import create_ticket, fire, ticket_with_failed_reminder
from tests.tables import every_row
from tests.workflows import TICKET

DEFINITION = "/dashboard/definitions/service_ticket"
DRAFT = f"{DEFINITION}/draft"
SUPERVISOR, OWNER, ADMIN = "supervisor", "process_owner", "admin"
EVERYONE = {SUPERVISOR, OWNER, ADMIN}
OPERATORS = {SUPERVISOR, ADMIN}
OWNERS = {OWNER, ADMIN}


@pytest.fixture
def db_url(api_sqlite_url: str) -> str:
    return api_sqlite_url


@pytest.fixture
def dash(
    db_url: str, sessions: sessionmaker[Session], publish_workflow: Any, tmp_path: Path
) -> Iterator[Dash]:
    publish_workflow(TICKET)
    app = build_dashboard_app(db_url, tmp_path / "kpis.yaml")
    yield Dash(app, app.test_client(), make_tokens(sessions, "roles"), sessions)
    state.of(app).runtime.close()


def _pages(case_id: int) -> dict[str, set[str]]:
    """Every page, and the roles that may open it."""
    return {
        "/dashboard/": EVERYONE,
        "/dashboard/kpis": EVERYONE,
        DEFINITION: EVERYONE,
        f"{DEFINITION}/diagram.svg": EVERYONE,
        DRAFT: OWNERS,
        "/dashboard/stuck": OPERATORS,
        "/dashboard/work": OPERATORS,
        "/dashboard/work.csv": OPERATORS,
        f"/dashboard/cases/{case_id}": OPERATORS,
        f"/dashboard/cases/{case_id}/actions": OPERATORS,
        "/dashboard/find?q=nothing-like-it": OPERATORS,
        "/dashboard/devices/SN-1": OPERATORS,
        "/dashboard/webhooks": OPERATORS,
        "/dashboard/contracts": OPERATORS,
    }


def _supervisor_actions(case_id: int, timer_id: int) -> dict[str, set[str]]:
    """Every operator action, and the roles that may post it."""
    return {
        f"/dashboard/cases/{case_id}/fire": OPERATORS,
        f"/dashboard/cases/{case_id}/cancel": OPERATORS,
        f"/dashboard/cases/{case_id}/sla": OPERATORS,
        f"/dashboard/cases/{case_id}/reassign": OPERATORS,
        f"/dashboard/cases/{case_id}/force": {ADMIN},
        f"/dashboard/timers/{timer_id}/retry": OPERATORS,
        "/dashboard/work/bulk": OPERATORS,
        "/dashboard/work/bulk/apply": OPERATORS,
        "/dashboard/webhooks/deliveries/1/redeliver": {ADMIN},
    }


def _owner_actions() -> dict[str, set[str]]:
    return {
        f"{DEFINITION}/promote": OWNERS,
        f"{DEFINITION}/retire": OWNERS,
        f"{DEFINITION}/restore": OWNERS,
        f"{DEFINITION}/migrate": OWNERS,
        DRAFT: OWNERS,
        f"{DRAFT}/simulate": OWNERS,
    }


def test_integrators_cannot_sign_in(dash: Dash) -> None:
    refused = dash.login("integrator", lang="en")
    assert refused.status_code == 403
    assert "has the role 'integrator'" in html.unescape(refused.get_data(as_text=True))
    assert dash.client.get("/dashboard/").status_code == 302  # not signed in


@pytest.mark.parametrize("role", [SUPERVISOR, OWNER, ADMIN])
def test_each_page_opens_for_the_roles_that_may_use_it_and_is_a_403_page_for_others(
    dash: Dash, role: str
) -> None:
    case_id = create_ticket(dash.sessions, device_serial="SN-1")
    assert dash.login(role, lang="en").status_code == 302
    for path, roles in _pages(case_id).items():
        response = dash.client.get(path)
        if role in roles:  # find answers a search with nothing found by going back: a 302
            assert response.status_code in (200, 302), (role, path, response.status_code)
        else:
            assert response.status_code == 403, (role, path, response.status_code)
            assert "may not use this page or action" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", [SUPERVISOR, OWNER, ADMIN])
def test_actions_refused_to_a_role_are_403_before_anything_is_read_or_written(
    dash: Dash, role: str
) -> None:
    case_id, timer_id = ticket_with_failed_reminder(dash.sessions)
    assert dash.login(role, lang="en").status_code == 302
    actions = {**_supervisor_actions(case_id, timer_id), **_owner_actions()}
    refused = [path for path, roles in actions.items() if role not in roles]
    assert bool(refused) is (role != ADMIN)
    before = every_row(dash.sessions)
    for path in refused:
        # A complete form, as a hand-made post would send it: still refused.
        response = dash.submit(
            "/dashboard/kpis",
            path,
            reason="by hand",
            trigger="close",
            state="closed",
            version="1",
            action="cancel",
            targets="selected",
            ids=str(case_id),
            confirm="yes",
            from_version="1",
            to_version="1",
            params="keep",
            source=TICKET,
            scenario="steps: []",
        )
        assert response.status_code == 403, (role, path, response.status_code)
    assert every_row(dash.sessions) == before
    for path, roles in actions.items():
        if role in roles:  # allowed: the view runs (and answers this empty form its way)
            response = dash.submit("/dashboard/kpis", path)
            assert response.status_code != 403, (role, path)


def _nav(page: str) -> set[str]:
    found = re.search(r"<nav>(.*?)</nav>", page, re.DOTALL)
    assert found
    return set(re.findall(r'href="([^"?]+)', found.group(1)))


def test_the_navigation_shows_only_what_the_role_may_use(dash: Dash) -> None:
    dash.login(OWNER, lang="en")
    page = dash.page("/dashboard/")
    assert _nav(page) == {"/dashboard/", "/dashboard/kpis"}
    assert 'action="/dashboard/find"' not in page
    assert "/dashboard/stuck" not in page  # the stuck counts are shown, not linked
    assert f'href="{DEFINITION}"' in page
    assert "(process owner)" in page
    out = dash.submit("/dashboard/", "/dashboard/logout")
    assert out.status_code == 302 and out.headers["Location"] == "/dashboard/login"

    dash.login(SUPERVISOR, lang="en")
    page = dash.page("/dashboard/")
    assert _nav(page) == {
        "/dashboard/",
        "/dashboard/work",
        "/dashboard/stuck",
        "/dashboard/kpis",
        "/dashboard/webhooks",
        "/dashboard/contracts",
    }
    assert 'action="/dashboard/find"' in page
    versions = dash.page(DEFINITION)
    for action in ("promote", "retire", "restore", "migrate", "draft"):
        assert f'action="{DEFINITION}/{action}"' not in versions, action
    assert f'href="{DRAFT}"' not in versions


TICKET_V2 = TICKET.replace("on_hold", "waiting").replace("warn_at: [0.5]", "warn_at: [0.75]")


def test_a_process_owner_steers_a_definition_from_the_dashboard(
    dash: Dash, publish_workflow: Any
) -> None:
    """Versions, diff and diagram; a draft with an error at its line, simulated, published;
    promote back, retire and restore a version; migrate with a dry run first."""
    held = create_ticket(dash.sessions)
    fire(dash.sessions, held, "hold")
    dash.login(OWNER, lang="en")
    page = dash.page(DEFINITION)
    assert "<svg" in page and 'data-testid="diff-summary"' in page
    assert f'href="{DRAFT}"' in page

    broken = TICKET_V2.replace("    dest: repairing\n", "    dest: nowhere\n", 1)
    line = broken.splitlines().index("    dest: nowhere") + 1
    assert dash.submit(DRAFT, DRAFT, action="save", source=broken).status_code == 302
    draft = dash.page(DRAFT)
    assert f'data-line="{line}"' in draft and "1 error(s)" in draft
    dash.submit(DRAFT, DRAFT, action="save", source=TICKET_V2)
    scenario = """\
start: 2025-09-30T10:00:00+08:00
steps:
  - create: {case: t1, definition: service_ticket, data: {allowed: true}}
  - fire: {case: t1, trigger: hold}
  - expect: {case: t1, state: waiting}
"""
    simulated = dash.submit(DRAFT, f"{DRAFT}/simulate", scenario=scenario)
    assert simulated.status_code == 200
    report = simulated.get_data(as_text=True)
    assert 'data-step="2" class="ok"' in report  # the expectation held on the draft
    assert not re.search(r'data-step="\d+" class="error"', report)
    assert dash.submit(DRAFT, DRAFT, action="publish").status_code == 302
    assert "service_ticket published as version 2." in dash.page(DEFINITION)
    assert dash.case(create_ticket(dash.sessions)).definition_version == 2

    dash.submit(DEFINITION, f"{DEFINITION}/promote", version="1", reason="v2 not ready")
    assert dash.case(create_ticket(dash.sessions)).definition_version == 1
    dash.submit(DEFINITION, f"{DEFINITION}/retire", version="1", reason="v1 is withdrawn")
    page = dash.page(DEFINITION)
    assert "version 1 takes no new cases now" in page and "v1 is withdrawn" in page
    assert dash.case(create_ticket(dash.sessions)).definition_version == 2
    dash.submit(DEFINITION, f"{DEFINITION}/restore", version="1", reason="back again")
    assert "version 1 takes new cases again." in dash.page(DEFINITION)
    no_reason = dash.submit(DEFINITION, f"{DEFINITION}/retire", version="", reason="")
    assert no_reason.status_code == 302
    assert "retired" not in dash.page(DEFINITION).split("<h1>")[1].split("</section>")[0]

    plan = {
        "from_version": "1",
        "to_version": "2",
        "map_state": "on_hold=waiting",
        "params": "keep",
        "reason": "rename on_hold",
    }
    dry = dash.submit(DEFINITION, f"{DEFINITION}/migrate", **plan).get_data(as_text=True)
    assert 'data-testid="dry-run"' in dry
    assert f'data-case="{held}" data-outcome="would_move"' in dry
    assert f'href="/dashboard/cases/{held}"' not in dry  # a supervisor's page
    assert dash.case(held).definition_version == 1
    done = dash.submit(DEFINITION, f"{DEFINITION}/migrate", **plan, apply="yes")
    assert f'data-case="{held}" data-outcome="moved"' in done.get_data(as_text=True)
    assert dash.history(held)[-1].actor == "token:roles-process_owner"


def test_the_dashboard_dry_run_names_a_case_whose_timers_cannot_be_planned(
    dash: Dash, publish_workflow: Any
) -> None:
    timed = TICKET.replace(
        "    team: {type: string}\n", "    team: {type: string}\n    visit_at: {type: string}\n"
    ).replace(
        "      - {name: remind, after: 2h, trigger: remind}\n",
        "      - {name: remind, after: 2h, trigger: remind}\n"
        '      - {name: visit, at: "timestamp(data.visit_at)", trigger: remind}\n',
    )
    dated = create_ticket(dash.sessions, team="icu")
    undated = create_ticket(dash.sessions)
    assert publish_workflow(timed) == 2
    dash.login(OWNER, lang="en")
    plan = {
        "from_version": "1",
        "to_version": "2",
        "set": "visit_at=has(data.team) ? '2025-06-02T08:00:00Z' : 'soon'",
        "params": "keep",
        "reason": "visits",
    }
    before = every_row(dash.sessions, leave_out=frozenset({"api_tokens"}))

    dry = dash.submit(DEFINITION, f"{DEFINITION}/migrate", **plan).get_data(as_text=True)

    assert every_row(dash.sessions, leave_out=frozenset({"api_tokens"})) == before
    assert f'data-case="{dated}" data-outcome="would_move"' in dry
    refused = re.search(rf'data-case="{undated}" data-outcome="refused">(.*?)</tr>', dry, re.S)
    assert refused and "cannot be planned under version 2" in refused.group(1)


def _any_url(rule: Any) -> str:
    """A URL of the rule with made-up arguments (the gate answers before the view reads them)."""
    values = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        values[name] = (
            1 if kind == "IntegerConverter" else ("csv" if kind == "AnyConverter" else "x")
        )
    return str(rule.build(values, append_unknown=False)[1])


@pytest.mark.parametrize("role", [SUPERVISOR, OWNER])
def test_every_dashboard_route_is_behind_the_role_gate(dash: Dash, role: str) -> None:
    """Each route of the blueprint, by each method, as each non-admin role: the roles the
    table gives it get past the gate, the others get the 403 page (a route added later
    is the supervisors' until it is named in the table)."""
    dash.login(role, lang="en")
    token = csrf(dash.client.get("/dashboard/"))
    checked = 0
    for rule in dash.app.url_map.iter_rules():
        if not rule.endpoint.startswith("dashboard.") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        if rule.endpoint == "dashboard.logout":  # it would end this session: tested above
            assert roles_for(rule.endpoint) >= {SUPERVISOR, OWNER, ADMIN}
            continue
        url = _any_url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": token} if method == "POST" else None
            response = dash.client.open(url, method=method, data=data)
            refused = response.status_code == 403 and "may not use this page or action" in (
                response.get_data(as_text=True)
            )
            assert refused is (role not in roles_for(rule.endpoint)), (rule.endpoint, method)
            checked += 1
    assert checked > 30
