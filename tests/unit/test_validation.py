"""The definition validator: a corpus of broken definitions, bundled workflows, and a property.

Each file under ``corpus/`` is a minimal valid definition with one thing broken (``many_errors``
breaks many). Its comment header states exactly what the validator must report::

    # expect: <severity> <element path> <code>       one line per problem, all of them
    # hint: <element path> <text the hint contains>  optional
    # expect-source-error: line <n>                  the text is not even readable YAML

The problems reported must equal the expected ones (as a multiset), so a new false positive
fails the test as surely as a missed problem.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from engine.core.definition import build_definition, parse_source
from engine.core.machine import compile_workflow
from engine.core.validation import ValidationReport, load_definition, validate
from engine.errors import DefinitionInvalid, DefinitionSourceError, Severity

CORPUS = Path(__file__).resolve().parent / "corpus"
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))

_EXPECT = re.compile(r"^# expect: (error|warning) (\S+) (\S+)\s*$")
_HINT = re.compile(r"^# hint: (\S+) (.+?)\s*$")
_SOURCE_ERROR = re.compile(r"^# expect-source-error: line (\d+)\s*$")


def _header(path: Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]], int | None]:
    expected, hints, source_line = [], [], None
    for line in path.read_text("utf-8").splitlines():
        if match := _EXPECT.match(line):
            expected.append((match[1], match[2], match[3]))
        elif match := _HINT.match(line):
            hints.append((match[1], match[2]))
        elif match := _SOURCE_ERROR.match(line):
            source_line = int(match[1])
    return expected, hints, source_line


def _report(path: Path) -> ValidationReport:
    return validate(parse_source(path.read_text("utf-8"), path.name))


def _found(report: ValidationReport) -> Counter[tuple[str, str, str]]:
    return Counter((p.severity.value, p.path, p.code) for p in report.problems)


def test_corpus_is_not_empty_and_every_file_states_its_expectation() -> None:
    assert len(CORPUS_FILES) >= 30
    for path in CORPUS_FILES:
        expected, _, source_line = _header(path)
        assert expected or source_line, f"{path.name} has no '# expect' header"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.stem)
def test_corpus_file_reports_exactly_the_expected_problems(path: Path) -> None:
    expected, hints, source_line = _header(path)
    if source_line is not None:
        with pytest.raises(DefinitionSourceError) as caught:
            parse_source(path.read_text("utf-8"), path.name)
        assert caught.value.fields["line"] == source_line
        assert f"line {source_line}" in caught.value.message
        return

    report = _report(path)

    assert _found(report) == Counter(expected), "\n".join(map(str, report.problems))
    for hint_path, text in hints:
        matching = [p.hint for p in report.problems if p.path == hint_path]
        assert any(text in hint for hint in matching), (hint_path, matching)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.stem)
def test_every_corpus_problem_tells_how_to_fix_it(path: Path) -> None:
    if _header(path)[2] is not None:  # unreadable text: the one error is the source error
        with pytest.raises(DefinitionSourceError) as caught:
            parse_source(path.read_text("utf-8"), path.name)
        assert caught.value.message.strip()
        assert (caught.value.hint or "").strip(), f"{path.name}: the source error has no hint"
        return

    problems = _report(path).problems

    assert problems, f"{path.name} breaks something, so the validator must report it"
    for problem in problems:  # warnings too: a process owner has to act on them as well
        assert problem.hint.strip(), f"{problem.path} {problem.code} has no hint"
        assert problem.message.strip()


def test_many_errors_are_all_reported_in_one_run() -> None:
    report = _report(CORPUS / "many_errors.yaml")

    assert len(report.errors) == 11
    assert len(report.warnings) == 1
    codes = {p.code for p in report.errors}
    # structural (JSON Schema) and semantic findings side by side
    assert {"unknown-key", "bad-requirement-id"} <= codes
    assert {"unknown-state", "dead-end-state", "ambiguous-transition", "bad-duration"} <= codes


def test_load_definition_raises_listing_every_problem() -> None:
    document = parse_source((CORPUS / "many_errors.yaml").read_text("utf-8"))

    with pytest.raises(DefinitionInvalid) as caught:
        load_definition(document)

    error = caught.value
    assert error.fields["definition"] == "mini"
    assert "11 error(s)" in error.message
    assert len(error.problems) == 12  # the warning travels along with the errors
    assert {p["path"] for p in error.to_dict()["problems"]} >= {
        "initial",
        "transitions[1].gaurd",
        "slas[0].stop.triggers[0]",
    }


@pytest.mark.parametrize("name", ["unreachable_state", "unknown_calendar"])
def test_warnings_alone_do_not_stop_a_definition(name: str) -> None:
    document = parse_source((CORPUS / f"{name}.yaml").read_text("utf-8"))

    report = validate(document)

    assert report.warnings and not report.errors
    assert report.ok
    assert all(p.severity is Severity.WARNING for p in report.problems)
    assert load_definition(document).name == "mini"


def test_errors_make_the_report_not_ok() -> None:
    report = _report(CORPUS / "dead_end_state.yaml")

    assert not report.ok
    assert [p.severity for p in report.problems] == [Severity.ERROR]


def test_a_calendar_known_to_the_run_is_not_warned_about() -> None:
    document = parse_source((CORPUS / "unknown_calendar.yaml").read_text("utf-8"))

    assert validate(document, known_calendars=["cn-workday"]).problems == []


def test_non_mapping_document_is_one_error_at_the_root() -> None:
    report = validate(["name", "mini"])

    assert [(p.path, p.code) for p in report.errors] == [("", "not-a-mapping")]
    assert report.errors[0].hint


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_workflow_validates_without_errors(path: Path) -> None:
    document = parse_source(path.read_text("utf-8"), path.name)

    report = validate(document)

    assert report.errors == [], "\n".join(map(str, report.errors))
    definition = load_definition(document, version=1)
    assert compile_workflow(definition).allowed_triggers(definition.initial)


def test_there_is_at_least_one_bundled_workflow() -> None:
    assert (WORKFLOWS / "repair_ticket.yaml").is_file()


# --- property: the validator never raises, and what it accepts compiles -----------------------
#
# Two kinds of random definitions over small name pools: "clean" ones built only from plausible
# values (many pass, so the compile half of the property is exercised), and "junk" ones where any
# value may be of the wrong type or refer to nothing (the validator must report, never raise).

STATE_NAMES = ["open", "work", "wait", "done", "gone"]
TRIGGERS = ["go", "stop", "tick"]
DATA_SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "maximum": 9}, "s": {"type": "string"}, "t": {}},
}
PARAMETERS = {
    "wait": {"type": "duration", "default": "2h"},
    "limit": {"type": "integer", "default": 3},
}
PAYLOAD_SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}}
GOOD_GUARDS = ["data.n > 1", "data.n <= 1", "params.limit > data.n", "has(data.s)", "true"]
BAD_GUARDS = ["data.n  >  1", "data.m == 2", "payload.x == 1", "dat.n > 1", "data.n >", 5]
GOOD_ACTIONS = [
    {"set": {"s": "'x'"}},
    {"set": {"n": "data.n + 1", "t": "now"}},
    {"increment": "n"},
    {"increment": {"field": "n", "by": 2}},
]
BAD_ACTIONS = [
    {"set": {"q": "1"}},
    {"increment": {"field": "s", "by": 2}},
    {"increment": "n", "set": {"s": "'y'"}},
    {"set": {1: "2"}},
    "junk",
]
GOOD_DURATIONS = ["1h", "2d", "90m", {"param": "wait"}, {"expr": "duration('1h')"}]
BAD_DURATIONS = ["1d4h", "soon", {"param": "limit"}, {"param": 5}, {"param": ["x"]}, 7]
JUNK = st.sampled_from([None, 3, "X-Y", [], {}, ["open"], {"a": 1}])


class _Pools:
    def __init__(self, junk: bool, catch_all: bool) -> None:
        self.junk = junk
        # Clean definitions may end with a "tick" transition from every non-final state; timers
        # fire "tick" only then, so that clean timers are allowed from their state.
        self.catch_all = catch_all

    def pick(self, good: list[Any], bad: list[Any] | None = None) -> st.SearchStrategy[Any]:
        if not self.junk:
            return st.sampled_from(good)
        return st.one_of(st.sampled_from(good + (bad or [])), JUNK)


@st.composite
def _timers(draw: st.DrawFn, pools: _Pools, state: str) -> list[Any]:
    timers = []
    for _ in range(draw(st.integers(0, 2))):
        timer: dict[str, Any] = {"trigger": draw(pools.pick(["tick"], TRIGGERS))}
        kinds = draw(st.sets(st.sampled_from(["after", "at", "every"]), min_size=1, max_size=2))
        for kind in kinds if pools.junk else sorted(kinds)[:1]:
            timer[kind] = draw(
                {
                    "after": pools.pick(GOOD_DURATIONS, BAD_DURATIONS),
                    "at": pools.pick(["now + duration('1h')"], ["data.n", "now +"]),
                    "every": pools.pick(["0 9 * * *", "*/5 * * * *"], ["0 9 * *"]),
                }[kind]
            )
        if draw(st.booleans()):
            timer["calendar"] = draw(pools.pick(["24x7"], ["cn-workdays", "mars"]))
        timers.append(timer)
    return timers


@st.composite
def _states(draw: st.DrawFn, pools: _Pools) -> list[Any]:
    names = draw(
        st.lists(st.sampled_from(STATE_NAMES), min_size=1, max_size=5, unique=not pools.junk)
    )
    states = []
    for name in names:
        state: dict[str, Any] = {"name": draw(pools.pick([name])), "title": {"en": "S", "zh": "状"}}
        if draw(st.booleans()):
            state["final"] = draw(pools.pick([True, False]))
        timers_allowed = pools.junk or (pools.catch_all and not state.get("final"))
        if timers_allowed and draw(st.integers(0, 3)) == 0:
            state["timers"] = draw(_timers(pools, name))
        states.append(state)
    return states


@st.composite
def _transitions(draw: st.DrawFn, pools: _Pools, names: list[str], movable: list[str]) -> list[Any]:
    transitions = []
    sources = names if pools.junk else movable
    for _ in range(draw(st.integers(0, 6)) if sources else 0):
        source = draw(
            st.one_of(
                pools.pick([*sources, "*"], ["nowhere"]),
                st.lists(pools.pick(sources), min_size=1, max_size=3),
            )
        )
        transition: dict[str, Any] = {
            "trigger": draw(pools.pick(["go", "stop"], TRIGGERS)),
            "source": source,
            "dest": draw(pools.pick(names, ["nowhere"])),
        }
        if draw(st.booleans()):
            transition["guard"] = draw(pools.pick(GOOD_GUARDS, BAD_GUARDS))
        if draw(st.integers(0, 2)) == 0:
            transition["actions"] = draw(
                st.lists(pools.pick(GOOD_ACTIONS, BAD_ACTIONS), max_size=2)
            )
        if draw(st.integers(0, 3)) == 0:
            transition["payload_schema"] = draw(
                pools.pick([PAYLOAD_SCHEMA], [{"type": "objekt"}, {"properties": []}])
            )
        if draw(st.integers(0, 3)) == 0:
            transition["roles"] = draw(pools.pick([["supervisor"], []]))
        transitions.append(transition)
    if pools.catch_all:
        transitions.append({"trigger": "tick", "source": "*", "dest": draw(st.sampled_from(names))})
    return transitions


@st.composite
def _slas(draw: st.DrawFn, pools: _Pools, names: list[str]) -> list[Any]:
    condition = st.one_of(
        st.fixed_dictionaries({"states": st.lists(pools.pick(names, ["nowhere"]), min_size=1)}),
        st.fixed_dictionaries({"triggers": st.lists(pools.pick(["tick"], TRIGGERS), min_size=1)})
        if pools.junk or pools.catch_all
        else st.nothing(),
        pools.pick([{"states": names[:1]}], [{"states": 5}, {"triggers": "go"}]),
    )
    slas = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "name": pools.pick(["first"], ["second", "Bad-Name"]),
                    "target": pools.pick(GOOD_DURATIONS, BAD_DURATIONS),
                    "start": condition,
                    "stop": condition,
                },
                optional={
                    "calendar": pools.pick(["24x7", "cn-workdays"], ["mars"]),
                    "on_breach": pools.pick([{"escalate": True}], [{"trigger": "nope"}]),
                },
            ),
            max_size=2,
        )
    )
    if not pools.junk:
        for i, sla in enumerate(slas):
            sla["name"] = f"sla_{i}"
            if sla.get("calendar") == "cn-workdays":
                sla["target"] = "2d"
    return slas


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    junk = draw(st.booleans())
    pools = _Pools(junk=junk, catch_all=junk or draw(st.booleans()))
    states = draw(_states(pools))
    names = [s["name"] for s in states if isinstance(s["name"], str)] or ["open"]
    movable = [s["name"] for s in states if s["name"] in names and s.get("final") is not True]
    document: dict[str, Any] = {
        "name": "prop",
        "title": {"en": "Property", "zh": "性质"},
        "initial": draw(pools.pick(names, ["nowhere"])),
        "states": states,
        "transitions": draw(_transitions(pools, names, movable)),
        "data_schema": draw(pools.pick([DATA_SCHEMA], [{"type": "array"}, {"type": 5}])),
        "parameters": draw(
            pools.pick(
                [PARAMETERS],
                [{"wait": {"type": "duration", "default": 3}, "limit": {"type": ["x"]}}],
            )
        ),
    }
    if draw(st.booleans()):
        document["slas"] = draw(_slas(pools, names))
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions())
def test_validate_never_raises_and_what_it_accepts_compiles(document: dict[str, Any]) -> None:
    report = validate(document)

    assert isinstance(report, ValidationReport)
    assert all(isinstance(p.path, str) and p.code and p.message for p in report.problems)
    if not report.ok:
        return
    definition = build_definition(document)
    compiled = compile_workflow(definition)
    # No dead ends: the validator's promise, checked against the compiled machine.
    for state in definition.states:
        allowed = compiled.allowed_triggers(state.name)
        assert bool(allowed) is not state.final, (state.name, allowed)


def test_the_property_reaches_its_compile_half() -> None:
    """The property returns early for documents the validator refuses: were the generator to
    make only those, its compile half would never run and could never fail."""
    accepted = find(
        definitions(),
        lambda d: validate(d).ok and len(d["transitions"]) >= 2,
        settings=settings(max_examples=300, database=None),
    )

    definition = build_definition(accepted)
    compiled = compile_workflow(definition)
    assert any(compiled.allowed_triggers(state.name) for state in definition.states)


def test_a_guard_message_needs_a_guard() -> None:
    source = """
