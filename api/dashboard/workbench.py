"""The case workbench page, its exports, the action forms one row loads on demand, and bulk
actions with a preview that changes nothing and a confirmation that acts on exactly the
cases previewed (docs/dashboard.md, "Workbench").

The filter lives in the query string, so a view can be bookmarked and a page's forms send
the browser back to the same view. Rows carry no action forms: a row's forms are fetched
when its "Actions" is opened (static/workbench.js), which keeps a page of 200 rows small.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import abort, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from api import db
from api.dashboard import access, bp, display, exports, kpiboard, queries
from api.dashboard.actions import _payload, _reason, _text
from api.dashboard.pages import payload_forms, state_choices, trigger_choices
from engine.errors import SvcflowError
from engine.services import bulk, kpis, timer_firing, workbench
from engine.services.definitions import get_definition, list_definitions
from engine.services.inspection import Reason
from engine.services.workbench import Sort, WorkbenchQuery, WorkbenchRow
from engine.store.models import TimerStatus

# The stuck reason is ``stuck`` in the URL: ``reason`` is the operator's reason on every form.
FILTER_ARGS = ("definition", "state", "customer", "team", "assignee", "priority")
STUCK_ARG = "stuck"
DATA_PREFIX = "data."
BULK_ACTIONS = [a.value for a in bulk.BulkAction]


def read_query(args: Any) -> WorkbenchQuery:
    """The workbench query from a query string (or a form): unknown values are refused with
    a 400 page saying what is allowed."""
    sort_name = args.get("sort") or Sort.URGENCY.value
    try:
        sort = Sort(sort_name)
    except ValueError:
        choices = ", ".join(s.value for s in Sort)
        abort(400, access.t("bad_sort", sort=sort_name, choices=choices))
    reason_name = args.get(STUCK_ARG) or None
    if reason_name is not None and reason_name not in {r.value for r in Reason}:
        abort(400, access.t("bad_reason", reason=reason_name))
    data = tuple(
        (key.removeprefix(DATA_PREFIX), value.strip())
        for key, value in sorted(args.items())
        if key.startswith(DATA_PREFIX) and value.strip()
    )
    plain = {name: (args.get(name) or "").strip() or None for name in FILTER_ARGS}
    selection = _kpi_selection(args)
    return WorkbenchQuery(
        **plain,
        reason=Reason(reason_name) if reason_name else None,
        data=data,
        sort=sort,
        descending=args.get("desc") == "1",
        kpi=selection,
        counted_in=_kpi_cases(selection) if selection else frozenset(),
    )


def _kpi_selection(args: Any) -> kpis.KpiSelection | None:
    """The KPI figure named in the URL, its values checked (a 400 page says what is wrong)."""
    name = (args.get("kpi") or "").strip()
    if not name:
        return None
    month = args.get("kpi_month") or ""
    if not kpiboard.valid_month(month):
        abort(400, access.t("bad_month", month=month))
    group_by = args.get("kpi_by") or None
    if group_by not in (None, *kpiboard.GROUPS):
        abort(400, access.t("bad_group", group=group_by))
    outcome = args.get("kpi_outcome") or kpis.COUNTED
    if outcome not in kpis.OUTCOMES:
        abort(400, access.t("bad_kpi_outcome", outcome=outcome))
    group = args.get("kpi_group") or kpis.TOTAL
    return kpis.KpiSelection(name, month, group_by, group, outcome)


def _kpi_cases(selection: kpis.KpiSelection) -> frozenset[int]:
    config, message = kpiboard.load_config(g.lang)
    if config is None:
        abort(404, message)
    try:
        with queries.reading() as session:
            return frozenset(kpis.selected_cases(session, config, selection, now=g.now))
    except SvcflowError as exc:
        abort(400, access.error_text(exc) + (f" {exc.hint}" if exc.hint else ""))


def query_string(q: WorkbenchQuery, **extra: Any) -> str:
    """``q`` as the query string that reads back into it."""
    values: dict[str, Any] = {name: getattr(q, name) for name in FILTER_ARGS}
    values[STUCK_ARG] = q.reason.value if q.reason else None
    values |= {DATA_PREFIX + path: value for path, value in q.data}
    if q.sort is not Sort.URGENCY:
        values["sort"] = q.sort.value
    if q.descending:
        values["desc"] = "1"
    if q.kpi is not None:
        values |= kpiboard.kpi_args(q.kpi)
    values |= extra
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def view_url(q: WorkbenchQuery, **extra: Any) -> str:
    return url_for("dashboard.workbench_page") + "?" + query_string(q, **extra)


def _size() -> int:
    raw = request.args.get("size") or str(workbench.DEFAULT_PAGE)
    if not raw.isdigit() or int(raw) not in workbench.PAGE_SIZES:
        abort(400, access.t("bad_size", size=raw))
    return int(raw)


@bp.get("/work")
def workbench_page() -> str:
    q = read_query(request.args)
    size = _size()
    links = RowLinks.for_view(request.full_path.rstrip("?"))
    with queries.reading() as session:
        summaries = list_definitions(session)
        if q.definition is not None and q.definition not in {s.name for s in summaries}:
            abort(404, access.t("not_found_detail"))
        result = workbench.page(
            session, q, now=g.now, after=request.args.get("after") or None, limit=size
        )
        chosen = get_definition(session, q.definition) if q.definition else None
        return render_template(
            "dashboard/workbench.html",
            q=q,
            size=size,
            sizes=workbench.PAGE_SIZES,
            result=result,
            rows=[row_view(r, links) for r in result.rows],
            heads={key: access.t(key) for key in HEADS},
            actions_label=access.t("load_actions"),
            open_label=access.t("open_case"),
            definitions=[(s.name, s.title_zh if g.lang == "zh" else s.title_en) for s in summaries],
            states=state_choices(chosen, g.lang) if chosen else [],
            offered=[
                (
                    path,
                    display.field_title(chosen, path, g.lang),
                    display.field_choices(chosen, path, g.lang),
                )
                for path in chosen.supervision.filters
            ]
            if chosen
            else [],
            priorities=display.field_choices(chosen, chosen.supervision.priority, g.lang)
            if chosen
            else [],
            data_values=dict(q.data),
            reasons=[r.value for r in Reason],
            sorts=[s.value for s in Sort],
            bulk_actions=BULK_ACTIONS,
            next_url=view_url(q, size=size, after=result.next_cursor)
            if result.next_cursor
            else None,
            this_view=query_string(q, size=size if size != workbench.DEFAULT_PAGE else None),
            sort_url=lambda sort: view_url(
                dataclasses.replace(q, sort=Sort(sort), descending=False)
            ),
            drill=kpiboard.drill_heading(q.kpi, g.lang) if q.kpi else None,
            kpi_hidden={k: v for k, v in (kpiboard.kpi_args(q.kpi) if q.kpi else {}).items() if v},
        )


# The column titles every row repeats (as labels of the phone layout's cards).
HEADS = ("business_key", "customer", "team", "assignee_column", "priority", "state")
HEADS += ("urgent_sla", "stuck_reason")
_MARK = 987654321  # a case id no URL holds otherwise: where a row's id goes in its links


@dataclass(frozen=True)
class RowLinks:
    """A row's links, built once per page (url_for for each of 200 rows is measurable)."""

    case: str
    actions: str

    @classmethod
    def for_view(cls, here: str) -> RowLinks:
        case = url_for("dashboard.case_page", case_id=_MARK)
        actions = url_for("dashboard.case_actions", case_id=_MARK, next=here)
        return cls(case, actions)

    def of(self, case_id: int) -> dict[str, str]:
        mark = str(_MARK)
        return {
            "case_url": self.case.replace(mark, str(case_id)),
            "actions_url": self.actions.replace(mark, str(case_id), 1),
        }


