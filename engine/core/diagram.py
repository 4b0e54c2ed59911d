"""State diagrams of definitions as Graphviz DOT. Pure: the caller renders DOT to SVG.

``counts`` (cases per state) and ``highlight`` (states to mark, e.g. with stuck cases) let a
dashboard draw live numbers on the same diagram. A definition's decision tables are drawn
beside the states, each as the table it is (inputs, rules, output), so the reader of the
diagram sees which value a guard or an SLA target reads as ``decisions.<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from engine.core.decisions import DecisionTable
from engine.core.definition import WorkflowDefinition


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
            attrs.append(f"tooltip={_quote('timers: ' + ', '.join(t.name for t in state.timers))}")
        lines.append(f"  {_quote(state.name)} [{', '.join(attrs)}];")
    for t in definition.transitions:
        text = t.trigger + (f" [{t.guard}]" if t.guard else "")
        text += " (re-enter)" if t.reenter else ""
        for source in t.sources:
            target = t.target(source)
            lines.append(f"  {_quote(source)} -> {_quote(target)} [label={_quote(text)}];")
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
