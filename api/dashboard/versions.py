"""The definitions page: a definition's versions (published when and by whom, current or
retired, running cases by state), the diagram of one version with its live counts, what
changed between two versions, and, for process owners and administrators, editing a draft,
publishing, promoting, retiring and restoring a version and migrating running cases (the
same services as ``svcflow definitions ...``, ``svcflow cases migrate`` and the API). Who may
do what is checked before these views run (access.ENDPOINT_ROLES)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from api import db
from api.dashboard import access, bp, display, message_words, queries
from api.dashboard.error_words import ERROR_ZH
from api.dashboard.pages import diagram, diagram_svg
from engine.core.definition import parse_source
from engine.core.diff import render_text
from engine.core.limits import SOURCE_MAX_CHARS
from engine.core.messages import Message
from engine.core.migration import MigrationPlan, ParamsChoice, parse_pairs
from engine.errors import (
    DefinitionNotFound,
    FormError,
    MigrationInvalid,
    Problem,
    ScenarioError,
    Severity,
    SvcflowError,
)
from engine.services import case_migration, definitions, versions
from engine.simulation import run_scenario


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


@bp.get("/definitions/<name>/diagram.svg")
def diagram_file(name: str) -> Response:
    """A version's diagram on its own, full size (a page scales a wide one down to fit)."""
    shown = _version_arg("version")
    with queries.reading() as session:
        found = {v.version: v for v in versions.versions(session, name)}
        shown = shown or next(n for n, v in found.items() if v.current)
        if shown not in found:
            abort(404, access.t("unknown_version", name=name, version=shown))
        definition = definitions.get_definition(session, name, shown)
        svg = diagram_svg(definition, g.lang, dict(found[shown].open_by_state), frozenset())
    return Response(svg, mimetype="image/svg+xml")


@bp.post("/definitions/<name>/promote")
def promote(name: str) -> Response:
    user = access.current_user()
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


def _decide(name: str, decision: str) -> Response:
    """Retire or restore the definition (no version given) or one version of it, audited
    with the reason; running cases are not touched."""
    user = access.current_user()
    back = url_for("dashboard.definition_page", name=name)
    raw = (request.form.get("version") or "").strip()
    try:
        if raw and (not raw.isdigit() or len(raw) > 9):
            raise FormError(access.t("bad_version", value=raw))
        version = int(raw) if raw else None
        reason = (request.form.get("reason") or "").strip()[:1000]
        act = versions.retire if decision == "retire" else versions.restore
        with db.transaction() as session:
            act(session, name, version, actor=user.actor.name, reason=reason, now=g.now)
    except SvcflowError as exc:
        access.say(access.error_text(exc), "error", exc.hint)
        return redirect(back)
    what = access.t("version_n", version=version) if version is not None else name
    access.say(access.t(f"{decision}d_message", what=what), "success")
    return redirect(back)


@bp.post("/definitions/<name>/retire")
def retire(name: str) -> Response:
    return _decide(name, "retire")


@bp.post("/definitions/<name>/restore")
def restore(name: str) -> Response:
    return _decide(name, "restore")


def _lines(name: str) -> list[str]:
    text = request.form.get(name) or ""
    if len(text) > 20_000 or "\x00" in text:
        raise FormError(access.t("too_long", field=name, limit=20_000))
    return [line.strip() for line in text.splitlines() if line.strip()]


def _plan(name: str) -> MigrationPlan:
    from_version = request.form.get("from_version", type=int)
    to_version = request.form.get("to_version", type=int)
    params = request.form.get("params") or ""
    if from_version is None or to_version is None:
        raise FormError(access.t("field_required", field="version"))
    if params not in {c.value for c in ParamsChoice}:
        raise FormError(access.t("field_required", field="params"))
    where = (request.form.get("where") or "").strip()
    drops = (request.form.get("drop") or "").replace(",", " ").split()
    return MigrationPlan(
        definition=name,
        from_version=from_version,
        to_version=to_version,
        params=ParamsChoice(params),
        state_map=parse_pairs(_lines("map_state"), "--map-state"),
        sets=parse_pairs(_lines("set"), "--set"),
        drops=tuple(drops),
        where=where or None,
        reason=(request.form.get("reason") or "").strip()[:1000],
    )


