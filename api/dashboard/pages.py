"""The dashboard's pages (GET only; the forms on them post to api/dashboard/actions.py).

Each page reads in one read-only transaction and renders inside it: what a supervisor sees
is one consistent moment of the database.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from flask import abort, current_app, g, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from api import state
from api.dashboard import (
    access,
    bp,
    display,
    exports,
    history_words,
    i18n,
    kpiboard,
    message_words,
    queries,
)
from api.dashboard.payload_forms import Field, fields_of, payload_schema
from api.definitions import render_svg
from engine.core.definition import WorkflowDefinition
from engine.core.diagram import to_dot
from engine.core.records import CaseRecord, EventRecord
from engine.core.sla import ClockStatus, SlaClock
from engine.errors import SvcflowError
from engine.runtime.diagrams import fitting_svg
from engine.services import inspection, kpi_summary, kpis, search
from engine.services.case_detail import case_detail
from engine.services.cases import allowed_triggers
from engine.services.contracts import latest_contracts
from engine.services.definitions import get_definition, list_definitions
from engine.services.inspection import Finding, Reason
from engine.store.models import TimerStatus

FINDINGS_LIMIT = 200  # per reason on the stuck list
REASONS = [r.value for r in Reason]
SHOWN_TIMERS = frozenset({TimerStatus.ARMED.value, TimerStatus.FAILED.value})
# The width of a diagram's box on a 1366 px wide screen (dashboard.css: main's and the card's
# padding). A wider diagram is scaled down to it and opens full size from a link.
FIT_WIDTH_PX = 1260


@functools.lru_cache(maxsize=256)
def _svg(dot: str) -> str:
    """Lay out a diagram once per distinct DOT text: the counts change, most pages don't."""
    svg = render_svg(dot)
    return svg[svg.find("<svg") :]


def diagram_svg(
    definition: WorkflowDefinition, lang: str, counts: dict[str, int], stuck: frozenset[str]
) -> str:
    """The SVG a page shows: laid out left to right, or top to bottom when that is too wide
    for the page at 1366 px (engine/runtime/diagrams.py measures)."""
    return fitting_svg(
        lambda direction: to_dot(
            definition, lang=lang, counts=counts, highlight=stuck, direction=direction
        ),
        _svg,
        FIT_WIDTH_PX,
    )


def diagram(
    definition: WorkflowDefinition, lang: str, counts: dict[str, int], stuck: frozenset[str]
) -> tuple[Markup | None, str | None]:
    """The state diagram as inline SVG, or why it could not be drawn."""
    try:
        return Markup(diagram_svg(definition, lang, counts, stuck)), None
    except HTTPException as exc:  # render_svg aborts with a problem response
        response: Any = exc.response
        body = response.get_data(as_text=True) if response is not None else "{}"
        detail = json.loads(body).get("detail") or exc.description
        return None, access.t("diagram_unavailable", detail=detail)


def definitions_of(session: Session, cases: list[CaseRecord]) -> dict[int, WorkflowDefinition]:
    """Each case's own definition version (published versions are cached per process)."""
    return {c.id: get_definition(session, c.definition_name, c.definition_version) for c in cases}


def reason_action(reason: str, lang: str) -> str:
    translated = i18n.REASON_ACTIONS.get(reason, {}).get(lang)
    return translated or inspection.ACTIONS[Reason(reason)]


# --- overview ----------------------------------------------------------------------------------


