"""State diagrams of definitions as Graphviz DOT. Pure: the caller renders DOT to SVG.

``counts`` (cases per state) and ``highlight`` (states to mark, e.g. with stuck cases) let a
dashboard draw live numbers on the same diagram.

Edges are labelled with the transition's title in the page's language (its trigger name when
it has none). A transition a state's timer fires is drawn dashed with the timer's duration,
apart from those people fire. A guard longer than :data:`GUARD_SHOWN` characters is cut short
on the edge; the whole guard, what it requires in words and who may fire are in its tooltip
(a hover in the SVG). The SLAs are listed in a note beside the states. A definition's
decision tables are drawn beside the states, each as the table it is (inputs, rules, output).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from engine.core.decisions import DecisionTable
from engine.core.definition import (
    DurationValue,
    SlaSpec,
    TimerSpec,
    TransitionSpec,
    WorkflowDefinition,
)

GUARD_SHOWN = 24  # characters of a guard written on its edge


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(
    definition: WorkflowDefinition,
    *,
    lang: str = "en",
    counts: Mapping[str, int] | None = None,
    highlight: frozenset[str] = frozenset(),
) -> str:
    def label(en: str, zh: str) -> str:
        return zh if lang == "zh" else en

    lines = [
        f"digraph {_quote(definition.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        '  __start [shape=point, width=0.15, label=""];',
        f"  __start -> {_quote(definition.initial)};",
    ]
    for state in definition.states:
        text = _quote(label(state.title.en, state.title.zh))
        if counts is not None:
            # A DOT line break (\n) after quoting: quoting the whole label would escape its
            # backslash and print a literal "\n" before the count.
            text = text[:-1] + f'\\n({counts.get(state.name, 0)})"'
        attrs = [f"label={text}"]
        if state.final:
            attrs.append("peripheries=2")
        if state.name in highlight:
            attrs.append('fillcolor="#fde2e1", color="#c0392b"')
        if state.timers:
            timers = ", ".join(f"{t.name} {_timer_text(t)}" for t in state.timers)
            attrs.append(f"tooltip={_quote('timers: ' + timers)}")
        lines.append(f"  {_quote(state.name)} [{', '.join(attrs)}];")
    for t in definition.transitions:
        for source in t.sources:
            target = t.target(source)
            lines.append(
                f"  {_quote(source)} -> {_quote(target)} [{_edge(definition, t, source, lang)}];"
            )
    if definition.slas:
        rows = "".join(_sla_line(sla, lang) + "\\l" for sla in definition.slas)
        title = "SLA 时限" if lang == "zh" else "SLAs"
        note = 'shape=note, fillcolor="#fffbe6", fontsize=10'
        lines.append(f'  __slas [{note}, label="{_escape(title)}\\l{rows}"];')
    tables = definition.decisions.tables.values()
    if tables:
        lines += [
            "  subgraph cluster_decisions {",
            f"    label={_quote(label('Decision tables', '决策表'))};",
            '    style=dashed; fontname="Helvetica";',
        ]
        lines += [
            f"    {_quote(t.path)} [shape=plaintext, label=<{_table_html(t, lang)}>];"
            for t in tables
        ]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


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
        f'<tr><td colspan="{width}"><b>{escape(heading)}</b></td></tr>',
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


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _duration(value: DurationValue | None) -> str:
    if value is None:
        return ""
    if value.literal is not None:
        return value.literal
    return f"params.{value.param}" if value.param is not None else "(expr)"


def _timer_text(timer: TimerSpec) -> str:
    if timer.after is not None:
        return _duration(timer.after)
    return f"every {timer.every}" if timer.every else f"at {timer.at}"


def _edge(definition: WorkflowDefinition, t: TransitionSpec, source: str, lang: str) -> str:
    name = t.trigger
    if t.title is not None:
        name = t.title.zh if lang == "zh" else t.title.en
    timer = next((tm for tm in definition.state(source).timers if tm.trigger == t.trigger), None)
    text = f"⏱ {_timer_text(timer)} {name}" if timer is not None else name
    text += " (re-enter)" if t.reenter else ""
    tip = [f"{t.trigger}: {source} -> {t.target(source)}"]
    if t.guard:
        shown = t.guard if len(t.guard) <= GUARD_SHOWN else t.guard[: GUARD_SHOWN - 1] + "…"
        text += f" [{shown}]"
        tip.append(f"guard: {t.guard}")
        if t.guard_message is not None:
            tip.append(t.guard_message.zh if lang == "zh" else t.guard_message.en)
    roles = definition.roles_of(t)
    if roles:
        tip.append("roles: " + ", ".join(roles))
    attrs = [f"label={_quote(text)}", 'tooltip="' + "\\n".join(_escape(line) for line in tip) + '"']
    if timer is not None:
        attrs.append('style=dashed, color="#7f8c8d", fontcolor="#7f8c8d"')
    return ", ".join(attrs)


def _sla_line(sla: SlaSpec, lang: str) -> str:
    title = sla.name
    if sla.title is not None:
        title = sla.title.zh if lang == "zh" else sla.title.en
    start = ", ".join(sla.start.states + sla.start.triggers)
    span = f"{start} → {', '.join(sla.stop.states + sla.stop.triggers)}"
    pause = sla.pause.states + sla.pause.triggers
    text = f"{title}: {_duration(sla.target)} ({span}"
    text += f"; {'暂停' if lang == 'zh' else 'paused in'} {', '.join(pause)})" if pause else ")"
    return _escape(text)
