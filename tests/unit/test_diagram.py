"""State diagrams a process owner reads: titles in the page's language on the edges, timer
edges drawn apart with their durations, long guards cut short with the whole text on hover,
and the SLAs listed."""

from __future__ import annotations

import re

from engine.core.definition import parse_source
from engine.core.diagram import GUARD_SHOWN, to_dot
from engine.core.validation import load_definition
from tests.workflows import TICKET

LONG_GUARD = "data.allowed && has(data.engineer) && data.engineer != 'nobody'"


def _dot(source: str = TICKET, lang: str = "en") -> str:
    return to_dot(load_definition(parse_source(source), version=1), lang=lang)


def _edge(dot: str, source: str, dest: str, label_start: str) -> str:
    pattern = rf'"{source}" -> "{dest}" \[label="{re.escape(label_start)}[^\n]*'
    found = re.search(pattern, dot)
    assert found, f"no edge {source} -> {dest} labelled {label_start!r} in\n{dot}"
    return found.group(0)


def test_edges_take_the_transition_title_in_the_pages_language() -> None:
    assert _edge(_dot(lang="zh"), "received", "repairing", "开始维修")
    assert _edge(_dot(lang="en"), "received", "repairing", "Start the repair")
    assert _edge(_dot(lang="zh"), "received", "on_hold", "hold")  # no title: the trigger


def test_timer_edges_are_dashed_with_their_duration() -> None:
    chase = _edge(_dot(), "repairing", "repairing", "⏱ 1d chase")
    assert "style=dashed" in chase
    assert "style=dashed" not in _edge(_dot(), "received", "repairing", "Start")


def test_a_long_guard_is_shortened_with_the_whole_text_on_hover() -> None:
    dot = _dot(TICKET.replace('guard: "data.allowed"', f'guard: "{LONG_GUARD}"'))
    remind = _edge(dot, "received", "received", "⏱ 2h remind")
    shown = re.search(r'label="([^"]*)"', remind)
    assert shown is not None
    assert LONG_GUARD not in shown.group(1) and LONG_GUARD[: GUARD_SHOWN - 1] + "…" in remind
    tooltip = re.search(r'tooltip="(.*?)(?<!\\)"', remind)
    assert tooltip is not None and LONG_GUARD in tooltip.group(1)
    assert "roles: supervisor" in tooltip.group(1)


def test_slas_are_listed_with_target_span_and_pause() -> None:
    assert "Response time: 4h (received → repairing; paused in on_hold)" in _dot()
    assert "响应时限: 4h (received → repairing; 暂停 on_hold)" in _dot(lang="zh")
