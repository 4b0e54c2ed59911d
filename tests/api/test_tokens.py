"""Token management over the API: an administrator creates a token (shown once), sees when
each was last used and when it expires, and revokes it; an expired token is refused with its
own code, at the instant it expires, even while the API still has it cached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import state
from engine.runtime.clock import ManualClock
from tests.api.conftest import assert_problem

TOKENS = "/api/v1/tokens"
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock(app: Flask) -> ManualClock:
    manual = ManualClock(NOW)
    state.of(app).runtime.clock = manual
    return manual


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_admin_creates_a_token_that_works_until_it_expires(
    admin: Any, client: FlaskClient, clock: ManualClock
) -> None:
    created = admin.post(
        TOKENS,
        json={"name": "hotline-2", "role": "integrator", "expires_at": "2026-03-02T10:00:00+08:00"},
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["token"].startswith("svcf_")
    assert (body["status"], body["expires_at"], body["last_used_at"]) == (
        "active",
        "2026-03-02T02:00:00+00:00",
        None,
    )

    clock.advance(timedelta(minutes=30))
    assert client.get("/api/v1/cases", headers=_bearer(body["token"])).status_code == 200
    shown = admin.get(f"{TOKENS}/hotline-2").get_json()
    assert shown["last_used_at"] == "2026-03-02T01:30:00+00:00"
    assert "token" not in shown  # never shown again

    clock.advance(timedelta(minutes=30))  # exactly the expiry; the API still caches the token
    expired = client.get("/api/v1/cases", headers=_bearer(body["token"]))
    problem = assert_problem(expired, 401, "token-expired")
    assert "2026-03-02T02:00:00+00:00" in problem["detail"]
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    listed = {t["name"]: t for t in admin.get(TOKENS).get_json()}
    assert listed["hotline-2"]["status"] == "expired"


def test_a_revoked_token_stops_working_and_revoking_is_admin_only(
    admin: Any, integrator: Any, client: FlaskClient, clock: ManualClock
) -> None:
    token = admin.post(TOKENS, json={"name": "erp", "role": "integrator"}).get_json()["token"]
    assert_problem(integrator.get(TOKENS), 403, "forbidden")
    assert_problem(integrator.delete(f"{TOKENS}/erp"), 403, "forbidden")

    revoked = admin.delete(f"{TOKENS}/erp")
    assert revoked.status_code == 200
    assert (revoked.get_json()["status"], revoked.get_json()["revoked_at"]) == (
        "revoked",
        NOW.isoformat(),
    )
    assert_problem(client.get("/api/v1/cases", headers=_bearer(token)), 401, "unauthorized")
    assert_problem(admin.delete(f"{TOKENS}/nobody"), 404, "token-not-found")


def test_bad_token_requests_say_what_is_wrong(admin: Any, clock: ManualClock) -> None:
    past = assert_problem(
        admin.post(
            TOKENS,
            json={"name": "late", "role": "integrator", "expires_at": "2026-03-01T00:00:00Z"},
        ),
        422,
        "token-error",
    )
    assert "not in the future" in past["detail"]
    naive = assert_problem(
        admin.post(
            TOKENS,
            json={"name": "late", "role": "integrator", "expires_at": "2026-04-01T00:00:00"},
        ),
        422,
    )
    assert "expires_at" in naive["errors"]["json"]
    assert_problem(admin.post(TOKENS, json={"name": "x", "role": "root"}), 422)
    admin.post(TOKENS, json={"name": "twice", "role": "supervisor"})
    taken = assert_problem(admin.post(TOKENS, json={"name": "twice", "role": "supervisor"}), 422)
    assert "exists" in taken["detail"]
