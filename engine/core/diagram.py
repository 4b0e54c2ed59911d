"""State diagrams of definitions as Graphviz DOT. Pure: the caller renders DOT to SVG.

``counts`` (cases per state) and ``highlight`` (states to mark, e.g. with stuck cases) let a
dashboard draw live numbers on the same diagram. ``direction`` is ``LR`` (left to right) or
``TB`` (top to bottom, for graphs too wide for a page: engine/runtime/diagrams.py measures).

What is drawn, and why (docs/versions.md, "Diagrams"):

- Edges carry the transition's title in the page's language (its trigger name when it has
  none), who may fire it by hand as a role tag (``«主管»``; none: any role), and its guard
  cut to :data:`GUARD_SHOWN` characters, the whole guard and what it requires in words in the
  edge's tooltip (a hover in the SVG).
- How a transition is fired is its style: a timer's is dashed grey with the timer's duration
  (``◷``), an SLA breach's dotted red (``⚠``), one only the engine fires (a child case's news)
  dotted blue (``⚙``). Durations are said in words, a parameter's as its default.
- A transition that stays in its state is a line inside the state (``↻``), not a loop: the
  bundled repair ticket has a dozen on one state, and drawn as loops their labels overlap.
- Each SLA is numbered (S1, S2, ...) in a note listing its target and span; a state shows the
  clocks that run in it (``▶ S1``) and those paused in it (``‖ S2``).
- Labels are HTML-like tables whose cells are sized here (diagram_words.text_width), because
  graphviz-pure measures a Chinese character as a space.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape

from engine.core.decisions import DecisionTable
from engine.core.definition import (
    SlaCondition,
    SlaSpec,
    StateSpec,
    TransitionSpec,
    WorkflowDefinition,
)
from engine.core.diagram_words import (
    ClockSpan,
    EdgeKind,
    clock_span,
    edge_kind,
    parameter_note,
    pick,
    role_tag,
    roles_said,
    shorten,
    sla_target_words,
    sla_title,
    text_width,
    timer_words,
    wrap,
)

GUARD_SHOWN = 24  # characters of a guard written on its edge
STATE_FONT = 14.0
EDGE_FONT = 10.0
SMALL_FONT = 10.0
DIRECTIONS = ("LR", "TB")
EDGE_WIDTH = 150.0  # points: an edge's label is wrapped to this width
ROW_WIDTH = 240.0  # points: a line inside a state (a stay), the SLA note's lines
JOINED = 3  # a transition from this many states or more is drawn through a junction

_EDGE_STYLE = {
    EdgeKind.PERSON: "style=solid",
    EdgeKind.TIMER: 'style=dashed, color="#7f8c8d", fontcolor="#5d6d7e"',
    EdgeKind.BREACH: 'style=dotted, color="#c0392b", fontcolor="#a93226", penwidth=1.5',
    EdgeKind.ENGINE: 'style=dotted, color="#2e86c1", fontcolor="#1f618d", penwidth=1.5',
}
_MARK = {EdgeKind.PERSON: "", EdgeKind.TIMER: "◷ ", EdgeKind.BREACH: "⚠ ", EdgeKind.ENGINE: "⚙ "}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tooltip(lines: list[str]) -> str:
    """A tooltip of several lines (``\\n`` is a line break in a DOT string)."""
    escaped = (line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return 'tooltip="' + "\\n".join(escaped) + '"'


def _cell(text: str, size: float, *, align: str = "center", color: str | None = None) -> str:
    """One line of an HTML-like label, its width set for the text it holds."""
    width = math.ceil(text_width(text, size)) + 4
    shown = escape(text)
    font = f'point-size="{size:g}"' + (f' color="{color}"' if color else "")
    return f'<tr><td width="{width}" align="{align}"><font {font}>{shown}</font></td></tr>'


def _cells(
    text: str, size: float, limit: float, *, color: str | None = None, indent: bool = False
) -> list[str]:
    """``text`` as left-aligned lines of at most ``limit`` points, the later ones indented
    (all of them with ``indent``)."""
    lines = wrap(text, size, limit)
    return [
        _cell(("    " if indent or i else "") + line, size, align="left", color=color)
        for i, line in enumerate(lines)
    ]


def _table(rows: list[str]) -> str:
    return (
        '<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">'
        + "".join(rows)
        + "</table>>"
    )


def to_dot(
    definition: WorkflowDefinition,
    *,
    lang: str = "en",
    counts: Mapping[str, int] | None = None,
    highlight: frozenset[str] = frozenset(),
    direction: str = "LR",
) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    spans = {sla.name: clock_span(definition, sla) for sla in definition.slas}
    lines = [
        f"digraph {_quote(definition.name)} {{",
        f"  rankdir={direction}; nodesep=0.2;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", fontname="Helvetica"];',
        f'  edge [fontname="Helvetica", fontsize={EDGE_FONT:g}];',
        '  __start [shape=point, width=0.15, label=""];',
        f"  __start -> {_quote(definition.initial)};",
    ]
    for state in definition.states:
        lines.append(
            _node(definition, state, lang, counts=counts, highlight=highlight, spans=spans)
        )
    for t in definition.transitions:
        lines += _edges(definition, t, lang)
    lines += _note(definition, lang, spans)
    tables = definition.decisions.tables.values()
    if tables:
        # Below the states (right of them left to right), where they widen nothing.
        sink = next((s.name for s in reversed(definition.states) if s.final), None)
        if sink is not None:
            lines += [f"  {_quote(sink)} -> {_quote(t.path)} [style=invis];" for t in tables]
        lines += [
            "  subgraph cluster_decisions {",
            f"    label={_quote(pick(lang, 'Decision tables', '决策表'))};",
            '    style=dashed; fontname="Helvetica";',
        ]
        lines += [
            f"    {_quote(t.path)} [shape=plaintext, label=<{_table_html(t, lang)}>];"
            for t in tables
        ]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- states ---------------------------------------------------------------------------------------


def _node(
    definition: WorkflowDefinition,
    state: StateSpec,
    lang: str,
    *,
    counts: Mapping[str, int] | None,
    highlight: frozenset[str],
    spans: Mapping[str, ClockSpan],
) -> str:
    rows = [_cell(pick(lang, state.title.en, state.title.zh), STATE_FONT)]
    if counts is not None:
        rows.append(_cell(f"({counts.get(state.name, 0)})", STATE_FONT))
    tip = [f"{state.name}: {pick(lang, state.title.en, state.title.zh)}"]
    clocks = _clock_marks(definition, state.name, spans)
    if clocks:
        rows.append(_cell(clocks, SMALL_FONT, color="#7d6608"))
        tip += _clock_tips(definition, state.name, spans, lang)
    for timer in state.timers:
        words = timer_words(definition, timer, lang)
        tip.append(
            pick(lang, "timer ", "定时器 ")
            + f"{timer.name}: {words.full} → {timer.trigger}{parameter_note(words, lang)}"
        )
    for t in definition.transitions:
        if state.name in t.sources and t.stays(state.name):
            kind = edge_kind(definition, t, state.name)
            text = "↻ " + _edge_text(definition, t, state.name, lang, kind, one_line=True)
            rows += _cells(text, EDGE_FONT, ROW_WIDTH, color=_ROW_COLOR.get(kind))
            tip += _edge_tip(definition, t, state.name, lang)
    attrs = [f"label={_table(rows)}", _tooltip(tip)]
    if state.final:
        attrs.append("peripheries=2")
    if state.name in highlight:
        attrs.append('fillcolor="#fde2e1", color="#c0392b"')
    return f"  {_quote(state.name)} [{', '.join(attrs)}];"


_ROW_COLOR = {
    EdgeKind.TIMER: "#5d6d7e",
    EdgeKind.BREACH: "#a93226",
    EdgeKind.ENGINE: "#1f618d",
}


def _clock_marks(definition: WorkflowDefinition, state: str, spans: Mapping[str, ClockSpan]) -> str:
    """``▶ S1 S3 ‖ S2``: the SLA clocks running and paused in ``state``."""
    running = [f"S{i}" for i, s in enumerate(definition.slas, 1) if state in spans[s.name].running]
    paused = [f"S{i}" for i, s in enumerate(definition.slas, 1) if state in spans[s.name].paused]
    marks = (["▶ " + " ".join(running)] if running else []) + (
        ["‖ " + " ".join(paused)] if paused else []
    )
    return "  ".join(marks)


def _clock_tips(
    definition: WorkflowDefinition, state: str, spans: Mapping[str, ClockSpan], lang: str
) -> list[str]:
    tips = []
    for i, sla in enumerate(definition.slas, 1):
        if state in spans[sla.name].running:
            tips.append(pick(lang, "runs here: ", "此处计时：") + f"S{i} {sla_title(sla, lang)}")
        elif state in spans[sla.name].paused:
            tips.append(pick(lang, "paused here: ", "此处暂停：") + f"S{i} {sla_title(sla, lang)}")
    return tips


# --- transitions ----------------------------------------------------------------------------------


def _edge_text(
    definition: WorkflowDefinition,
    t: TransitionSpec,
    source: str,
    lang: str,
    kind: EdgeKind,
    *,
    one_line: bool = False,
) -> str:
    """The edge's words, one line per part (joined by newlines unless ``one_line``)."""
    name = t.trigger if t.title is None else pick(lang, t.title.en, t.title.zh)
    parts = []
    if kind is EdgeKind.TIMER:
        timer = next(tm for tm in definition.state(source).timers if tm.trigger == t.trigger)
        parts.append("◷ " + timer_words(definition, timer, lang).short)
        parts.append(name)
    else:
        parts.append(_MARK[kind] + name)
    tag = role_tag(definition, t, lang)
    if tag:
        parts[-1] += " " + tag
    if t.reenter:
        parts[-1] += pick(lang, " (re-enter)", "（重新进入）")
    if t.guard:
        parts.append(f"[{shorten(t.guard, GUARD_SHOWN)}]")
    return " ".join(parts) if one_line else "\n".join(parts)


