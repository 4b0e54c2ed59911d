"""The supervisors' web dashboard: server-rendered pages under ``/dashboard``.

Jinja templates, one CSS file, charts and state diagrams as inline SVG drawn on the server:
nothing to build. People sign in with an API token (supervisor, process owner or admin) and
get a Flask session cookie; every form carries a CSRF token, checked for this blueprint only,
so the JSON API (bearer tokens, no cookies) is untouched. See docs/dashboard.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, Flask

from engine.runtime import secret_key
from engine.store.database import var_dir

log = logging.getLogger(__name__)

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)

# The views register their routes on ``bp``; they import it from here, so they come after it.
from api.dashboard import (  # noqa: E402
    access,
    actions,
    contract_pages,
    pages,
    versions,
    webhooks,
    workbench,
)

__all__ = [
    "access",
    "actions",
    "bp",
    "contract_pages",
    "init_app",
    "pages",
    "versions",
    "webhooks",
    "workbench",
]


def init_app(app: Flask) -> None:
    """Register the dashboard, with the key that signs its sessions (:func:`_secret_key`)."""
    app.config["SECRET_KEY"] = _secret_key(app)
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:  # Flask's default is None
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # A supervisor keeps the stuck list open all morning: forms stay valid for a working day.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 12 * 3600)
    app.register_blueprint(bp)


def _secret_key(app: Flask) -> str:
    """``SECRET_KEY`` (``SVCFLOW_SECRET_KEY``); else the key in ``SECRET_KEY_FILE``
    (``SVCFLOW_SECRET_KEY_FILE``); else the one in ``secret_key`` under the var directory,
    made there once and shared by every process that starts here (all gunicorn workers:
    engine/runtime/secret_key.py), so a sign-in holds whichever worker answers."""
    configured = app.config.get("SECRET_KEY")
    if configured:
        # from_prefixed_env reads JSON-looking values as numbers or booleans: keep the text.
        return str(configured)
    named = app.config.get("SECRET_KEY_FILE")
    if named:
        return secret_key.read(Path(str(named)))
    directory = app.config.get("VAR_DIR")
    path = (Path(str(directory)) if directory else var_dir()) / secret_key.FILE_NAME
    key, created = secret_key.load_or_create(path)
    if created:
        log.warning(
            "SVCFLOW_SECRET_KEY is not set: made a session secret in %s, shared by the processes "
            "started here. In production set SVCFLOW_SECRET_KEY (or SVCFLOW_SECRET_KEY_FILE) to "
            "the same long random value on every host.",
            path,
        )
    return key
