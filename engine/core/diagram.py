"""State diagrams of definitions as Graphviz DOT. Pure: the caller renders DOT to SVG.

``counts`` (cases per state) and ``highlight`` (states to mark, e.g. with stuck cases) let a
dashboard draw live numbers on the same diagram.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    lines.append("}")
    return "\n".join(lines) + "\n"