def _edge_tip(
    definition: WorkflowDefinition, t: TransitionSpec, source: str, lang: str
) -> list[str]:
    tip = [f"{t.trigger}: {source} -> {t.target(source)}"]
    if t.guard:
        tip.append(f"guard: {t.guard}")
        if t.guard_message is not None:
            tip.append(pick(lang, t.guard_message.en, t.guard_message.zh))
    tip.append(pick(lang, "roles: ", "可触发：") + roles_said(definition, t, lang))
    for timer in definition.state(source).timers:
        if timer.trigger == t.trigger:
            words = timer_words(definition, timer, lang)
            tip.append(
                pick(lang, "timer ", "定时器 ")
                + f"{timer.name}: {words.full}{parameter_note(words, lang)}"
            )
    return tip


def _edges(definition: WorkflowDefinition, t: TransitionSpec, lang: str) -> list[str]:
    """The edges of ``t`` that leave their state. From :data:`JOINED` or more states fired
    alike (all by people, or all by their timers) they meet at a junction point and go on as
    one labelled edge: the repair ticket's hand-over to a third party leaves six states, and
    six copies of its label widen the page."""
    by_kind: dict[EdgeKind, list[str]] = {}
    for source in t.sources:
        if not t.stays(source):
            by_kind.setdefault(edge_kind(definition, t, source), []).append(source)
    lines = []
    for kind, sources in by_kind.items():
        if len(sources) < JOINED:
            lines += [
                f"  {_quote(s)} -> {_quote(t.target(s))} [{_edge(definition, t, s, lang)}];"
                for s in sources
            ]
            continue
        junction = _quote(f"__join_{t.index}_{kind.value}")
        tip = _tooltip(_edge_tip(definition, t, sources[0], lang)[1:])
        lines.append(f'  {junction} [shape=point, width=0.08, label="", {tip}];')
        for s in sources:
            tip = _tooltip([f"{t.trigger}: {s} -> {t.dest}"])
            lines.append(
                f"  {_quote(s)} -> {junction} [arrowhead=none, {tip}, {_EDGE_STYLE[kind]}];"
            )
        edge = _edge(definition, t, sources[0], lang)
        lines.append(f"  {junction} -> {_quote(t.target(sources[0]))} [{edge}];")
    return lines


