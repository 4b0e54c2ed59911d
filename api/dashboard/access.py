"""Who may use the dashboard, in which language, and how its forms are protected.

Signing in takes an API token once and keeps only its id, name and role in the session; the
token row is read again on every request, so revoking a token ends its dashboard sessions at
once. Supervisors, process owners and administrators may sign in; an integrator gets a 403
page saying so. Which pages and actions each of them may use is one table,
:data:`ENDPOINT_ROLES`, checked before any view runs (a form posted by hand to an action the
role may not take gets the same 403 page, and nothing is read or written); the navigation and
the pages show only what :meth:`User.may` allows.

Every POST to the dashboard must carry the session's CSRF token (flask-wtf's signed token,
checked here and only here: the JSON API authenticates with bearer headers, which a browser
never sends on its own, so it needs none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import (
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.wrappers import Response
from wtforms import ValidationError

from api import outages, state
from api.auth import ADMIN, PROCESS_OWNER, SUPERVISOR
from api.dashboard import bp, display, i18n, queries
from api.dashboard.error_words import ERROR_ZH
from api.problems import RETRY_AFTER_SECONDS, status_of
from engine.core.machine import Actor
from engine.errors import SvcflowError
from engine.services.tokens import authenticate
from engine.store.models import ApiToken

log = logging.getLogger(__name__)
ALLOWED_ROLES = frozenset({SUPERVISOR, PROCESS_OWNER, ADMIN})
# The supervisors' work (lists, case pages, operator and bulk actions, webhooks, contracts) is
# every endpoint not named below: a page added later stays theirs until it is named here.
OPERATORS = frozenset({SUPERVISOR, ADMIN})
# What a process owner steers: the definitions, their drafts and versions, running cases'
# migrations. Supervisors read the Versions page but change nothing on it.
OWNERS = frozenset({PROCESS_OWNER, ADMIN})
ENDPOINT_ROLES: dict[str, frozenset[str]] = {
    "dashboard.overview": ALLOWED_ROLES,
    "dashboard.kpi_page": ALLOWED_ROLES,
    "dashboard.kpi_export": ALLOWED_ROLES,
    "dashboard.kpi_summary_export": ALLOWED_ROLES,
    "dashboard.definition_page": ALLOWED_ROLES,
    "dashboard.diagram_file": ALLOWED_ROLES,
    "dashboard.not_found": ALLOWED_ROLES,
    "dashboard.logout": ALLOWED_ROLES,
    "dashboard.draft_page": OWNERS,
    "dashboard.save_draft": OWNERS,
    "dashboard.simulate_draft": OWNERS,
    "dashboard.promote": OWNERS,
    "dashboard.retire": OWNERS,
    "dashboard.restore": OWNERS,
    "dashboard.migrate": OWNERS,
    # Forcing a state and redelivering a webhook are the supervisors' pages' actions that
    # their views keep for administrators, with words saying what to do instead.
}
USER_KEY = "dashboard_user"
PUBLIC_ENDPOINTS = frozenset({"dashboard.login", "dashboard.language", "dashboard.static"})


@dataclass(frozen=True)
class User:
    token_id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    def may(self, endpoint: str) -> bool:
        """Whether this user's role may use ``endpoint`` (a page or an action)."""
        return self.role in roles_for(endpoint)

    @property
    def actor(self) -> Actor:
        # The same actor the API records for this token, so histories read alike.
        return Actor(f"token:{self.name}", frozenset({self.role}))


def roles_for(endpoint: str | None) -> frozenset[str]:
    return ENDPOINT_ROLES.get(endpoint or "", OPERATORS)


def current_user() -> User:
    user: User = g.dashboard_user
    return user


def t(key: str, **values: Any) -> str:
    return i18n.translate(key, g.lang, **values)


def say(text: str, category: str, hint: str | None = None) -> None:
    """A message for the next page; an engine error's hint follows its message."""
    flash(text, category)
    if hint:
        flash(hint, "hint")