@bp.get("/")
def overview() -> str:
    lang = g.lang
    with queries.reading() as session:
        summaries = list_definitions(session)
        counts = queries.open_counts(session)
        findings = inspection.inspect(session, now=g.now, limit=FINDINGS_LIMIT)
        by_reason = inspection.counts(session, now=g.now)
        stuck_states: dict[str, set[str]] = defaultdict(set)
        stuck_cases: dict[str, set[int]] = defaultdict(set)
        for f in findings:
            stuck_states[f.definition].add(f.state)
            stuck_cases[f.definition].add(f.case_id)
        boards = []
        for summary in summaries:
            definition = get_definition(session, summary.name)
            here = counts.get(summary.name, {})
            svg, error = diagram(
                definition,
                lang,
                here,
                frozenset(stuck_states[summary.name]) & set(definition.state_names),
            )
            older = {s: n for s, n in here.items() if s not in definition.state_names}
            boards.append(
                {
                    "name": summary.name,
                    "version": summary.latest_version,
                    "title": display.definition_title(definition, lang),
                    "svg": svg,
                    "error": error,
                    "open": sum(here.values()),
                    "stuck": len(stuck_cases[summary.name]),
                    "older": ", ".join(f"{s} ({n})" for s, n in sorted(older.items())),
                }
            )
        boards.sort(key=lambda b: (b["open"] == 0, b["name"]))  # busy workflows first
        return render_template(
            "dashboard/overview.html", boards=boards, by_reason=by_reason, reasons=REASONS
        )


# --- stuck list --------------------------------------------------------------------------------


@bp.get("/stuck")
def stuck() -> str:
    reason = request.args.get("reason") or None
    name = request.args.get("definition") or None
    contract = request.args.get("contract") or None
    if reason is not None and reason not in REASONS:
        abort(400, access.t("bad_reason", reason=reason))
    with queries.reading() as session:
        summaries = list_definitions(session)
        if name is not None and name not in {s.name for s in summaries}:
            abort(404)
        contract_ids = [c.id for c in latest_contracts(session)]
        if contract is not None and contract not in contract_ids:
            abort(404)
        findings = inspection.inspect(
            session,
            now=g.now,
            definition=name,
            reasons=[Reason(reason)] if reason else None,
            limit=FINDINGS_LIMIT,
            contract=contract,
        )
        counts = inspection.counts(session, now=g.now, definition=name, contract=contract)
        cases = queries.cases_by_id(session, (f.case_id for f in findings))
        definitions = definitions_of(session, list(cases.values()))
        here = request.full_path.rstrip("?")
        rows = [
            _finding_row(f, cases[f.case_id], definitions[f.case_id], here)
            for f in findings
            if f.case_id in cases
        ]
        choices = [(s.name, s.title_zh if g.lang == "zh" else s.title_en) for s in summaries]
        return render_template(
            "dashboard/stuck.html",
            rows=rows,
            counts=counts,
            reasons=REASONS,
            reason=reason,
            definition=name,
            definitions=choices,
            contract=contract,
            contracts=contract_ids,
            limit=FINDINGS_LIMIT,
        )


def _finding_row(
    f: Finding, case: CaseRecord, definition: WorkflowDefinition, here: str
) -> dict[str, Any]:
    """What one finding shows. Its action forms are not in the row: they load when the row's
    "Act on it" is opened (static/workbench.js), from the URL in ``actions_url``, which names
    the finding's own timer or clock so those forms come first."""
    lang = g.lang
    sla = f.ref if f.reason in SLA_REASONS else None
    focus: dict[str, Any] = {"next": here}
    if f.reason is Reason.TIMER_FAILED and f.ref is not None:
        focus["timer"] = f.ref
    if sla is not None:
        focus["sla"] = sla
        if f.reason is Reason.SLA_PAUSED:
            focus["sla_action"] = "resume"
    return {
        "finding": f,
        "case": case,
        "definition_title": display.definition_title(definition, lang),
        "state_title": display.state_title(definition, case.state, lang),
        "detail": finding_detail(f, definition, lang),
        "action": reason_action(f.reason.value, lang),
        "actions_url": url_for("dashboard.case_actions", case_id=f.case_id, **focus),
    }


SLA_REASONS = frozenset({Reason.SLA_BREACHED, Reason.SLA_WARNING, Reason.SLA_PAUSED})