def _edge(definition: WorkflowDefinition, t: TransitionSpec, source: str, lang: str) -> str:
    kind = edge_kind(definition, t, source)
    text = _edge_text(definition, t, source, lang, kind)
    lines = [wrapped for line in text.split("\n") for wrapped in wrap(line, EDGE_FONT, EDGE_WIDTH)]
    label = _table([_cell(line, EDGE_FONT) for line in lines])
    attrs = [f"label={label}", _tooltip(_edge_tip(definition, t, source, lang)), _EDGE_STYLE[kind]]
    return ", ".join(attrs)


# --- the note: SLAs and the legend ----------------------------------------------------------------


def _note(definition: WorkflowDefinition, lang: str, spans: Mapping[str, ClockSpan]) -> list[str]:
    rows = []
    if definition.slas:
        rows.append(_cell(pick(lang, "SLAs", "SLA 时限"), EDGE_FONT, align="left"))
    for i, sla in enumerate(definition.slas, 1):
        target = sla_target_words(definition, sla, lang)
        said = f"S{i} {sla_title(sla, lang)}{pick(lang, ': ', '：')}{target.full}"
        rows += _cells(said, EDGE_FONT, ROW_WIDTH)
        rows += _cells(_span_words(definition, sla, lang), SMALL_FONT, ROW_WIDTH, indent=True)
    rows += [
        _cell(line, SMALL_FONT, align="left", color="#566573") for line in _legend(definition, lang)
    ]
    note = 'shape=note, style=filled, fillcolor="#fffbe6"'
    return [f"  __note [{note}, label={_table(rows)}];"]


