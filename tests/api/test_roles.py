"""Who may call what: the role x operation matrix, read from the OpenAPI spec's ``x-roles``,
checked against the intended policy and then against the running app, plus the 401 cases
(no token, unknown token, revoked token)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import state
from api.app import create_app
from tests.api.conftest import REPAIR, ROLES, Tokens, assert_problem, sqlite_only
from tests.conftest import WORKFLOWS

OWNER, INTEGRATOR, SUPERVISOR, ADMIN = "process_owner", "integrator", "supervisor", "admin"
EVERYONE = {OWNER, INTEGRATOR, SUPERVISOR, ADMIN}
DEFS = "/api/v1/definitions"
CASES = "/api/v1/cases"
OPS = "/api/v1/supervision"
HOOKS = "/api/v1/webhooks"

# The intended policy. A change here is a security decision, so the spec must match it.
POLICY: dict[tuple[str, str], set[str]] = {
    ("GET", DEFS): EVERYONE,
    ("POST", DEFS): {OWNER, ADMIN},
    ("POST", f"{DEFS}/validate"): {OWNER, ADMIN},
    ("GET", f"{DEFS}/schema"): EVERYONE,
    ("GET", f"{DEFS}/{{name}}/draft"): {OWNER, ADMIN},
    ("PUT", f"{DEFS}/{{name}}/draft"): {OWNER, ADMIN},
    ("POST", f"{DEFS}/{{name}}/draft/publish"): {OWNER, ADMIN},
    ("GET", f"{DEFS}/{{name}}/versions"): EVERYONE,
    ("GET", f"{DEFS}/{{name}}/versions/{{version}}"): EVERYONE,
    ("GET", f"{DEFS}/{{name}}/versions/{{version}}/source"): EVERYONE,
    ("GET", f"{DEFS}/{{name}}/versions/{{version}}/diagram"): EVERYONE,
    ("GET", f"{DEFS}/{{name}}/diff"): EVERYONE,
    ("POST", f"{DEFS}/{{name}}/promote"): {OWNER, ADMIN},
    ("POST", f"{DEFS}/{{name}}/retire"): {OWNER, ADMIN},
    ("POST", f"{DEFS}/{{name}}/restore"): {OWNER, ADMIN},
    ("POST", f"{DEFS}/{{name}}/versions/{{version}}/delete"): {OWNER, ADMIN},
    ("GET", f"{DEFS}/{{name}}/audit"): EVERYONE,
    ("POST", f"{DEFS}/{{name}}/migrations"): {OWNER, ADMIN},
    ("GET", f"{DEFS}/{{name}}/versions/{{version}}/triggers"): EVERYONE,
    ("GET", CASES): {INTEGRATOR, SUPERVISOR, ADMIN},
    ("POST", CASES): {INTEGRATOR, ADMIN},
    ("GET", f"{CASES}/{{case_id}}"): {INTEGRATOR, SUPERVISOR, ADMIN},
    ("POST", f"{CASES}/{{case_id}}/fire"): {INTEGRATOR, ADMIN},
    ("GET", f"{CASES}/by-key/{{definition}}/{{business_key}}"): {INTEGRATOR, SUPERVISOR, ADMIN},
    ("POST", f"{CASES}/by-key/{{definition}}/{{business_key}}/fire"): {INTEGRATOR, ADMIN},
    ("GET", f"{CASES}/by-key"): {INTEGRATOR, SUPERVISOR, ADMIN},
    ("POST", f"{CASES}/by-key/fire"): {INTEGRATOR, ADMIN},
    ("GET", f"{CASES}/{{case_id}}/history"): {INTEGRATOR, SUPERVISOR, ADMIN},
    ("POST", f"{CASES}/{{case_id}}/cancel"): {INTEGRATOR, ADMIN},
    ("GET", f"{CASES}/{{case_id}}/timers"): {INTEGRATOR, SUPERVISOR, ADMIN},
    ("GET", f"{CASES}/{{case_id}}/links"): {INTEGRATOR, SUPERVISOR, ADMIN},
    ("GET", "/api/v1/calendars"): EVERYONE,
    ("POST", "/api/v1/calendars"): {OWNER, ADMIN},
    ("GET", "/api/v1/calendars/{name}"): EVERYONE,
    ("PUT", "/api/v1/calendars/{name}"): {OWNER, ADMIN},
    ("GET", "/api/v1/timers"): {SUPERVISOR, ADMIN},
    ("GET", f"{OPS}/stuck"): {SUPERVISOR, ADMIN},
    ("GET", f"{OPS}/stuck/counts"): {SUPERVISOR, ADMIN},
    ("GET", "/api/v1/kpis"): {SUPERVISOR, ADMIN},
    ("GET", "/api/v1/contracts"): EVERYONE,
    ("POST", "/api/v1/contracts"): {OWNER, ADMIN},
    ("POST", "/api/v1/contracts/validate"): {OWNER, ADMIN},
    ("GET", "/api/v1/contracts/{contract_id}"): EVERYONE,
    ("GET", "/api/v1/contracts/{contract_id}/compliance"): {SUPERVISOR, OWNER, ADMIN},
    ("GET", "/api/v1/kpis/audit-sample"): {SUPERVISOR, ADMIN},
    ("GET", "/api/v1/kpis/summary"): {SUPERVISOR, ADMIN},
    ("POST", f"{OPS}/cases/{{case_id}}/fire"): {SUPERVISOR, ADMIN},
    ("POST", f"{OPS}/cases/{{case_id}}/force"): {ADMIN},
    ("POST", f"{OPS}/cases/{{case_id}}/cancel"): {SUPERVISOR, ADMIN},
    ("POST", f"{OPS}/cases/{{case_id}}/sla/{{name}}/pause"): {SUPERVISOR, ADMIN},
    ("POST", f"{OPS}/cases/{{case_id}}/sla/{{name}}/resume"): {SUPERVISOR, ADMIN},
    ("POST", f"{OPS}/cases/{{case_id}}/reassign"): {SUPERVISOR, ADMIN},
    ("POST", f"{OPS}/timers/{{timer_id}}/retry"): {SUPERVISOR, ADMIN},
    ("POST", f"{OPS}/bulk"): {SUPERVISOR, ADMIN},
    ("GET", "/api/v1/tokens"): {ADMIN},
    ("POST", "/api/v1/tokens"): {ADMIN},
    ("GET", "/api/v1/tokens/{name}"): {ADMIN},
    ("DELETE", "/api/v1/tokens/{name}"): {ADMIN},
    ("GET", "/api/v1/events"): {INTEGRATOR, SUPERVISOR, ADMIN},
    ("GET", "/api/v1/events/stream"): {INTEGRATOR, SUPERVISOR, ADMIN},
    # Subscriptions send data out of the network: integrators (their own) and admins only.
    ("GET", HOOKS): {INTEGRATOR, ADMIN},
    ("POST", HOOKS): {INTEGRATOR, ADMIN},
    ("GET", f"{HOOKS}/{{subscription_id}}"): {INTEGRATOR, ADMIN},
    ("DELETE", f"{HOOKS}/{{subscription_id}}"): {INTEGRATOR, ADMIN},
    ("POST", f"{HOOKS}/{{subscription_id}}/pause"): {INTEGRATOR, ADMIN},
    ("POST", f"{HOOKS}/{{subscription_id}}/resume"): {INTEGRATOR, ADMIN},
    ("GET", f"{HOOKS}/deliveries"): {INTEGRATOR, ADMIN},
    ("POST", f"{HOOKS}/deliveries/{{delivery_id}}/redeliver"): {INTEGRATOR, ADMIN},
}
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}

# Requests that would do real work if they got through (bodies a handler accepts).
BODIES: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("POST", DEFS): lambda ctx: {"source": ctx["api_doc"]},
    ("POST", f"{DEFS}/validate"): lambda ctx: {"source": ctx["api_doc"]},
    ("PUT", f"{DEFS}/{{name}}/draft"): lambda ctx: {"source": ctx["draft"]},
    ("POST", f"{DEFS}/{{name}}/promote"): lambda ctx: {"version": 1, "reason": "x"},
    ("POST", f"{DEFS}/{{name}}/migrations"): lambda ctx: {
        "from_version": 1,
        "to_version": 1,
        "params": "keep",
        "reason": "x",
        "dry_run": False,
    },
    ("POST", CASES): lambda ctx: {"definition": "api_counter", "data": {"count": 0}},
    ("POST", f"{CASES}/{{case_id}}/fire"): lambda ctx: {"trigger": "ping"},
    ("POST", f"{CASES}/by-key/{{definition}}/{{business_key}}/fire"): lambda ctx: {
        "trigger": "ping"
    },
    ("POST", f"{CASES}/by-key/fire"): lambda ctx: {"trigger": "ping"},
    ("POST", f"{CASES}/{{case_id}}/cancel"): lambda ctx: {"reason": "role matrix"},
    ("POST", "/api/v1/tokens"): lambda ctx: {"name": "role-matrix", "role": "integrator"},
    ("POST", "/api/v1/calendars"): lambda ctx: {"name": "hospital-new", "overrides": {}},
    ("POST", "/api/v1/contracts"): lambda ctx: {"source": CONTRACT},
    ("POST", "/api/v1/contracts/validate"): lambda ctx: {"source": CONTRACT},
    ("PUT", "/api/v1/calendars/{name}"): lambda ctx: {"overrides": {}},
    ("POST", f"{OPS}/cases/{{case_id}}/fire"): lambda ctx: {"trigger": "ping", "reason": "x"},
    ("POST", f"{OPS}/cases/{{case_id}}/force"): lambda ctx: {"state": "done", "reason": "x"},
    ("POST", f"{OPS}/cases/{{case_id}}/cancel"): lambda ctx: {"reason": "x"},
    ("POST", f"{OPS}/cases/{{case_id}}/reassign"): lambda ctx: {
        "assignee": "Wang Wei",
        "reason": "x",
    },
    ("POST", f"{OPS}/bulk"): lambda ctx: {
        "action": "cancel",
        "filter": {"definition": "api_counter"},
        "reason": "x",
    },
}
QUERIES = {
    ("GET", f"{DEFS}/{{name}}/diff"): "?from=1&to=1",
    ("GET", f"{DEFS}/{{name}}/versions/{{version}}/diagram"): "?format=dot",
    ("GET", f"{CASES}/by-key"): "?definition=api_counter&business_key=MX-1",
    ("POST", f"{CASES}/by-key/fire"): "?definition=api_counter&business_key=MX-1",
    ("GET", "/api/v1/contracts/{contract_id}/compliance"): "?month=2026-03",
}
CONTRACT = """\
id: matrix
title: {en: Matrix, zh: 矩阵}
customers: [矩阵医院]
valid_from: 2026-01-01
parameters:
  repair_ticket: {loaner_after: 12h}