@bp.post("/definitions/<name>/migrate")
def migrate(name: str) -> Any:
    """A dry run (the default) or one batch of a migration, each case in a transaction of its
    own; the page lists what happened to each case. Administrators only."""
    user = access.current_user()
    dry_run = request.form.get("apply") != "yes"
    try:
        plan = _plan(name)
        with db.transaction() as session:
            checked = case_migration.check(session, plan)
            in_use = case_migration.states_in_use(session, checked)
            batch = case_migration.next_batch(
                session, checked, after_id=0, limit=case_migration.MAX_BATCH
            )
        moves = []
        for case_id in batch:
            with db.transaction() as session:  # each case in a transaction of its own
                if dry_run:
                    moves.append(case_migration.preview_case(session, checked, case_id, now=g.now))
                else:
                    moves.append(
                        case_migration.migrate_case(
                            session, checked, case_id, actor=user.actor, now=g.now
                        )
                    )
    except MigrationInvalid as exc:  # the plan's problems, each in the reader's language
        access.say(_plan_problems(exc), "error")
        return redirect(url_for("dashboard.definition_page", name=name))
    except SvcflowError as exc:
        access.say(access.error_text(exc), "error", exc.hint)
        return redirect(url_for("dashboard.definition_page", name=name))
    return render_template(
        "dashboard/migration.html",
        name=name,
        plan=plan,
        dry_run=dry_run,
        in_use=in_use,
        moves=moves,
        more=len(batch) == case_migration.MAX_BATCH,
        # States and outcomes in the reader's language (the codes stay in data- attributes).
        from_title=lambda state: display.state_title(checked.old, state, g.lang),
        to_title=lambda state: display.state_title(checked.new, state, g.lang),
        trigger_title=lambda trigger: display.trigger_title(checked.old, trigger, g.lang),
        reasons=lambda messages: _reasons(messages, checked),
        form=request.form,
    )


def _plan_problems(error: MigrationInvalid) -> Markup | str:
    """A refused plan on a Chinese page: what its code means, then every problem said from
    its code. An English page keeps the engine's sentence, as does a plan malformed before
    it was checked (a map line without ``=``), which has only its message."""
    if not error.messages or g.lang != "zh":
        return access.error_text(error)
    said = Markup("；").join(
        message_words.say(m, g.lang) for m in error.messages if isinstance(m, Message)
    )
    return Markup("{}（{}）：{}").format(ERROR_ZH[error.code], error.code, said)


def _said(messages: tuple[Message, ...]) -> Markup:
    """A scenario step's sentences in the reader's language (names as the draft spells
    them: the draft is not a published definition with titles to look up)."""
    lang = g.lang
    return Markup("；" if lang == "zh" else "; ").join(message_words.say(m, lang) for m in messages)


def _reasons(messages: tuple[Message, ...], checked: case_migration.CheckedPlan) -> Markup:
    """Why a case did not move, in the reader's language (the engine's codes and values,
    with the old version's titles for the case's state and the new one's for its states)."""
    lang = g.lang
    titles = message_words.Titles(
        state=lambda state: display.state_title(checked.old, state, lang),
        new_state=lambda state: display.state_title(checked.new, state, lang),
        trigger=lambda trigger: display.trigger_title(checked.new, trigger, lang),
    )
    said = [message_words.say(message, lang, titles) for message in messages]
    return Markup("；" if lang == "zh" else "; ").join(said)


# --- drafts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    number: int
    text: str
    problems: tuple[Problem, ...]