def _legend(definition: WorkflowDefinition, lang: str) -> list[str]:
    """What the marks mean: only those this diagram uses, besides the role tags and stays."""
    kinds = {
        edge_kind(definition, t, source) for t in definition.transitions for source in t.sources
    }
    lines = [
        pick(
            lang,
            "«role» who may fire it (none: any role); ↻ stays in the state",
            "«角色» 可触发者（未标：任何角色）；↻ 停留在本状态",
        )
    ]
    marks = [
        pick(lang, *words)
        for kind, words in (
            (EdgeKind.TIMER, ("◷ a timer", "◷ 定时器")),
            (EdgeKind.BREACH, ("⚠ an SLA breach", "⚠ SLA 超时")),
            (EdgeKind.ENGINE, ("⚙ the engine (a child case)", "⚙ 引擎（子工单）")),
        )
        if kind in kinds
    ]
    if marks:
        lines.append("  ".join(marks))
    if definition.slas:
        lines.append(
            pick(
                lang,
                "▶ S1: SLA S1 runs here  ‖ S1: paused here",
                "▶ S1：S1 在此计时  ‖ S1：在此暂停",
            )
        )
    return lines


def _span_words(definition: WorkflowDefinition, sla: SlaSpec, lang: str) -> str:
    """``Logged → Contact the customer; paused in Awaiting consent``, by titles."""
    text = f"{_condition_words(definition, sla.start, lang)} → "
    text += _condition_words(definition, sla.stop, lang)
    if sla.pause.states or sla.pause.triggers:
        text += pick(lang, "; paused in ", "；暂停于 ") + _condition_words(
            definition, sla.pause, lang
        )
    if sla.repeats:
        text += pick(lang, "; again each round", "；每轮重新计时")
    return text


def _condition_words(definition: WorkflowDefinition, condition: SlaCondition, lang: str) -> str:
    titles = [
        pick(lang, definition.state(s).title.en, definition.state(s).title.zh)
        for s in condition.states
    ]
    for trigger in condition.triggers:
        titled = next(
            (t.title for t in definition.transitions if t.trigger == trigger and t.title), None
        )
        titles.append(trigger if titled is None else pick(lang, titled.en, titled.zh))
    return ", ".join(titles)


def _table_html(table: DecisionTable, lang: str) -> str:
    """A table as a Graphviz HTML-like label: a heading, the inputs and the output, a row per
    rule (``any`` where a rule names no condition), then the default."""
    title = (
        table.title.zh if lang == "zh" and table.title else table.title.en if table.title else ""
    )
    heading = f"{title} ({table.path}, {table.hit_policy})" if title else table.path
    width = len(table.inputs) + 1

    def row(cells: list[str], bold: bool = False) -> str:
        shown = [f"<b>{escape(c)}</b>" if bold else escape(c) for c in cells]
        return "<tr>" + "".join(f"<td>{c}</td>" for c in shown) + "</tr>"

    rows = [
        # sized here: graphviz-pure would give a Chinese title the width of spaces
        f'<tr><td colspan="{width}" width="{math.ceil(text_width(heading, STATE_FONT))}">'
        f"<b>{escape(heading)}</b></td></tr>",
        row([*table.inputs, f"=> {table.output}"], bold=True),
    ]
    for rule in table.rules:
        conditions = [rule.when[n].describe() if n in rule.when else "any" for n in table.inputs]
        rows.append(row([*conditions, rule.then.describe()]))
    if table.default is not None:
        otherwise = "否则" if lang == "zh" else "otherwise"
        rows.append(
            f'<tr><td colspan="{width - 1}"><i>{otherwise}</i></td>'
            f"<td>{escape(table.default.describe())}</td></tr>"
        )
    return '<table border="0" cellborder="1" cellspacing="0">' + "".join(rows) + "</table>"
