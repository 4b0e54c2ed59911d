"""Operator actions from the dashboard's forms: the same engine operations as
``/api/v1/supervision`` (engine/services/operations.py), each with a required reason that is
recorded with the signed-in token as actor.

Every form posts here with its CSRF token and a ``next`` page; the action runs in its own
transaction and the browser is sent back to ``next`` with a message: what was done, or the
engine's error and its hint (nothing of a refused action is written). Forcing a state is for
administrators: a supervisor's attempt is refused before anything is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import abort, g, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from api import db, state
from api.dashboard import access, bp, payload_forms, queries
from engine.core.records import FireOutcome
from engine.errors import FormError, SvcflowError
from engine.services import cases, operations
from engine.services.definitions import get_definition

MAX_REASON = 1000


def _local_instant(name: str) -> datetime | None:
    """An optional date and time from a form, read in the deployment's zone (the page's times
    are in it, and its footer says which): the browser's datetime-local has no offset."""
    value = _text(name, required=False, limit=32)
    if not value:
        return None
    zone = state.current().zone
    try:
        wall = datetime.fromisoformat(value)
        return (wall.replace(tzinfo=zone) if wall.tzinfo is None else wall).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # OverflowError: 0001-01-01 east of UTC
        raise FormError(access.t("bad_time", value=value)) from exc


def _text(name: str, *, required: bool = True, limit: int = 200) -> str:
    value = (request.form.get(name) or "").strip()
    if "\x00" in value:
        raise FormError(access.t("bad_text"))
    if len(value) > limit:
        raise FormError(access.t("too_long", field=name, limit=limit))
    if required and not value:
        raise FormError(
            access.t("reason_required")
            if name == "reason"
            else access.t("field_required", field=name)
        )
    return value


def _reason() -> str:
    return _text("reason", limit=MAX_REASON)


def _typed_payload(case_id: int, trigger: str) -> dict[str, Any]:
    """The payload of a form generated from the transition's schema (payload_forms.py)."""
    with queries.reading() as session:
        case = cases.get_case(session, case_id)
        definition = get_definition(session, case.definition_name, case.definition_version)
    schema = payload_forms.payload_schema(definition, case.state, trigger)
    fields = payload_forms.fields_of(schema, definition.fields, g.lang)
    return payload_forms.payload_from(fields, request.form, state.current().zone)


def _confirmed() -> None:
    """Cancel and force cannot be undone: their forms carry a box to tick, and a post
    without it (a script, a stale form) is refused before anything is read."""
    if request.form.get("confirm") != "yes":
        raise FormError(access.t("confirm_required"))


def _payload() -> dict[str, Any]:
    text = _text("payload", required=False, limit=64 * 1024)
    if not text:
        return {}
    try:
        value = json.loads(text)
        # NUL and lone surrogates arrive as \u escapes; neither database can store them.
        canonical = json.dumps(value, ensure_ascii=False)
        canonical.encode("utf-8")
    except (ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise FormError(access.t("bad_payload", detail=exc)) from None
    if not isinstance(value, dict):
        raise FormError(access.t("bad_payload", detail=type(value).__name__))
    if "\\u0000" in canonical:
        raise FormError(access.t("bad_text"))
    return value


def _back(case_id: int | None) -> Response:
    default = (
        url_for("dashboard.case_page", case_id=case_id)
        if case_id is not None
        else url_for("dashboard.stuck")
    )
    return redirect(access.safe_next(request.form.get("next"), default))


def _act(
    label: str, case_id: int | None, build: Callable[[], Callable[[Session], FireOutcome]]
) -> Response:
    """Read the form, run the operation in its own transaction, and say how it went."""
    try:
        work = build()
        with db.transaction() as session:
            outcome = work(session)
    except SvcflowError as exc:
        message = access.error_text(exc)
        text = access.t("action_failed", action=label, case_id=case_id or "-", message=message)
        access.say(text, "error", exc.hint)
        return _back(case_id)
    access.say(access.t("action_done", action=label, case_id=outcome.case.id), "success")
    return _back(outcome.case.id if case_id is None else case_id)


@bp.post("/timers/<int:timer_id>/retry")
def retry_timer(timer_id: int) -> Response:
    user = access.current_user()
    case_id = request.form.get("case_id", type=int)

    def build() -> Callable[[Session], FireOutcome]:
        reason = _reason()
        return lambda s: operations.retry_timer(
            s, timer_id, actor=user.actor, reason=reason, now=g.now
        )

    return _act(access.t("retry_timer"), case_id, build)


@bp.post("/cases/<int:case_id>/fire")
def fire(case_id: int) -> Response:
    user = access.current_user()

    def build() -> Callable[[Session], FireOutcome]:
        trigger, reason = _text("trigger", limit=63), _reason()
        payload = (
            _typed_payload(case_id, trigger) if request.form.get("payload_form") else _payload()
        )
        return lambda s: operations.fire(
            s, case_id, trigger, payload, actor=user.actor, reason=reason, now=g.now
        )

    return _act(access.t("fire_trigger"), case_id, build)


@bp.post("/cases/<int:case_id>/cancel")
def cancel(case_id: int) -> Response:
    user = access.current_user()

    def build() -> Callable[[Session], FireOutcome]:
        reason = _reason()
        _confirmed()
        return lambda s: operations.cancel(s, case_id, actor=user.actor, reason=reason, now=g.now)

    return _act(access.t("cancel_case"), case_id, build)


@bp.post("/cases/<int:case_id>/sla")
def sla(case_id: int) -> Response:
    user = access.current_user()
    pause = request.form.get("action") != "resume"

    def build() -> Callable[[Session], FireOutcome]:
        name, reason = _text("sla", limit=63), _reason()
        resume_at = _local_instant("resume_at") if pause else None
        return lambda s: operations.set_sla_paused(
            s, case_id, name, pause, actor=user.actor, reason=reason, now=g.now, resume_at=resume_at
        )

    return _act(access.t("pause_sla" if pause else "resume_sla"), case_id, build)


@bp.post("/cases/<int:case_id>/reassign")
def reassign(case_id: int) -> Response:
    user = access.current_user()

    def build() -> Callable[[Session], FireOutcome]:
        assignee, reason = _text("assignee"), _reason()
        return lambda s: operations.reassign(
            s, case_id, assignee, actor=user.actor, reason=reason, now=g.now
        )

    return _act(access.t("reassign"), case_id, build)


@bp.post("/cases/<int:case_id>/force")
def force(case_id: int) -> Response:
    user = access.current_user()
    if not user.is_admin:  # read-only for supervisors, whatever the form says
        abort(403, access.t("admin_only"))

    def build() -> Callable[[Session], FireOutcome]:
        state, reason = _text("state", limit=63), _reason()
        _confirmed()
        return lambda s: operations.force_state(
            s, case_id, state, actor=user.actor, reason=reason, now=g.now
        )

    return _act(access.t("force_state"), case_id, build)