def row_view(row: WorkbenchRow, links: RowLinks | None = None) -> dict[str, Any]:
    """What one row shows, in the reader's language."""
    lang = g.lang
    urgent = row.urgent
    due_in = row.due_in(g.now)
    if urgent is None:
        due_text = access.t("no_open_sla")
    elif due_in is None:
        due_text = access.t("paused_at_share")
    elif due_in.total_seconds() < 0:
        due_text = access.t("overdue_by", time=display.duration(-due_in, lang))
    else:
        due_text = access.t("due_in", time=display.duration(due_in, lang))
    return {
        "id": row.case.id,
        "business_key": row.case.business_key,
        "definition_title": display.definition_title(row.definition, lang),
        "state_title": display.state_title(row.definition, row.case.state, lang),
        "state": row.case.state,
        **row.labels,
        # The priority's enum value as the definition's glossary labels it (emergency -> 紧急).
        "priority": display.field_value(
            row.definition, row.definition.supervision.priority, row.labels.get("priority"), lang
        ),
        "sla_title": display.sla_title(row.definition, urgent.name, lang) if urgent else None,
        # Whole percent; display.share trims trailing zeros, which would make 500% read 5%.
        "share": f"{round(urgent.fraction * 100)}%" if urgent else None,
        "percent": round(min(urgent.fraction, 1.0) * 100) if urgent else 0,
        "overdue": due_in is not None and due_in.total_seconds() < 0,
        "due_text": due_text,
        "reasons": [r.value for r in row.reasons],
        **(links.of(row.case.id) if links else {}),
    }