def finding_detail(f: Finding, definition: WorkflowDefinition, lang: str) -> str | Markup:
    """The finding's detail in the reader's language. The engine words it in English for
    logs, the CLI and the API; a Chinese page words it again from the same facts, with the
    definition's titles for its clocks and states. A failed timer's error and a refusal are
    said by their error codes (message_words.py), the recorded English quoted after."""
    reason = f.reason
    if reason in SLA_REASONS:
        title = display.sla_title(definition, str(f.ref), lang)
        if lang != "zh":
            return f.detail + (f" ({title})" if title != f.ref else "")
        if reason is Reason.SLA_PAUSED:
            key = "detail_sla_paused_until" if f.until else "detail_sla_paused"
        else:
            key = f"detail_{reason.value}"
        return i18n.translate(key, lang, sla=title)
    if lang != "zh":
        return f.detail
    if reason is Reason.TIMER_FAILED:
        if not f.facts.get("error"):
            error = i18n.translate("detail_no_error", lang)
            return i18n.translate("detail_timer_failed", lang, timer=f.ref, error=error)
        return message_words.timer_failure(
            timer=f"{f.ref} {f.facts.get('timer') or ''}".strip(),
            attempt=int(f.facts.get("attempts") or 1),
            stored_error=f.facts.get("error_detail"),
            text=f.facts.get("error"),
            retry_at=None,
            lang=lang,
            local_time=str,
        )
    if reason is Reason.TIMER_LATE:
        return i18n.translate("detail_timer_late", lang, timer=f.ref)
    if reason is Reason.DWELLING:
        return i18n.translate(
            "detail_dwelling",
            lang,
            state=display.state_title(definition, f.state, lang),
            usual=display.duration(f.ref, lang),
        )
    if reason is Reason.ORPHANED_WAIT and f.facts:
        facts = f.facts
        words = Markup(escape(i18n.pick(i18n.STRINGS, "detail_orphaned_wait", lang)))
        return words.format(
            child=facts.get("child_id"),
            definition=facts.get("child_definition"),
            trigger=facts.get("trigger"),
            refusal=history_words.refusal(facts, lang),
        )
    if reason is Reason.WAITING_ON_CANCELLED:
        return i18n.translate("detail_waiting_on_cancelled", lang, child=f.ref)
    return i18n.translate("detail_silent_stall", lang)


def trigger_choices(
    session: Session, case: CaseRecord, definition: WorkflowDefinition
) -> list[tuple[str, str]]:
    """The triggers allowed now, each with its title in the reader's language."""
    return [
        (trigger, display.trigger_title(definition, trigger, g.lang))
        for trigger in allowed_triggers(session, case, access.current_user().actor)
    ]


def payload_forms(
    definition: WorkflowDefinition, state: str, allowed: list[tuple[str, str]]
) -> list[tuple[str, str, list[Field]]]:
    """A form per allowed trigger, its fields from the transition's payload schema."""
    return [
        (
            trigger,
            title,
            fields_of(payload_schema(definition, state, trigger), definition.fields, g.lang),
        )
        for trigger, title in allowed
    ]


def state_choices(definition: WorkflowDefinition, lang: str) -> list[tuple[str, str]]:
    return [(s.name, display.label(s.title, lang, s.name)) for s in definition.states]


# --- one case ----------------------------------------------------------------------------------


