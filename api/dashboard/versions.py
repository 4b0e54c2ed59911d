"""The definitions page: a definition's versions (published when and by whom, current or
retired, running cases by state), the diagram of one version with its live counts, what
changed between two versions, and, for administrators, promoting a version (the same
service as ``svcflow definitions promote`` and the API, audited with the reason)."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from api import db
from api.dashboard import access, bp, display, queries
from api.dashboard.pages import diagram
from engine.core.diff import render_text
from engine.errors import FormError, SvcflowError
from engine.services import definitions, versions


def _version_arg(name: str) -> int | None:
    value = request.args.get(name) or None
    if value is None:
        return None
    if not value.isdigit() or len(value) > 9:
        abort(400, access.t("bad_version", value=value))
    return int(value)


@bp.get("/definitions/<name>")
def definition_page(name: str) -> str:
    shown, old, new = _version_arg("version"), _version_arg("from"), _version_arg("to")
    with queries.reading() as session:
        found = versions.versions(session, name)
        current = next(v.version for v in found if v.current)
        shown = shown or current
        by_version = {v.version: v for v in found}
        if shown not in by_version:
            abort(404, access.t("unknown_version", name=name, version=shown))
        definition = definitions.get_definition(session, name, shown)
        svg, error = diagram(definition, g.lang, dict(by_version[shown].open_by_state), frozenset())
        numbers = sorted(by_version)
        new = new or shown
        old = old or max((n for n in numbers if n < new), default=new)
        diff = definitions.diff_versions(session, name, old, new)
        return render_template(
            "dashboard/definition.html",
            name=name,
            title=display.definition_title(definition, g.lang),
            versions=found,
            retired=versions.is_retired(session, name),
            audit=versions.audit(session, name),
            shown=shown,
            svg=svg,
            error=error,
            numbers=numbers,
            old=old,
            new=new,
            summary=render_text(diff),
            source_diff=diff.source_diff,
        )


@bp.post("/definitions/<name>/promote")
def promote(name: str) -> Response:
    user = access.current_user()
    if not user.is_admin:  # read-only for supervisors, whatever the form says
        abort(403, access.t("admin_only"))
    back = url_for("dashboard.definition_page", name=name)
    try:
        version = request.form.get("version", type=int)
        reason = (request.form.get("reason") or "").strip()[:1000]
        if version is None:
            raise FormError(access.t("field_required", field="version"))
        with db.transaction() as session:
            versions.promote(
                session, name, version, actor=user.actor.name, reason=reason, now=g.now
            )
    except SvcflowError as exc:
        access.say(access.error_text(exc), "error", exc.hint)
        return redirect(back)
    access.say(access.t("promoted", name=name, version=version), "success")
    return redirect(back)