def _draft_view(session: Any, name: str, source: str) -> dict[str, Any]:
    """The draft's lines, each with the problems found at it, and those found at no line."""
    try:
        _document, report = definitions.validate_source(session, source, f"draft {name}")
        problems = list(report.problems)
        unreadable = None
    except SvcflowError as exc:  # not YAML, or beyond the reader's limits
        problems, unreadable = [], exc
    at: dict[int, list[Problem]] = {}
    for p in problems:
        at.setdefault(p.line or 0, []).append(p)
    lines = [
        _Line(n, text, tuple(at.get(n, ()))) for n, text in enumerate(source.splitlines(), start=1)
    ]
    return {
        "lines": lines,
        "elsewhere": at.get(0, []),
        "errors": sum(p.severity is Severity.ERROR for p in problems),
        "warnings": sum(p.severity is Severity.WARNING for p in problems),
        "unreadable": unreadable,
    }


@bp.get("/definitions/<name>/draft")
def draft_page(name: str) -> str:
    """The draft (or, without one, the current version's source to start from), validated as
    publishing would validate it: every problem shown at its line."""
    with queries.reading() as session:
        try:
            draft = definitions.get_draft(session, name)
            source, saved = draft.source, draft.updated_at
        except DefinitionNotFound:
            current = versions.current_version(session, name)
            source, saved = definitions.get_source(session, name, current), None
        return render_template(
            "dashboard/draft.html",
            name=name,
            source=source,
            saved=saved,
            **_draft_view(session, name, source),
        )


@bp.post("/definitions/<name>/draft")
def save_draft(name: str) -> Response:
    """Save the text area as the draft (stored even if invalid) or publish the saved draft."""
    user = access.current_user()
    back = url_for("dashboard.draft_page", name=name)
    try:
        if request.form.get("action") == "publish":
            with db.transaction() as session:
                result = definitions.publish_draft(session, name, actor=user.actor.name, now=g.now)
            verb = "published" if result.created else "unchanged"
            access.say(access.t(f"draft_{verb}", name=name, version=result.version), "success")
            return redirect(url_for("dashboard.definition_page", name=name))
        source = request.form.get("source") or ""
        if len(source) > SOURCE_MAX_CHARS:
            raise FormError(access.t("too_long", field="source", limit=SOURCE_MAX_CHARS))
        with db.transaction() as session:
            stored = definitions.save_draft(session, source, actor=user.actor.name, now=g.now)
        if stored != name:
            access.say(access.t("draft_renamed", name=stored), "error")
            return redirect(url_for("dashboard.draft_page", name=stored))
        access.say(access.t("draft_saved", name=name), "success")
    except SvcflowError as exc:
        access.say(access.error_text(exc), "error", exc.hint)
    return redirect(back)


@bp.post("/definitions/<name>/draft/simulate")
def simulate_draft(name: str) -> Any:
    """Run a scenario (docs/simulation.md) against the saved draft on a scratch database and
    virtual time: nothing of it touches this deployment's data. The scenario's own
    ``definitions`` are ignored; the draft is its definition."""
    text = request.form.get("scenario") or ""
    try:
        if len(text) > SOURCE_MAX_CHARS:
            raise FormError(access.t("too_long", field="scenario", limit=SOURCE_MAX_CHARS))
        with queries.reading() as session:
            draft = definitions.get_draft(session, name)
            source, saved = draft.source, draft.updated_at
            view = _draft_view(session, name, source)
        scenario = parse_source(text, "scenario")
        if not isinstance(scenario, dict):
            raise ScenarioError("A scenario is a mapping with start and steps.")
        with tempfile.TemporaryDirectory(prefix="svcflow-draft-") as directory:
            (Path(directory) / "draft.yaml").write_text(source, "utf-8")
            report = run_scenario({**scenario, "definitions": ["draft.yaml"]}, Path(directory))
    except SvcflowError as exc:
        access.say(access.error_text(exc), "error", exc.hint)
        return redirect(url_for("dashboard.draft_page", name=name))
    return render_template(
        "dashboard/draft.html",
        name=name,
        source=source,
        saved=saved,
        scenario=text,
        report=report,
        said=_said,
        **view,
    )