@bp.get("/cases/<int:case_id>")
def case_page(case_id: int) -> str:
    lang = g.lang
    with queries.reading() as session:
        detail = case_detail(
            session, case_id, now=g.now, history=True, all_timers=True, relatives=True
        )
        case, definition, parent, children = (
            detail.case,
            detail.definition,
            detail.parent,
            detail.children,
        )
        timers = [
            {
                "id": t.id,
                "name": t.name,
                "kind": history_words.timer_kind(definition, t.kind, t.sla, lang),
                "kind_code": t.kind,
                "trigger": t.trigger,
                "sla": t.sla,
                "due_at": t.due_at,
                "status": t.status,
                "attempts": t.attempts,
                "failure": (
                    history_words.timer_failure(t, lang, state.current().zone)
                    if t.last_error
                    else None
                ),
            }
            for t in detail.timers
            if t.status in SHOWN_TIMERS
        ]
        related = definitions_of(session, [c for c in (parent, *children) if c is not None])
        allowed = trigger_choices(session, case, definition)
        return render_template(
            "dashboard/case.html",
            case=case,
            definition=definition,
            title=display.definition_title(definition, lang),
            definition_state=display.state_title(definition, case.state, lang),
            history=[_event_row(definition, e) for e in detail.history or []],
            clocks=[_clock_row(definition, c) for c in detail.clocks],
            timers=timers,
            parent=_case_row(parent, related) if parent else None,
            children=[_case_row(c, related) for c in children],
            allowed=allowed,
            payload_forms=payload_forms(definition, case.state, allowed),
            data_rows=display.labelled_fields(definition, case.data, lang),
            serial=case.data.get(queries.DEVICE_FIELD),
            state_choices=state_choices(definition, lang),
            contract=detail.contract,
            terms=detail.terms,
        )


def _event_row(definition: WorkflowDefinition, e: EventRecord) -> dict[str, Any]:
    return history_words.event_row(definition, e, g.lang, state.current().zone)


def _clock_row(definition: WorkflowDefinition, clock: SlaClock) -> dict[str, Any]:
    colour = clock.status.value
    if clock.status is ClockStatus.RUNNING and clock.warnings_reached:
        colour = "warning"
    title = display.sla_title(definition, clock.name, g.lang)
    return {
        "name": clock.name,
        "round": clock.round,
        # Rounds are shown for an SLA that has them, its first round included.
        "repeats": any(s.repeats for s in definition.slas if s.name == clock.name),
        "title": title,
        "choice": (clock.name, title),
        "status": clock.status.value,
        "colour": colour,
        "percent": round(min(clock.fraction, 1.0) * 100, 1),
        "fraction": clock.fraction,
        "elapsed": clock.elapsed,
        "target": clock.target,
        "due_at": clock.due_at,
        "stopped_at": clock.stopped_at,
        "unit": clock.unit,
        "calendar": clock.calendar,
        "can_pause": clock.status is ClockStatus.RUNNING,
        "can_resume": clock.status is ClockStatus.PAUSED,
    }


def _case_row(case: CaseRecord, definitions: dict[int, WorkflowDefinition]) -> dict[str, Any]:
    definition = definitions[case.id]
    return {
        "case": case,
        "definition_title": display.definition_title(definition, g.lang),
        "state_title": display.state_title(definition, case.state, g.lang),
    }


# --- one device --------------------------------------------------------------------------------


@bp.get("/devices/<path:serial>")
def device_page(serial: str) -> str:
    name = str(current_app.config.get("DASHBOARD_DEVICE_DEFINITION", "device"))
    with queries.reading() as session:
        device = queries.device_file(session, name, serial, now=g.now)
        cases = queries.device_cases(session, device, serial, now=g.now)
        if device is None and not cases:
            abort(404, access.t("unknown_device", serial=serial))
        definitions = definitions_of(session, [c for c in (device, *cases) if c is not None])
        return render_template(
            "dashboard/device.html",
            serial=serial,
            device=_case_row(device, definitions) if device else None,
            cases=[_case_row(c, definitions) for c in cases],
        )


@bp.get("/find")
def find() -> Response | str:
    """The search box: a case id, a business key (``T-2026-0001``), a customer's name (the
    workbench for that customer) or a device serial (its file)."""
    query = (request.args.get("q") or "").strip().lstrip("#")
    if not query:
        return redirect(url_for("dashboard.overview"))
    if query.isdigit() and len(query) < 19:
        return redirect(url_for("dashboard.case_page", case_id=int(query)))
    device_definition = str(current_app.config.get("DASHBOARD_DEVICE_DEFINITION", "device"))
    with queries.reading() as session:
        keyed = search.with_business_key(session, query[:200])
        customers = [] if keyed else search.customers_named(session, query[:200])
    if any(c.definition_name == device_definition for c in keyed):
        return redirect(url_for("dashboard.device_page", serial=query))
    if keyed:
        return redirect(url_for("dashboard.case_page", case_id=keyed[0].id))
    if len(customers) == 1:
        return redirect(url_for("dashboard.workbench_page", customer=customers[0]))
    if customers:
        return render_template("dashboard/find.html", query=query, customers=customers)
    return redirect(url_for("dashboard.device_page", serial=query))


