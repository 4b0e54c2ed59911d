"""The OpenAPI document is one a client generator and a person can use: every operation has
a unique operationId, declares 401 and 403 where a token is needed, statuses are enums, and
the requests an integrator writes first carry examples."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from api import state
from api.app import create_app

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec(sqlite_template: Path) -> dict[str, Any]:
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{sqlite_template}", "REDIS_URL": "redis://127.0.0.1:9"}
    )
    document: dict[str, Any] = app.test_client().get("/api/openapi.json").get_json()
    state.of(app).runtime.close()
    return document


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_every_operation_has_a_unique_snake_case_operation_id(spec: dict[str, Any]) -> None:
    ids = [op.get("operationId") for _, _, op in _operations(spec)]
    assert all(isinstance(i, str) and re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids
    assert len(ids) == len(set(ids))
    named = {(m, p): op["operationId"] for m, p, op in _operations(spec)}
    assert named["POST", "/api/v1/cases/{case_id}/fire"] == "fire_trigger"
    assert named["GET", "/api/v1/definitions/{name}/versions/{version}/triggers"] == (
        "list_version_triggers"
    )


def test_operations_that_need_a_token_declare_401_and_403_as_problems(
    spec: dict[str, Any],
) -> None:
    guarded = [(m, p, op) for m, p, op in _operations(spec) if "security" in op]
    assert len(guarded) >= 40
    for method, path, op in guarded:
        for status in ("401", "403"):
            response = op["responses"].get(status)
            assert response is not None, (method, path, status)
            assert "application/problem+json" in response["content"], (method, path, status)


def test_statuses_are_enums(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["Case"]["properties"]["status"]["enum"] == ["open", "completed", "cancelled"]
    assert "sla_breached" in schemas["Event"]["properties"]["event_type"]["enum"]
    assert "failed" in schemas["Timer"]["properties"]["status"]["enum"]
    assert "breached" in schemas["Clock"]["properties"]["status"]["enum"]
    assert schemas["Token"]["properties"]["status"]["enum"] == ["active", "expired", "revoked"]


def test_the_first_requests_an_integrator_writes_have_examples(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    create = schemas["CreateCase"]["properties"]
    assert create["definition"]["example"] == "repair_ticket"
    assert create["data"]["example"]["device_serial"]
    assert schemas["Fire"]["properties"]["payload"]["example"] == {
        "at": "2025-09-30T10:20:00+08:00"
    }