"""
API_DOC = """\
name: api_matrix
title: {en: Matrix, zh: 矩阵}
initial: a
states:
  - name: a
    title: {en: A, zh: 甲}
  - name: b
    title: {en: B, zh: 乙}
    final: true
transitions:
  - trigger: go
    source: a
    dest: b
"""


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def _url(path: str, ctx: dict[str, Any]) -> str:
    values = {
        "case_id": ctx["case_id"],
        "definition": "api_counter",
        "business_key": ctx["business_key"],
        "version": 1,
        "name": "hospital-m" if path.startswith("/api/v1/calendars") else REPAIR,
    }
    return re.sub(r"\{(\w+)\}", lambda m: str(values.get(m.group(1), "1")), path)


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.get_json()
    return spec


@pytest.fixture
def sqlite_spec(fresh_sqlite_url: str, closed_redis_url: str) -> dict[str, Any]:
    """The spec alone: it does not depend on the database, so one is enough."""
    app = create_app({"DATABASE_URL": fresh_sqlite_url, "REDIS_URL": closed_redis_url})
    spec: dict[str, Any] = app.test_client().get("/api/openapi.json").get_json()
    return spec


def test_the_spec_declares_the_intended_roles_on_every_operation(
    sqlite_spec: dict[str, Any],
) -> None:
    spec = sqlite_spec
    declared = {(method, path): op for method, path, op in operations(spec)}
    unreviewed = set(declared) - set(POLICY) - PUBLIC
    assert not unreviewed, f"add these operations to POLICY (a deliberate decision): {unreviewed}"
    missing = set(POLICY) - set(declared)
    assert not missing, f"POLICY lists operations the spec does not have: {missing}"
    for key, op in declared.items():
        if key in PUBLIC:
            assert "x-roles" not in op
            continue
        assert set(op["x-roles"]) == POLICY[key], key
        assert op["security"] == [{"bearerAuth": []}], key
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_no_role_reaches_an_operation_it_is_not_listed_for(
    client: FlaskClient,
    spec: dict[str, Any],
    tokens: Tokens,
    db_state: Callable[[], Any],
) -> None:
    case = client.post(
        CASES,
        headers=tokens.headers(INTEGRATOR),
        json={"definition": "api_counter", "data": {"count": 0}, "business_key": "MX-1"},
    ).get_json()
    client.post(
        "/api/v1/calendars",
        headers=tokens.headers(OWNER),
        json={"name": "hospital-m", "overrides": {}},
    )
    draft = (WORKFLOWS / "repair_ticket.yaml").read_text("utf-8")
    client.put(f"{DEFS}/{REPAIR}/draft", headers=tokens.headers(OWNER), json={"source": draft})
    ctx = {"case_id": case["id"], "business_key": "MX-1", "api_doc": API_DOC, "draft": draft}

    guarded = [(method, path, op) for method, path, op in operations(spec) if "x-roles" in op]
    assert len(guarded) >= len(POLICY)

    def call(method: str, path: str, role: str) -> Any:
        url = _url(path, ctx) + QUERIES.get((method, path), "")
        body = BODIES.get((method, path), lambda _: {})(ctx) if method != "GET" else None
        return client.open(url, method=method, json=body, headers=tokens.headers(role))

    # First every refused call (each would do real work if it got through), then the rest.
    before = db_state()
    refused = 0
    for method, path, op in guarded:
        assert ADMIN in op["x-roles"], (method, path)
        for role in sorted(set(ROLES) - set(op["x-roles"])):
            problem = assert_problem(call(method, path, role), 403, "forbidden")
            assert role in problem["detail"], problem
            refused += 1
    assert db_state() == before, "a refused call changed the database"
    assert refused >= 30
    for method, path, op in guarded:
        for role in op["x-roles"]:
            response = call(method, path, role)
            assert response.status_code not in (401, 403), (method, path, role, response.json)
            assert response.status_code < 500, (method, path, role, response.json)


@sqlite_only
def test_no_token_is_401_with_www_authenticate(
    client: FlaskClient, spec: dict[str, Any], db_state: Callable[[], Any]
) -> None:
    before = db_state()
    ctx = {"case_id": 1, "business_key": "x"}
    guarded = [(method, path) for method, path, op in operations(spec) if "x-roles" in op]
    assert len(guarded) >= len(POLICY)  # every operation of the policy is tried below
    for method, path in guarded:
        url = _url(path, ctx)
        for headers in (
            {},
            {"Authorization": "Basic YWRtaW46YWRtaW4="},
            {"Authorization": "Bearer "},
        ):
            response = client.open(url, method=method, json={}, headers=headers)
            assert_problem(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"] == "Bearer", (method, path)
    assert db_state() == before


@sqlite_only
def test_an_unknown_token_is_401(client: FlaskClient) -> None:
    response = client.get(DEFS, headers={"Authorization": "Bearer svcf_not-a-real-token"})
    body = assert_problem(response, 401, "unauthorized")
    assert "unknown or revoked" in body["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_revoked_token_is_401(app: Flask, client: FlaskClient, tokens: Tokens) -> None:
    name, token = tokens.create(INTEGRATOR)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(CASES, headers=headers).status_code == 200
    tokens.revoke(name)
    state.of(app).tokens.clear()  # identities are cached for TOKEN_CACHE_SECONDS
    assert_problem(client.get(CASES, headers=headers), 401, "unauthorized")

    unused_name, unused = tokens.create(SUPERVISOR)
    tokens.revoke(unused_name)  # never seen by the app, so not cached either
    assert_problem(client.get(CASES, headers={"Authorization": f"Bearer {unused}"}), 401)
