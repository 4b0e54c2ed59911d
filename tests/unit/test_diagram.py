"""State diagrams a process owner reads: titles in the page's language, who may fire each
transition, how it is fired (a person, a timer, an SLA breach, the engine), durations in
words with parameters resolved to their defaults, where each SLA clock runs or is paused,
long guards cut short with the whole text on hover, and stays drawn inside their state."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.definition import WorkflowDefinition, parse_source
from engine.core.diagram import GUARD_SHOWN, to_dot
from engine.core.diagram_words import clock_span, duration_words, text_width, wrap
from engine.core.validation import load_definition
from tests.workflows import TICKET

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
LONG_GUARD = "data.allowed && has(data.engineer) && data.engineer != 'nobody'"

# Every way a transition is fired: a timer whose duration is a parameter, a person with named
# roles (from three states: drawn through a junction) or any role, an SLA's breach, the engine
# alone (a child case's news); and a stay of a supervisor's.
KINDS = """\
name: tst_kinds
title: {en: Kinds, zh: 类型}
initial: open
parameters:
  wait_for: {type: duration, default: 3d}
  answer_within: {type: duration, default: 4h}
states:
  - name: open
    title: {en: Open, zh: 打开}
    timers:
      - {name: nudge, after: {param: wait_for}, trigger: expire}
  - name: parked
    title: {en: Parked, zh: 搁置}
  - name: escalated
    title: {en: Escalated, zh: 已升级}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - trigger: expire
    source: open
    dest: parked
    title: {en: Expired, zh: 已过期}
  - trigger: resume
    source: parked
    dest: open
  - trigger: breach
    source: [open, parked]
    dest: escalated
  - trigger: child_done
    source: escalated
    dest: done
    roles: [system]
  - trigger: finish
    source: [open, parked, escalated]
    dest: done
    roles: [supervisor, integrator]
  - trigger: note
    source: [open, parked]
    roles: [supervisor]
slas:
  - name: answer
    title: {en: Answer, zh: 答复}
    target: {param: answer_within}
    start: {states: [open]}
    pause: {states: [parked]}
    stop: {triggers: [finish]}
    on_breach: {trigger: breach}
"""


def _definition(source: str = TICKET) -> WorkflowDefinition:
    return load_definition(parse_source(source), version=1)


def _bundled(name: str) -> WorkflowDefinition:
    return _definition((WORKFLOWS / f"{name}.yaml").read_text("utf-8"))


def _dot(source: str = TICKET, lang: str = "en") -> str:
    return to_dot(_definition(source), lang=lang)


def _line(dot: str, start: str) -> str:
    """The one DOT statement that starts with ``start`` (a node or an edge)."""
    found = [line for line in dot.splitlines() if line.strip().startswith(start)]
    assert len(found) == 1, f"{len(found)} statements start with {start!r} in\n{dot}"
    return found[0]


def _node(dot: str, state: str) -> str:
    return _line(dot, f'"{state}" [')


def _edge(dot: str, source: str, dest: str, trigger: str | None = None) -> str:
    """The edge from ``source`` to ``dest`` (of ``trigger`` when several join them)."""
    if trigger is None:
        return _line(dot, f'"{source}" -> "{dest}" [')
    start = f'"{source}" -> "{dest}" ['
    (found,) = [
        line
        for line in dot.splitlines()
        if line.strip().startswith(start) and f'tooltip="{trigger}: ' in line
    ]
    return found


def _words(statement: str) -> list[str]:
    """The lines of text a statement's label shows."""
    return [html.unescape(text) for text in re.findall(r"<font[^>]*>(.*?)</font>", statement)]


def _text(statement: str) -> str:
    """A label's lines as one text, as a reader takes in a wrapped line."""
    return " ".join(line.strip() for line in _words(statement))


def _tooltip(statement: str) -> str:
    found = re.search(r'tooltip="(.*?)(?<!\\)"', statement)
    assert found, statement
    return found.group(1).replace("\\n", "\n")