def safe_next(target: str | None, default: str) -> str:
    """Only a path inside the dashboard: a ``next`` pointing elsewhere is an open redirect."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(bp.url_prefix or "/"):
        return default
    if target.startswith("//") or "\\" in target:
        return default
    return target


def _language() -> str:
    chosen = session.get("lang")
    if chosen in i18n.LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(i18n.LANGUAGES) or i18n.DEFAULT


def _signed_in() -> User | None:
    stored = session.get(USER_KEY)
    if not isinstance(stored, dict):
        return None
    with queries.reading() as s:
        role = s.execute(
            select(ApiToken.role).where(
                ApiToken.id == stored.get("id"),
                ApiToken.name == stored.get("name"),
                ApiToken.revoked_at.is_(None),
                ApiToken.expires_at.is_(None) | (ApiToken.expires_at > g.now),
            )
        ).scalar_one_or_none()
    if role is None:  # revoked, expired (or deleted) since sign-in
        session.pop(USER_KEY, None)
        return None
    return User(int(stored["id"]), str(stored["name"]), str(role))


@bp.before_request
def _gate() -> Any:
    g.lang = _language()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            raise CSRFError(str(exc)) from None
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    user = _signed_in()
    if user is None:
        say(t("login_needed"), "info")
        back = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("dashboard.login", next=back))
    if user.role not in ALLOWED_ROLES:  # the token's role changed since sign-in
        session.pop(USER_KEY, None)
        return _role_refused(user.name, user.role)
    g.dashboard_user = user
    if not user.may(request.endpoint or ""):
        return _not_for_role(user)
    return None


def csrf_field() -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(generate_csrf())


@bp.context_processor
def _context() -> dict[str, Any]:
    lang = getattr(g, "lang", i18n.DEFAULT)
    return {
        "lang": lang,
        "t": t,
        "user": getattr(g, "dashboard_user", None),
        "may": lambda endpoint: (
            getattr(g, "dashboard_user", None) is not None and g.dashboard_user.may(endpoint)
        ),
        "reason_label": lambda r: i18n.pick(i18n.REASONS, r, lang),
        "event_label": lambda e: i18n.pick(i18n.EVENTS, e, lang),
        "status_label": lambda s: i18n.pick(i18n.STATUSES, s, lang),
        "local_time": lambda v: display.local_time(v, state.current().zone),
        "times_note": display.times_note(
            state.current().zone, getattr(g, "now", None) or state.runtime().clock.now(), lang
        ),
        "duration": lambda v: display.duration(v, lang),
        "compact": display.compact,
        # Where a form sends the browser back to; a page shown for a POST has no GET twin.
        "here": request.full_path.rstrip("?")
        if request.method == "GET"
        else url_for("dashboard.overview"),
        "csrf_field": csrf_field,
    }


# --- sign in and out, language ------------------------------------------------------------------


def _role_refused(name: str, role: str) -> tuple[str, int]:
    return render_template(
        "dashboard/error.html",
        title=t("forbidden_role_title"),
        message=t("forbidden_role", name=name, role=role),
        hint=None,
    ), 403


def _not_for_role(user: User) -> tuple[str, int]:
    """A page or action the signed-in role may not use: refused before the view runs."""
    allowed = sorted(roles_for(request.endpoint))
    return render_template(
        "dashboard/error.html",
        title=t("forbidden"),
        message=t(
            "not_for_role",
            role=t(f"role_{user.role}"),
            roles=", ".join(t(f"role_{r}") for r in allowed),
        ),
        hint=None,
    ), 403


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    default = url_for("dashboard.overview")
    target = safe_next(request.values.get("next"), default)
    if request.method == "GET":
        return render_template("dashboard/login.html", next=target, error=None)
    token = request.form.get("token", "").strip()
    if not token or "\x00" in token:
        return render_template("dashboard/login.html", next=target, error=t("login_empty")), 400
    with queries.reading() as s:
        identity = authenticate(s, token)
    if identity is not None and identity.expired(g.now):
        identity = None  # an expired token signs nobody in
    if identity is None:
        return render_template("dashboard/login.html", next=target, error=t("login_unknown")), 401
    if identity.role.value not in ALLOWED_ROLES:
        log.info(
            "dashboard sign-in refused for token %r (role %s)", identity.name, identity.role.value
        )
        return _role_refused(identity.name, identity.role.value)
    lang = session.get("lang")
    session.clear()  # a fresh session at sign-in: nothing planted before it survives
    if lang:
        session["lang"] = lang
    session[USER_KEY] = {"id": identity.id, "name": identity.name, "role": identity.role.value}
    say(t("logged_in"), "info")
    return redirect(target)


@bp.post("/logout")
def logout() -> Response:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    say(t("logged_out"), "info")
    return redirect(url_for("dashboard.login"))


@bp.post("/lang")
def language() -> Response:
    chosen = request.form.get("lang")
    if chosen in i18n.LANGUAGES:
        session["lang"] = chosen
    return redirect(safe_next(request.form.get("next"), url_for("dashboard.overview")))


# --- error pages ---------------------------------------------------------------------------------


def _error_page(status: int, title: str, message: str, hint: str | None = None) -> Any:
    if not hasattr(g, "lang"):
        g.lang = _language()
    return render_template("dashboard/error.html", title=title, message=message, hint=hint), status


@bp.errorhandler(CSRFError)
def _csrf_error(error: CSRFError) -> Any:
    return _error_page(400, t("csrf_failed_title"), t("csrf_failed", detail=error.description))


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    status = error.code or 500
    titles = {403: t("forbidden"), 404: t("not_found")}
    message = error.description
    if isinstance(error, NotFound) and message == NotFound.description:
        message = t("not_found_detail")  # werkzeug's generic English text
    return _error_page(status, titles.get(status, error.name), str(message))


@bp.errorhandler(SvcflowError)
def _engine_error(error: SvcflowError) -> Any:
    status = status_of(type(error))
    if status is None:  # a bug: tests/api/test_error_tree.py should have caught it
        return _unexpected(error)
    return _error_page(status, t("error"), error_text(error), error.hint)


def error_text(error: SvcflowError) -> str:
    """An engine error for the reader of this page: in the definition's own words and the
    page's language when it gives them (a guard's message), else the engine's message, on a
    Chinese page after what its code means in Chinese (error_words.py)."""
    reasons = error.fields.get("reasons") or []
    if reasons:
        return "; ".join(str(r.get(g.lang) or r["en"]) for r in reasons)
    meaning = ERROR_ZH.get(error.code) if g.lang == "zh" else None
    return f"{meaning}（{error.code}）：{error.message}" if meaning else error.message


@bp.errorhandler(DBAPIError)
def _database_error(error: DBAPIError) -> Any:
    if outages.unavailable(error) is None:
        return _unexpected(error)
    page, status = _error_page(
        503, t("database_unavailable_title"), t("database_unavailable"), t("try_again_later")
    )
    return page, status, {"Retry-After": str(RETRY_AFTER_SECONDS)}


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Any:
    log.exception("unhandled error in the dashboard")
    return _error_page(500, t("server_error"), t("server_error_detail"))


@bp.route("/<path:unknown>")
def not_found(unknown: str) -> Any:
    abort(404)
