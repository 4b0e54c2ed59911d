"""Security headers on every response (JSON API, dashboard, API docs, /metrics, errors), the
session cookie's Secure flag, and which proxy headers to trust.

The headers come from flask-talisman, the extension the Flask documentation points to for
them, rather than an after_request of our own that would need to track each browser's
headers: a Content-Security-Policy of same-origin scripts, styles and connections with no
framing (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``), ``nosniff``, a
Referrer-Policy that keeps paths inside the site, and HSTS on HTTPS responses. The dashboard
has no inline script or style; the one inline script of the Swagger UI page
(``api/templates/swagger_ui.html``) carries the per-request nonce talisman makes.

The session cookie is ``Secure`` when the request came over HTTPS, so a sign-in on
``http://127.0.0.1`` (``make run``) works and one behind TLS is never sent in clear.
``SVCFLOW_SESSION_COOKIE_SECURE=true`` forces it always. How the app learns that a request
came over HTTPS:

- gunicorn trusts ``X-Forwarded-Proto`` from the addresses in its ``--forwarded-allow-ips``
  (default: 127.0.0.1, a proxy on the same host);
- ``SVCFLOW_PROXY_COUNT=N`` (default 0) makes the app trust the ``X-Forwarded-For``,
  ``-Proto``, ``-Host``, ``-Port`` and ``-Prefix`` headers set by the N proxies in front of it
  (werkzeug's ProxyFix), for a proxy on another host. Set it only when such a proxy exists:
  a client could otherwise claim any address or scheme.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_talisman import Talisman
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.errors import SettingInvalid, written

CONTENT_SECURITY_POLICY: dict[str, str | list[str]] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    # Swagger UI's stylesheet draws its icons from data: URIs.
    "img-src": ["'self'", "data:"],
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
REFERRER_POLICY = "strict-origin-when-cross-origin"
HSTS_SECONDS = 365 * 24 * 3600


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie ``Secure`` on HTTPS requests."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app)) or request.is_secure


def proxy_count(app: Flask) -> int:
    value: Any = app.config.get("PROXY_COUNT", 0)
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = -1
    if count < 0 or isinstance(value, bool):
        raise SettingInvalid(
            "SVCFLOW_PROXY_COUNT must be a whole number of proxies (0 or more), "
            f"not {written(value)}.",
            hint="Set it to how many reverse proxies stand in front of svcflow (e.g. 1 for "
            "one nginx), or leave it unset when there is none.",
            setting="SVCFLOW_PROXY_COUNT",
        )
    return count


def init_app(app: Flask) -> None:
    proxies = proxy_count(app)
    if proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=proxies,
            x_proto=proxies,
            x_host=proxies,
            x_port=proxies,
            x_prefix=proxies,
        )
    app.session_interface = SessionInterface()
    Talisman(
        app,
        # Redirecting to https:// is the proxy's job; on plain http://127.0.0.1 (make run)
        # there is no https to go to.
        force_https=False,
        # Secure per request (SessionInterface); talisman would set it for every request.
        session_cookie_secure=False,
        session_cookie_samesite=app.config.get("SESSION_COOKIE_SAMESITE") or "Lax",
        frame_options="DENY",
        content_security_policy=CONTENT_SECURITY_POLICY,
        content_security_policy_nonce_in=["script-src"],
        referrer_policy=REFERRER_POLICY,
        strict_transport_security=True,
        strict_transport_security_max_age=HSTS_SECONDS,
        strict_transport_security_include_subdomains=False,
    )