# --- exports -----------------------------------------------------------------------------------


@bp.get("/work.<any(csv, xlsx):kind>")
def workbench_export(kind: str) -> Response:
    q = read_query(request.args)
    with queries.reading() as session:
        rows = [row_view(r) for r in workbench.export(session, q, now=g.now)]
    stamp = display.local_time(g.now).replace(" ", "_").replace(":", "")
    name = f"svcflow-workbench-{stamp}.{kind}"
    table = exports.workbench_table(rows, g.lang)
    body = exports.csv_bytes(table) if kind == "csv" else exports.xlsx_bytes(table, sheet=name)
    return exports.download(body, name, kind)


# --- one row's action forms, on demand ---------------------------------------------------------


@bp.get("/cases/<int:case_id>/actions")
def case_actions(case_id: int) -> str:
    """The action forms of one case, as a fragment for the workbench row or stuck finding that
    asked (and a plain page when opened without script). ``next`` brings the browser back to
    the view. A stuck finding names its own failed ``timer`` or ``sla`` clock (with
    ``sla_action=resume`` for a paused one): that form comes first, for that timer or clock."""
    back = access.safe_next(request.args.get("next"), url_for("dashboard.workbench_page"))
    timer_id = _timer_arg()
    focus_sla = request.args.get("sla") or None
    sla_action = request.args.get("sla_action") or None
    if sla_action not in (None, "pause", "resume"):
        abort(
            400,
            access.t("act_bad_param", name="sla_action", value=sla_action, allowed="pause, resume"),
        )
    with queries.reading() as session:
        case = queries.cases_by_id(session, [case_id]).get(case_id)
        if case is None:
            abort(404, access.t("not_found_detail"))
        definition = get_definition(session, case.definition_name, case.definition_version)
        clocks = [(s.name, display.sla_title(definition, s.name, g.lang)) for s in definition.slas]
        if focus_sla is not None:
            clocks = [(name, title) for name, title in clocks if name == focus_sla]
            if not clocks:
                abort(404, access.t("act_unknown_sla", case_id=case_id, sla=focus_sla))
        if timer_id is not None and not any(
            t.id == timer_id and t.status == TimerStatus.FAILED.value
            for t in timer_firing.case_timers(session, case_id)
        ):
            abort(404, access.t("act_timer_not_failed", timer=timer_id, case_id=case_id))
        allowed = trigger_choices(session, case, definition)
        return render_template(
            "dashboard/_row_actions.html",
            case=case,
            definition=definition,
            allowed=allowed,
            payload_forms=payload_forms(definition, case.state, allowed),
            slas=clocks,
            sla_action=sla_action,
            timer_id=timer_id,
            states=state_choices(definition, g.lang) if access.current_user().is_admin else [],
            here=back,
            fragment=request.headers.get("X-Svcflow-Fragment") == "1",
        )


def _timer_arg() -> int | None:
    raw = request.args.get("timer") or None
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        abort(
            400, access.t("act_bad_param", name="timer", value=raw, allowed=access.t("a_timer_id"))
        )
    return int(raw)


# --- bulk actions ------------------------------------------------------------------------------