# --- KPIs --------------------------------------------------------------------------------------


def _kpi_month_and_group() -> tuple[str, str | None]:
    """The month (the last full one by default) and grouping a KPI view asks for; a 400
    page saying what is allowed otherwise."""
    month = request.args.get("month") or kpiboard.last_full_month(g.now)
    group = request.args.get("by") or None
    if not kpiboard.valid_month(month):
        abort(400, access.t("bad_month", month=month))
    if group not in (None, *kpiboard.GROUPS):
        abort(400, access.t("bad_group", group=group))
    return month, group


def _kpi_config() -> Mapping[str, Any]:
    """The KPI configuration a download needs; a 404 page saying why there is none."""
    config, message = kpiboard.load_config(g.lang)
    if config is None:
        abort(404, message)
    return config


@bp.get("/kpis")
def kpi_page() -> str:
    month, group = _kpi_month_and_group()
    with queries.reading() as session:
        board = kpiboard.build(session, month=month, group_by=group, now=g.now, lang=g.lang)
        return render_template(
            "dashboard/kpis.html", board=board, month=month, group=group, groups=kpiboard.GROUPS
        )


@bp.get("/kpis.xlsx")
def kpi_export() -> Response:
    """The month's KPI table as an XLSX file, in the reader's language: what the page shows,
    for a report to the customer."""
    month, group = _kpi_month_and_group()
    config = _kpi_config()
    with queries.reading() as session:
        rows = kpis.monthly_kpis(session, config, month=month, group_by=group, now=g.now)
    lang = g.lang
    header = [access.t(k) for k in ("kpi_column", "kpi_group", "kpi_counted", "kpi_value")]
    header += [access.t("target"), access.t("verdict_column")]
    cells = [
        [
            kpiboard.title(r.kpi, config, lang),
            kpiboard.group_label(r.group, lang),
            kpiboard.counted(r.kpi, r.numerator, r.denominator, lang),
            kpiboard.formatter(r.kpi)(r.value),
            kpiboard.formatter(r.kpi)(r.target) if r.target is not None else "",
            {True: access.t("met"), False: access.t("not_met"), None: ""}[r.met],
        ]
        for r in rows
    ]
    name = f"svcflow-kpis-{month}{'-' + group if group else ''}.xlsx"
    return exports.download(exports.xlsx_bytes((header, cells), sheet=month), name, "xlsx")


@bp.get("/kpis/summary.xlsx")
def kpi_summary_export() -> Response:
    """The team x target summary as an XLSX file in the reader's language: a row per group,
    a value and a verdict column per target."""
    month, group = _kpi_month_and_group()
    config = _kpi_config()
    by = kpiboard.summary_group(group)
    try:
        with queries.reading() as session:
            summary = kpi_summary.team_summary(session, config, month=month, now=g.now, group_by=by)
    except SvcflowError as exc:
        abort(400, access.error_text(exc))
    view = kpiboard.summary_view(summary, config, g.lang)
    header = [access.t("group_" + by)]
    for column in view.columns:
        header += [f"{column['title']} {column['target']}".strip(), access.t("verdict_column")]
    cells = [
        [row["group"], *(v for c in row["cells"] for v in (c["value"], access.t(c["status"])))]
        for row in view.rows
    ]
    name = f"svcflow-kpi-summary-{month}-{by}.xlsx"
    return exports.download(exports.xlsx_bytes((header, cells), sheet=month), name, "xlsx")
