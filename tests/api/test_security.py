"""Security headers on every kind of response, the session cookie Secure exactly when the
request came over HTTPS (directly, or through a proxy the app was told to trust), and the API
docs served with no file from outside the app (hospital intranets have no CDN)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import state
from api.app import create_app
from engine.errors import SettingInvalid
from tests.api.conftest import Tokens, sqlite_only

pytestmark = sqlite_only

PAGES = [
    "/api/v1/definitions",  # JSON, with a token
    "/api/v1/cases/999999",  # a problem+json 404
    "/api/nowhere",  # a 404 outside every blueprint
    "/api/openapi.json",
    "/api/docs",
    "/api/docs/static/swagger-ui.css",
    "/dashboard/login",
    "/dashboard/",  # a redirect to the login page
    "/dashboard/static/dashboard.css",
    "/healthz",
    "/metrics",
]


def _session_cookie(response: object) -> str:
    headers = response.headers.getlist("Set-Cookie")  # type: ignore[attr-defined]
    (cookie,) = [h for h in headers if h.startswith("session=")]
    return str(cookie)


@pytest.mark.parametrize("path", PAGES)
def test_every_response_carries_the_security_headers(
    client: FlaskClient, tokens: Tokens, path: str
) -> None:
    response = client.get(path, headers=tokens.headers("supervisor"))

    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "http" not in csp  # nothing from another origin
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP


def test_over_https_the_session_cookie_is_secure_and_hsts_is_sent(app: Flask) -> None:
    client = app.test_client()

    response = client.get("/dashboard/login", base_url="https://svcflow.hospital.example")

    assert "; Secure" in _session_cookie(response)
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_over_plain_http_the_session_cookie_works_for_make_run(client: FlaskClient) -> None:
    response = client.get("/dashboard/login", base_url="http://127.0.0.1:8000")

    cookie = _session_cookie(response)
    assert "Secure" not in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


@pytest.fixture
def proxied_app(db_url: str, closed_redis_url: str) -> Iterator[Flask]:
    flask_app = create_app(
        {"DATABASE_URL": db_url, "REDIS_URL": closed_redis_url, "PROXY_COUNT": 1}
    )
    yield flask_app
    state.of(flask_app).runtime.close()


def test_behind_a_trusted_tls_proxy_the_cookie_is_secure(proxied_app: Flask) -> None:
    response = proxied_app.test_client().get(
        "/dashboard/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sv.example"}
    )

    assert "; Secure" in _session_cookie(response)


def test_a_forwarded_scheme_is_ignored_unless_a_proxy_is_trusted(client: FlaskClient) -> None:
    """A client may send X-Forwarded-Proto itself; without SVCFLOW_PROXY_COUNT it counts for
    nothing."""
    response = client.get("/dashboard/login", headers={"X-Forwarded-Proto": "https"})

    assert "Secure" not in _session_cookie(response)


@pytest.mark.parametrize("value", ["-1", "one", True])
def test_a_proxy_count_that_is_not_a_count_is_refused(
    db_url: str, closed_redis_url: str, value: object
) -> None:
    with pytest.raises(SettingInvalid, match="SVCFLOW_PROXY_COUNT must be a whole number"):
        create_app({"DATABASE_URL": db_url, "REDIS_URL": closed_redis_url, "PROXY_COUNT": value})


def test_a_sign_in_over_https_works_with_the_secure_cookie(app: Flask, tokens: Tokens) -> None:
    client = app.test_client()
    base = "https://svcflow.hospital.example"
    csrf = _sign_in_form_at(client, base)

    signed_in = client.post(
        "/dashboard/login",
        base_url=base,
        data={"csrf_token": csrf, "token": tokens.by_role["supervisor"], "next": "/dashboard/"},
    )
    page = client.get("/dashboard/stuck", base_url=base)

    assert signed_in.status_code == 302
    assert page.status_code == 200


def _sign_in_form_at(client: FlaskClient, base: str) -> str:
    page = client.get("/dashboard/login", base_url=base).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found[1]


def test_the_api_docs_load_everything_from_the_app_itself(client: FlaskClient) -> None:
    page = client.get("/api/docs")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert not re.search(r"(https?:)?//", html), "the page names another origin"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    }
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.mimetype in {"text/css", "text/javascript", "image/png"}, asset
        assert served.data, asset
    # Swagger UI would fetch its online validator's badge; it is off.
    assert '"validatorUrl": null' in html
    nonce = re.search(r'<script nonce="([^"]+)">', html)
    assert nonce
    assert f"'nonce-{nonce[1]}'" in page.headers["Content-Security-Policy"]
    assert client.get("/api/openapi.json").status_code == 200