def test_edges_take_the_transition_title_in_the_pages_language() -> None:
    assert _words(_edge(_dot(lang="zh"), "received", "repairing")) == ["开始维修"]
    assert _words(_edge(_dot(lang="en"), "received", "repairing")) == ["Start the repair"]
    assert _words(_edge(_dot(lang="zh"), "received", "on_hold")) == ["hold"]  # no title


def test_each_edge_says_who_may_fire_it_and_how_it_is_fired() -> None:
    dot, zh = _dot(KINDS), _dot(KINDS, lang="zh")

    person = _edge(dot, "parked", "open")
    assert _words(person) == ["resume"] and "style=solid" in person  # any role: no tag
    assert "roles: any role" in _tooltip(person)
    timer = _edge(dot, "open", "parked")
    assert _words(timer) == ["◷ 3 days (param)", "Expired"] and "style=dashed" in timer
    assert _words(_edge(zh, "open", "parked")) == ["◷ 3 天（参数）", "已过期"]
    assert "wait_for" in _tooltip(timer) and "its default" in _tooltip(timer)
    breach = _edge(dot, "open", "escalated")
    assert _words(breach) == ["⚠ breach"] and "style=dotted" in breach
    assert 'color="#c0392b"' in breach
    engine = _edge(dot, "escalated", "done")
    assert _words(engine) == ["⚙ child_done"] and 'color="#2e86c1"' in engine
    assert "roles: system" in _tooltip(engine)
    assert "«" not in "".join(_words(timer) + _words(breach) + _words(engine))


def test_a_transition_from_many_states_is_one_labelled_edge_through_a_junction() -> None:
    dot, zh = _dot(KINDS), _dot(KINDS, lang="zh")

    for source in ("open", "parked", "escalated"):
        leg = _line(dot, f'"{source}" -> "__join_4_person" [')
        assert "arrowhead=none" in leg and "label" not in leg
        assert f"finish: {source} -> done" in _tooltip(leg)
    onward = _line(dot, '"__join_4_person" -> "done" [')
    assert " ".join(_words(onward)) == "finish «supervisor·integrator»"
    assert " ".join(_words(_line(zh, '"__join_4_person" -> "done" ['))) == "finish «主管·集成方»"
    assert dot.count("«supervisor·integrator»") == 1


def test_a_stay_is_a_line_in_its_state_not_a_loop() -> None:
    dot = _dot()

    assert '"received" -> "received"' not in dot and '"repairing" -> "repairing"' not in dot
    assert _words(_node(dot, "received"))[0] == "Received"
    received = _text(_node(dot, "received"))
    assert "↻ ◷ 2 hours remind «supervisor» [data.allowed] ↻ permit" in received
    assert "↻ ◷ 1 day chase" in _text(_node(dot, "repairing"))
    assert "↻ ◷ 1 天 chase" in _text(_node(_dot(lang="zh"), "repairing"))
    # the row's details are the state's tooltip
    tip = _tooltip(_node(dot, "received"))
    assert "remind: received -> received" in tip and "roles: supervisor" in tip
    assert "timer remind: 2 hours → remind" in tip


def test_a_long_guard_is_shortened_with_the_whole_text_on_hover() -> None:
    source = TICKET.replace('guard: "data.allowed"', f'guard: "{LONG_GUARD}"')
    source = source.replace("    dest: received\n    roles", "    dest: on_hold\n    roles")
    edge = _edge(_dot(source), "received", "on_hold", "remind")
    shown = _text(edge)
    assert LONG_GUARD not in shown and f"[{LONG_GUARD[: GUARD_SHOWN - 1]}…]" in shown
    assert f"guard: {LONG_GUARD}" in _tooltip(edge)
    assert "Reminders are not allowed for this ticket." in _tooltip(edge)
    zh = _edge(_dot(source, "zh"), "received", "on_hold", "remind")
    assert "本工单不允许提醒。" in _tooltip(zh)