name: gm
title: {en: GM, zh: GM}
initial: a
states:
  - {name: a, title: {en: A, zh: A}}
  - {name: b, title: {en: B, zh: B}, final: true}
transitions:
  - trigger: go
    source: a
    dest: b
    guard_message: {en: Nothing to check., zh: 无。}
"""
    report = validate(parse_source(source, "gm.yaml"))
    assert [(p.path, p.code) for p in report.errors] == [
        ("transitions[0].guard_message", "message-without-guard")
    ]


OCCURRED = """
name: occ
title: {{en: Occ, zh: Occ}}
initial: a
states:
  - {{name: a, title: {{en: A, zh: A}}}}
  - {{name: b, title: {{en: B, zh: B}}, final: true}}
transitions:
  - trigger: go
    source: a
    dest: b
    guard: "payload.ok"
    occurred_at: {first}
    payload_schema:
      type: object
      properties:
        ok: {{type: boolean}}
        at: {{type: string, format: date-time}}
        note: {{type: string}}
  - trigger: go
    source: a
    dest: a
    occurred_at: {second}
    payload_schema:
      type: object
      properties:
        ok: {{type: boolean}}
        at: {{type: string, format: date-time}}
        note: {{type: string}}
"""


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("{field: at}", "{field: at}", []),
        ("{field: at, within: 2d}", "{field: at, within: 2d}", []),
        (
            "{field: note}",
            "{field: note}",
            [
                ("transitions[0].occurred_at.field", "occurred-at-field"),
                ("transitions[1].occurred_at.field", "occurred-at-field"),
            ],
        ),
        (
            "{field: when}",
            "{field: when}",
            [
                ("transitions[0].occurred_at.field", "occurred-at-field"),
                ("transitions[1].occurred_at.field", "occurred-at-field"),
            ],
        ),
        (
            "{field: at, within: soon}",
            "{field: at, within: soon}",
            [
                ("transitions[0].occurred_at.within", "bad-duration"),
                ("transitions[1].occurred_at.within", "bad-duration"),
            ],
        ),
        (
            "{field: at}",
            "{field: at, within: 2d}",
            [("transitions[1].occurred_at", "occurred-at-differs")],
        ),
    ],
)
def test_occurred_at_names_a_date_time_of_the_payload_and_one_trigger_agrees_on_it(
    first: str, second: str, expected: list[tuple[str, str]]
) -> None:
    """The instant a report counts at is settled before a transition is chosen, so every
    transition of a trigger declares the same ``occurred_at``, naming a date-time field."""
    report = validate(parse_source(OCCURRED.format(first=first, second=second), "occ.yaml"))
    assert [(p.path, p.code) for p in report.errors] == expected
