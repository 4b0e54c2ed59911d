"""The supervisors' web dashboard: server-rendered pages under ``/dashboard``.

Jinja templates, one CSS file, charts and state diagrams as inline SVG drawn on the server:
nothing to build. People sign in with an API token (supervisor or admin) and get a Flask
session cookie; every form carries a CSRF token, checked for this blueprint only, so the JSON
API (bearer tokens, no cookies) is untouched. See docs/dashboard.md.
"""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, Flask

log = logging.getLogger(__name__)

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)

# The views register their routes on ``bp``; they import it from here, so they come after it.
from api.dashboard import access, actions, pages  # noqa: E402

__all__ = ["access", "actions", "bp", "init_app", "pages"]


def init_app(app: Flask) -> None:
    """Register the dashboard. Sessions are signed with ``SECRET_KEY`` (``SVCFLOW_SECRET_KEY``
    in the environment); without one a random key is made, valid for this process only."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        log.warning(
            "SVCFLOW_SECRET_KEY is not set: the dashboard signs sessions with a random key, so "
            "sign-ins do not survive a restart and are not shared between processes. Set "
            "SVCFLOW_SECRET_KEY to a long random value."
        )
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:  # Flask's default is None
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # A supervisor keeps the stuck list open all morning: forms stay valid for a working day.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 12 * 3600)
    app.register_blueprint(bp)
