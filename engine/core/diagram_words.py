"""What a state diagram writes in words, in the page's language: durations as a person says
them (``2 小时``, ``5 working days``) with parameters resolved to their defaults, who may fire a
transition, what kind of transition it is, and where each SLA clock runs or is paused.

Pure: everything is read from the definition; a case's own parameters are not known here, so a
parameter is shown with its default and said to be one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

from engine.core.definition import (
    SYSTEM_ROLE,
    CalendarValue,
    DurationValue,
    SlaSpec,
    TimerSpec,
    TransitionSpec,
    WorkflowDefinition,
)
from engine.core.durations import WALL_CLOCK, parse_duration
from engine.errors import DurationInvalid

ROLE_WORDS = {
    "process_owner": ("owner", "流程负责人"),
    "integrator": ("integrator", "集成方"),
    "supervisor": ("supervisor", "主管"),
    "admin": ("admin", "管理员"),
    SYSTEM_ROLE: ("system", "系统"),
}
_DECISION = re.compile(r"^\s*decisions\.(\w+)\s*$")
EXPRESSION_SHOWN = 24  # characters of a CEL expression written in a diagram


def pick(lang: str, en: str, zh: str) -> str:
    return zh if lang == "zh" else en


def shorten(text: str, limit: int = EXPRESSION_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_width(text: str, size: float) -> float:
    """The width in points of ``text`` at font ``size``, generously: graphviz-pure has no
    metrics for CJK characters (it counts each as a space), so the diagram sizes its labels
    itself or Chinese text spills out of its boxes."""
    wide = sum(1 for c in text if unicodedata.east_asian_width(c) in ("W", "F"))
    return wide * size + (len(text) - wide) * size * 0.56


def wrap(text: str, size: float, width: float) -> list[str]:
    """``text`` in lines no wider than ``width`` points (a word longer than that stays whole):
    broken at spaces, and anywhere in Chinese, which has none."""
    lines: list[str] = []
    line = ""
    for word in re.findall(r"\S+\s*", text):
        wide = any(unicodedata.east_asian_width(c) in ("W", "F") for c in word)
        pieces = list(word) if wide and text_width(word, size) > width else [word]
        for piece in pieces:
            if line and text_width((line + piece).rstrip(), size) > width:
                lines.append(line.rstrip())
                line = ""
            line += piece
    return [*lines, line.rstrip()] if line.strip() else lines


# --- durations ------------------------------------------------------------------------------------


def duration_words(text: str, calendar: str | None, lang: str) -> str:
    """``text`` (a duration as written in a definition) as a person says it. On a business
    calendar whole days are working days and hours are working hours (docs/calendars.md)."""
    try:
        duration = parse_duration(text)
    except DurationInvalid:
        return text
    if duration.months:
        return pick(lang, _plural(duration.months, "month"), f"{duration.months} 个月")
    business = duration.working or calendar not in (None, WALL_CLOCK)
    hours, rest = divmod(duration.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    if duration.days:
        unit = "working day" if business else "day"
        parts.append(pick(lang, _plural(duration.days, unit), _zh_days(duration.days, business)))
    working = business and not duration.days  # "2 working days 3 hours" is refused anyway
    for amount, unit, zh in ((hours, "hour", "小时"), (minutes, "minute", "分钟")):
        if amount:
            en = f"working {unit}" if working else unit
            parts.append(
                pick(lang, _plural(amount, en), f"{amount} {'工作' if working else ''}{zh}")
            )
    if seconds:
        parts.append(pick(lang, _plural(seconds, "second"), f"{seconds} 秒"))
    return " ".join(parts)


def _plural(amount: int, unit: str) -> str:
    return f"{amount} {unit}" + ("" if amount == 1 else "s")


def _zh_days(days: int, business: bool) -> str:
    return f"{days} 个工作日" if business else f"{days} 天"


@dataclass(frozen=True)
class Spoken:
    """A duration for a diagram: ``short`` for an edge, ``full`` for a note or a tooltip;
    ``param`` names the parameter whose default it shows."""

    short: str
    full: str
    param: str | None = None


def value_words(
    definition: WorkflowDefinition, value: DurationValue, calendar: str | None, lang: str
) -> Spoken:
    """A literal, a parameter (its default, said to be a parameter) or an expression."""
    if value.literal is not None:
        words = duration_words(value.literal, calendar, lang)
        return Spoken(words, words)
    if value.param is not None:
        param = definition.parameters.get(value.param)
        if param is None or not isinstance(param.default, str):
            return Spoken(value.param, value.param)
        words = duration_words(param.default, calendar, lang)
        return Spoken(
            pick(lang, f"{words} (param)", f"{words}（参数）"),
            pick(lang, f"{words} (parameter {value.param})", f"{words}（参数 {value.param}）"),
            value.param,
        )
    expr = value.expr or ""
    table = _DECISION.match(expr)
    if table is not None:
        said = pick(lang, f"by table {table.group(1)}", f"按决策表 {table.group(1)}")
        return Spoken(said, said)
    return Spoken(
        pick(lang, "computed", "按表达式计算"),
        pick(lang, f"computed: {shorten(expr)}", f"按表达式计算：{shorten(expr)}"),
    )


def default_calendar(
    definition: WorkflowDefinition, literal: str | None, param: str | None
) -> str | None:
    return CalendarValue(literal, param).name(definition.default_params())


def timer_words(definition: WorkflowDefinition, timer: TimerSpec, lang: str) -> Spoken:
    calendar = default_calendar(definition, timer.calendar, timer.calendar_param)
    if timer.after is not None:
        return value_words(definition, timer.after, calendar, lang)
    if timer.every is not None:  # a cron schedule
        said = pick(lang, f"schedule {timer.every}", f"定期 {timer.every}")
        return Spoken(said, said)
    at = shorten(timer.at or "")
    return Spoken(
        pick(lang, f"at {at}", f"于 {at}"), pick(lang, f"at {timer.at}", f"于 {timer.at}")
    )


def sla_target_words(definition: WorkflowDefinition, sla: SlaSpec, lang: str) -> Spoken:
    calendar = default_calendar(definition, sla.calendar, sla.calendar_param)
    return value_words(definition, sla.target, calendar, lang)


# --- who fires a transition -----------------------------------------------------------------------


class EdgeKind(str, Enum):
    """How a transition is fired, which is how it is drawn."""

    PERSON = "person"  # a caller with one of its roles (or any role)
    TIMER = "timer"  # a timer of its source state
    BREACH = "breach"  # an SLA's breach
    ENGINE = "engine"  # only the engine: a child case's news, an engine deadline


def edge_kind(definition: WorkflowDefinition, t: TransitionSpec, source: str) -> EdgeKind:
    if any(tm.trigger == t.trigger for tm in definition.state(source).timers):
        return EdgeKind.TIMER
    if any(s.breach_trigger == t.trigger for s in definition.slas):
        return EdgeKind.BREACH
    if definition.roles_of(t) == (SYSTEM_ROLE,):
        return EdgeKind.ENGINE
    return EdgeKind.PERSON


def role_tag(definition: WorkflowDefinition, t: TransitionSpec, lang: str) -> str:
    """``«主管·集成方»``: the roles that may fire ``t`` by hand; empty when any role may, or
    when only the engine does (the edge's style says so)."""
    people = [r for r in definition.roles_of(t) if r != SYSTEM_ROLE]
    if not people:
        return ""
    words = [pick(lang, *ROLE_WORDS.get(r, (r, r))) for r in people]
    return "«" + "·".join(words) + "»"


def roles_said(definition: WorkflowDefinition, t: TransitionSpec, lang: str) -> str:
    roles = definition.roles_of(t)
    if not roles:
        return pick(lang, "any role", "任何角色")
    return ", ".join(pick(lang, *ROLE_WORDS.get(r, (r, r))) for r in roles)


# --- where SLA clocks run -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockSpan:
    """The states where an SLA's clock can be running, and where it is paused."""

    running: frozenset[str]
    paused: frozenset[str]


def clock_span(definition: WorkflowDefinition, sla: SlaSpec) -> ClockSpan:
    """Follows the transitions from where the clock starts (a start state, or the target of a
    start trigger) until one stops it (a stop trigger, entering a stop or final state), as
    engine/core/sla.py advances a clock. Pauses are by state (an operator's pause is not drawn)."""
    finals = definition.final_states
    frontier = list(sla.start.states)
    frontier += [
        t.target(source)
        for t in definition.transitions
        if t.trigger in sla.start.triggers
        for source in t.sources
    ]
    reached: set[str] = set()
    while frontier:
        state = frontier.pop()
        if state in reached or state in finals:
            continue
        reached.add(state)
        for t in definition.transitions:
            if state not in t.sources or t.trigger in sla.stop.triggers:
                continue
            target = t.target(state)
            if target != state and target in sla.stop.states:
                continue
            frontier.append(target)
    paused = frozenset(reached & set(sla.pause.states))
    return ClockSpan(frozenset(reached) - paused, paused)


def parameter_note(spoken: Spoken, lang: str) -> str:
    """What a tooltip adds about a duration taken from a parameter."""
    if spoken.param is None:
        return ""
    return pick(
        lang,
        " - its default: a case or its contract may set another value",
        "——此为默认值，个别工单或其合同可另设",
    )


def sla_title(sla: SlaSpec, lang: str) -> str:
    if sla.title is None:
        return sla.name
    return pick(lang, sla.title.en, sla.title.zh)