def _bulk_params(action: bulk.BulkAction) -> dict[str, Any]:
    if action is bulk.BulkAction.FIRE:
        return {"trigger": _text("trigger", limit=63), "payload": _payload()}
    if action in (bulk.BulkAction.PAUSE_SLA, bulk.BulkAction.RESUME_SLA):
        return {"sla": _text("sla", limit=63)}
    if action is bulk.BulkAction.FORCE:
        return {"state": _text("state", limit=63)}
    if action is bulk.BulkAction.REASSIGN:
        return {"assignee": _text("assignee")}
    return {}


def _bulk_action() -> bulk.BulkAction:
    name = request.form.get("action") or ""
    if name not in BULK_ACTIONS:
        abort(400, access.t("bulk_unknown_action", action=name))
    action = bulk.BulkAction(name)
    if action is bulk.BulkAction.FORCE and not access.current_user().is_admin:
        abort(403, access.t("admin_only"))
    return action


def _selected_ids() -> list[int]:
    ids = [int(v) for v in request.form.getlist("case_id") if v.isdigit() and len(v) < 19]
    return sorted(set(ids))[: bulk.MAX_CHUNK]


@bp.post("/work/bulk")
def bulk_preview() -> Any:
    """The dry run: which cases the action would reach, and a form to confirm exactly them.
    The view's filter comes as one field (``view``, its query string): the action's own
    fields (``assignee``, ``state``, ``reason``) share names with filters."""
    q = read_query(MultiDict(parse_qsl(request.form.get("view") or "")))
    view = view_url(q)
    action = _bulk_action()
    try:
        params, reason = _bulk_params(action), _reason()
        with queries.reading() as session:
            if request.form.get("targets") == "filter":
                ids, total = workbench.matching_ids(session, q, now=g.now, limit=bulk.MAX_CHUNK)
            else:
                ids = _selected_ids()
                total = len(ids)
            if not ids:
                access.say(access.t("bulk_nothing_selected"), "error")
                return _redirect(view)
            found = queries.cases_by_id(session, ids)
            targets = [found[i] for i in ids if i in found]
            items = bulk.preview(targets)
            definitions = {
                c.id: get_definition(session, c.definition_name, c.definition_version)
                for c in targets
            }
            listed = [
                {
                    "case": c,
                    "state_title": display.state_title(definitions[c.id], c.state, g.lang),
                    "definition_title": display.definition_title(definitions[c.id], g.lang),
                    "priority": display.field_value(
                        definitions[c.id],
                        definitions[c.id].supervision.priority,
                        c.data.get(definitions[c.id].supervision.priority or ""),
                        g.lang,
                    ),
                }
                for c, _ in zip(targets, items, strict=True)
            ]
    except SvcflowError as exc:
        access.say(access.error_text(exc), "error", exc.hint)
        return _redirect(view)
    return render_template(
        "dashboard/bulk_confirm.html",
        action=action.value,
        action_label=access.t(f"bulk_{action.value}"),
        params=params,
        payload_text=request.form.get("payload") or "",
        reason=reason,
        listed=listed,
        total=total,
        view=view,
    )


@bp.post("/work/bulk/apply")
def bulk_apply() -> Response:
    """Act on the cases the preview listed (their ids are in the form), one savepoint each."""
    view = access.safe_next(request.form.get("next"), url_for("dashboard.workbench_page"))
    action = _bulk_action()
    label = access.t(f"bulk_{action.value}")
    user = access.current_user()
    try:
        params, reason = _bulk_params(action), _reason()
        ids = _selected_ids()
        act = bulk.operation(action, params, actor=user.actor, reason=reason, now=g.now)
        with db.transaction() as session:
            items = bulk.apply(session, bulk.cases_by_id(session, ids), act)
    except SvcflowError as exc:
        access.say(access.error_text(exc), "error", exc.hint)
        return _redirect(view)
    done = sum(i.outcome is bulk.Outcome.DONE for i in items)
    failed = [i for i in items if i.outcome is bulk.Outcome.FAILED]
    access.say(
        access.t("bulk_done", action=label, done=done, failed=len(failed)),
        "error" if failed and not done else "success",
    )
    for item in failed[:20]:
        access.say(
            access.t("bulk_refused_case", case_id=item.case_id, message=item.detail), "error"
        )
    return _redirect(view)


def _redirect(target: str) -> Response:
    return redirect(target)