def test_the_sla_note_says_targets_in_words_with_parameters_resolved() -> None:
    note = _words(_line(_dot(), "__note ["))
    assert note[:5] == [
        "SLAs",
        "S1 Response time: 4 hours",
        "    Received → Repairing; paused in On hold",
        "S2 Repair: 2 days",
        "    Repairing → Closed",
    ]
    zh = _words(_line(_dot(lang="zh"), "__note ["))
    assert zh[1:3] == ["S1 响应时限：4 小时", "    已受理 → 维修中；暂停于 挂起"]
    kinds = _text(_line(_dot(KINDS), "__note ["))
    assert "S1 Answer: 4 hours (parameter answer_within)" in kinds
    assert "params." not in kinds


def test_the_legend_explains_the_marks_the_diagram_uses() -> None:
    kinds = _words(_line(_dot(KINDS), "__note ["))
    assert "◷ a timer  ⚠ an SLA breach  ⚙ the engine (a child case)" in kinds
    assert "▶ S1: SLA S1 runs here  ‖ S1: paused here" in kinds
    plain = _words(_line(_dot(TICKET.split("slas:")[0]), "__note ["))
    assert plain[1:] == ["◷ a timer"]  # no SLA, no breach, no engine edge
    assert plain[0].startswith("«role» who may fire it")


def test_states_show_where_each_sla_clock_runs_and_where_it_is_paused() -> None:
    dot = _dot()

    assert "▶ S1" in _words(_node(dot, "received"))
    assert "‖ S1" in _words(_node(dot, "on_hold"))
    assert "▶ S2" in _words(_node(dot, "repairing"))
    assert not any("S1" in w or "S2" in w for w in _words(_node(dot, "closed")))
    assert "paused here: S1 Response time" in _tooltip(_node(dot, "on_hold"))
    assert "此处计时：S2 维修" in _tooltip(_node(_dot(lang="zh"), "repairing"))


def test_clock_spans_of_the_bundled_repair_ticket() -> None:
    repair = _bundled("repair_ticket")
    by_name = {sla.name: clock_span(repair, sla) for sla in repair.slas}

    # first contact: from logged until the contact trigger, overdue contact included, and a
    # ticket handed to a third party before anyone called still owes the call
    assert by_name["first_contact"].running == {"logged", "contact_late", "third_party_repair"}
    resolution = by_name["resolution"]
    assert resolution.paused == {"awaiting_fee_agreement", "awaiting_consent"}
    assert {"logged", "repairing", "on_site"} <= resolution.running
    assert not resolution.running & {"resolved", "replaced", "signed", "closed"}


def test_durations_in_words() -> None:
    cases = {
        ("2h", None): ("2 hours", "2 小时"),
        ("1h30m", None): ("1 hour 30 minutes", "1 小时 30 分钟"),
        ("1d", None): ("1 day", "1 天"),
        ("3d", "cn-workdays"): ("3 working days", "3 个工作日"),
        ("4h", "cn-workdays"): ("4 working hours", "4 工作小时"),
        ("5 working days", None): ("5 working days", "5 个工作日"),
        ("12 months", None): ("12 months", "12 个月"),
        ("45s", None): ("45 seconds", "45 秒"),
        ("not a duration", None): ("not a duration", "not a duration"),
    }
    for (text, calendar), (en, zh) in cases.items():
        assert duration_words(text, calendar, "en") == en, text
        assert duration_words(text, calendar, "zh") == zh, text


@given(st.text(alphabet="ab 维修中，", min_size=1, max_size=80))
def test_wrapped_lines_keep_every_character_within_the_width(text: str) -> None:
    lines = wrap(text, 10, 60)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    for line in lines:
        assert text_width(line, 10) <= 60 or " " not in line.strip()


def test_chinese_labels_are_sized_for_their_characters() -> None:
    """graphviz-pure measures a CJK character as a space: the cell is sized here instead."""
    state = _node(_dot(lang="zh"), "repairing")
    width = int(re.search(r'<td width="(\d+)"', state).group(1))  # type: ignore[union-attr]
    assert width >= 3 * 14  # 维修中: three characters of a 14 pt font


@pytest.mark.parametrize("direction", ["LR", "TB"])
def test_the_direction_is_the_callers(direction: str) -> None:
    assert f"rankdir={direction};" in to_dot(_definition(), direction=direction)


def test_an_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="direction must be one of"):
        to_dot(_definition(), direction="RL")
