"""The compact forms of a definition (engine/core/compact.py, docs/definitions.md "Compact forms").

The proof that they change nothing a case can observe: repair_ticket.yaml, rewritten in them,
compiles to the same definition as its full-form text before the rewrite (kept as
``fixtures/repair_ticket_before_compact.yaml``, from commit 307618c). Its scenarios run
unchanged in tests/integration/test_workflow_scenarios.py and tests/scenarios/.
"""

from __future__ import annotations

import dataclasses
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.compact import TYPE_WORDS, expand, full_form
from engine.core.definition import TransitionSpec, WorkflowDefinition, parse_source
from engine.core.diff import diff_definitions, render_text
from engine.core.machine import compile_workflow
from engine.core.validation import load_definition, validate, validate_text

ROOT = Path(__file__).resolve().parents[2]
BEFORE = Path(__file__).resolve().parent / "fixtures" / "repair_ticket_before_compact.yaml"
REPAIR_TICKET = ROOT / "workflows" / "repair_ticket.yaml"


def _definition(path: Path) -> WorkflowDefinition:
    return load_definition(parse_source(path.read_text("utf-8"), path.name))


def _by_trigger_and_source(definition: WorkflowDefinition) -> dict[tuple[str, str], list[Any]]:
    """Each (trigger, source)'s transitions in the order they are tried, without the numbers
    and paths that say where they are written."""
    out: dict[tuple[str, str], list[Any]] = {}
    for t in definition.transitions:
        unplaced = dataclasses.replace(
            t,
            index=0,
            actions=tuple(dataclasses.replace(a, path="") for a in t.actions),
        )
        for source in t.sources:
            out.setdefault((t.trigger, source), []).append(unplaced)
    return out


def test_repair_ticket_compiles_to_the_same_definition_as_before_the_compact_forms() -> None:
    before, after = _definition(BEFORE), _definition(REPAIR_TICKET)
    assert _by_trigger_and_source(after) == _by_trigger_and_source(before)
    # Everything else: states, timers, SLAs, parameters, data schema, decisions, counters, ...
    assert dataclasses.replace(after, transitions=()) == dataclasses.replace(before, transitions=())
    # ... and what only the document keeps (descriptions, parameter titles and alternatives).
    full_before, full_after = dict(before.document), dict(after.document)
    transitions_before = full_before.pop("transitions")
    transitions_after = full_after.pop("transitions")
    assert full_after == full_before
    key = lambda t: (t["trigger"], str(t["source"]), str(t.get("dest")), str(t.get("guard")))  # noqa: E731
    assert sorted(transitions_after, key=key) == sorted(transitions_before, key=key)


def test_repair_ticket_machines_try_the_same_transitions_in_the_same_order() -> None:
    before = compile_workflow(_definition(BEFORE))
    after = compile_workflow(_definition(REPAIR_TICKET))
    for state in _definition(BEFORE).state_names:
        assert after.allowed_triggers(state) == before.allowed_triggers(state)


@pytest.mark.parametrize("path", sorted((ROOT / "workflows").glob("*.yaml")), ids=lambda p: p.stem)
def test_a_full_form_document_expands_to_itself(path: Path) -> None:
    document = parse_source(path.read_text("utf-8"))
    expanded = full_form(document)
    assert full_form(expanded) == expanded
    assert full_form(parse_source(BEFORE.read_text("utf-8"))) == parse_source(
        BEFORE.read_text("utf-8")
    )


# --- the field language ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "schema"),
    [
        *((word, schema) for word, schema in TYPE_WORDS.items()),
        ("number >= 0", {"type": "number", "minimum": 0}),
        ("integer 1..3", {"type": "integer", "minimum": 1, "maximum": 3}),
        ("number >= 0.5", {"type": "number", "minimum": 0.5}),
        (["phone", "video"], {"enum": ["phone", "video"]}),
        (
            [{"part!": "text", "part_no": "string"}],
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["part"],
                    "properties": {
                        "part": {"type": "string", "minLength": 1},
                        "part_no": {"type": "string"},
                    },
                },
            },
        ),
        ({"const": True}, {"const": True}),
    ],
)
def test_each_field_type_compiles_to_its_json_schema(written: Any, schema: Any) -> None:
    expansion = expand(
        {"transitions": [{"trigger": "t", "source": "a", "payload": {"f": written}}]}
    )
    assert expansion.document["transitions"][0]["payload_schema"] == {
        "type": "object",
        "properties": {"f": schema},
    }
    assert not expansion.problems.items


_NAMES = st.text(string.ascii_lowercase, min_size=1, max_size=8)


@given(st.dictionaries(_NAMES, st.tuples(st.sampled_from(sorted(TYPE_WORDS)), st.booleans())))
def test_required_fields_are_exactly_those_marked_with_an_exclamation_mark(
    fields: dict[str, tuple[str, bool]],
) -> None:
    written = {f"{name}!" if required else name: word for name, (word, required) in fields.items()}
    schema = full_form({"data": written})["data_schema"]
    assert list(schema["properties"]) == list(fields)
    assert schema.get("required", []) == [n for n, (_, required) in fields.items() if required]
    assert all(schema["properties"][n] == TYPE_WORDS[w] for n, (w, _) in fields.items())


# --- problems, where the author wrote them ---------------------------------------------------

_MINI = """\
name: mini
title: {en: Mini, zh: 迷你}
initial: open
parameters:
  limit:
    integer: 3
data: {note: text}
states:
  - state open: {en: Open, zh: 打开}
  - state done: {en: Done, zh: 完成}
    final: true
transitions:
"""


def _problems(transitions: str) -> list[tuple[str, str, int | None]]:
    _, report = validate_text(_MINI + transitions)
    return [(p.path, p.code, p.line) for p in report.problems]


def test_a_mistyped_field_type_is_an_error_at_its_line_with_a_suggestion() -> None:
    text = _MINI + "  - on finish: open -> done\n    payload: {at!: datetme}\n"
    _, report = validate_text(text)
    [problem] = report.problems
    assert (problem.path, problem.code, problem.line) == (
        "transitions[0].payload.at!",
        "compact-type-unknown",
        14,
    )
    assert "Did you mean 'datetime'?" in problem.hint
    assert "docs/definitions.md" in problem.hint


def test_a_problem_found_in_the_full_form_is_reported_where_it_is_written() -> None:
    found = _problems(
        "  - on finish: open -> nowhere\n"
        "    payload: {serial: {type: strng}}\n"
        "    set: {notes: payload.serial}\n"
    )
    assert ("transitions[0].on finish", "unknown-state", 13) in found
    assert ("transitions[0].payload.serial.type", "bad-json-schema", 14) in found
    assert ("transitions[0].set.notes", "undeclared-data-field", 15) in found


def test_branches_share_the_entry_and_are_tried_in_order() -> None:
    text = _MINI + (
        "  - on finish: open\n"
        "    payload: {score!: integer}\n"
        "    set: {note: \"'done'\"}\n"
        "    branches:\n"
        "      - dest: done\n"
        "        guard: payload.score >= params.limit\n"
        "      - guard: payload.score < params.limit\n"
        "        set: {note: \"'again'\"}\n"
    )
    document, report = validate_text(text)
    assert [(p.path, p.code, p.line) for p in report.problems] == [
        ("transitions[0].branches[1].set.note", "set-twice", 20)
    ]
    text = text.replace("set: {note: \"'again'\"}", "set: {}")
    document, report = validate_text(text.replace("        set: {}\n", ""))
    assert report.ok, report.problems
    definition = load_definition(document)
    first, second = definition.transitions
    assert (first.trigger, first.sources, first.dest) == ("finish", ("open",), "done")
    assert (second.trigger, second.sources, second.dest) == ("finish", ("open",), None)
    assert first.payload_schema == second.payload_schema
    assert [a.path for a in second.actions] == ["transitions[0].set.note"]


def test_a_bad_branch_guard_is_reported_at_the_branch() -> None:
    found = _problems(
        "  - on finish: open\n    branches:\n      - dest: done\n        guard: 'data.note >'\n"
        "      - title: {en: Stay, zh: 留}\n"
    )
    assert [(path, line) for path, code, line in found if "guard" in path] == [
        ("transitions[0].branches[0].guard", 16)
    ]


@pytest.mark.parametrize(
    ("head", "code"),
    [
        ("  - on Finish: open -> done\n", "unknown-key"),
        ("  - on finish: open ->\n", "transition-head-unreadable"),
        ("  - on finish: open -> done\n    dest: done\n", "transition-head-unreadable"),
        ("  - on finish: open -> done\n    on stop: open\n", "transition-head-unreadable"),
        ("  - dest: done\n", "missing-key"),
    ],
)
def test_a_transition_head_that_cannot_be_read_is_an_error(head: str, code: str) -> None:
    assert code in {c for _, c, _ in _problems(head)}


def test_parameter_type_written_twice_and_payload_written_twice_are_errors() -> None:
    document = parse_source(_MINI + "  - on finish: open -> done\n")
    document["parameters"]["limit"]["type"] = "integer"
    document["transitions"][0]["payload"] = {"a": "text"}
    document["transitions"][0]["payload_schema"] = {"type": "object"}
    found = {(p.path, p.code) for p in validate(document).problems}
    assert found == {
        ("parameters.limit", "parameter-type-twice"),
        ("transitions[0].payload", "compact-and-full"),
    }


def test_a_runtime_action_path_names_the_compact_set() -> None:
    document, report = validate_text(
        _MINI + "  - on finish: open -> done\n    set: {note: \"'x'\"}\n    actions: [count: c]\n"
    )
    assert [p.code for p in report.problems] == ["undeclared-counter"]
    document["transitions"][0]["actions"] = []
    transition: TransitionSpec = load_definition(document).transitions[0]
    assert [a.path for a in transition.actions] == ["transitions[0].set.note"]


def test_definitions_diff_sees_no_change_between_the_two_repair_tickets() -> None:
    before_text, after_text = BEFORE.read_text("utf-8"), REPAIR_TICKET.read_text("utf-8")
    before = load_definition(parse_source(before_text), version=1)
    after = load_definition(parse_source(after_text), version=2)
    rendered = render_text(diff_definitions(before, after, before_text, after_text))
    assert rendered.splitlines() == ["repair_ticket v1 -> v2", "  no structural change"]


def test_a_compact_document_has_the_fingerprint_of_its_full_form() -> None:
    compact = parse_source(_MINI + "  - on finish: open -> done\n    payload: {at!: datetime}\n")
    written_out = full_form(compact)
    assert "payload_schema" in written_out["transitions"][0]
    assert load_definition(compact).fingerprint == load_definition(written_out).fingerprint
    written_out["transitions"][0]["payload_schema"]["required"] = []
    assert load_definition(compact).fingerprint != load_definition(written_out).fingerprint


def test_the_compact_forms_example_in_the_definitions_doc_reads_without_a_problem() -> None:
    text = (ROOT / "docs" / "definitions.md").read_text("utf-8")
    section = text[text.index("### Compact forms") :]
    example = section[section.index("```yaml\n") + 8 : section.index("```\n", 10)]
    expansion = expand(parse_source(example))
    assert expansion.problems.items == []
    dispatch, contact_first, contact_second = expansion.document["transitions"]
    assert (dispatch["trigger"], dispatch["dest"]) == ("dispatch", "dispatched")
    assert contact_second["actions"] == [
        {"set": {"contacted_at": "now", "replacement_due": "true"}}
    ]
    assert contact_first["payload_schema"] == contact_second["payload_schema"]


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("integer 3..1", "compact-range-empty"),
        ("integr", "compact-type-unknown"),
        (5, "compact-type-unknown"),
        ([["a"]], "compact-type-unknown"),
    ],
)
def test_a_field_type_that_means_nothing_is_an_error(written: Any, code: str) -> None:
    expansion = expand({"data": {"f": written}})
    assert [(p.path, p.code) for p in expansion.problems.items] == [("data.f", code)]


_WITH_SLAS = (
    _MINI
    + """\
  - on finish: open -> done
  - on late: open
sla_defaults:
  on_breach: {trigger: late}
  warn_at: [0.5]
slas:
  - sla answer: {en: Answer, zh: 答复}
    target: 1h
    start: {states: [open]}
    stop: {states: [done]}
  - sla quiet: {en: Quiet, zh: 静默}
    target: 2h
    start: {states: [open]}
    stop: {states: [done]}
    on_breach: null
    warn_at: [0.9]
"""
)


def test_sla_heads_and_defaults_are_written_out_with_each_sla_own_value_winning() -> None:
    """``sla <name>: <title>`` names and titles a clock; ``sla_defaults`` gives every clock
    what it does not say itself, and ``null`` opts a clock out of a default."""
    _, report = validate_text(_WITH_SLAS)
    assert report.problems == []
    answer, quiet = load_definition(parse_source(_WITH_SLAS)).slas
    assert (answer.name, answer.title.zh, quiet.name) == ("answer", "答复", "quiet")
    assert (answer.breach_trigger, answer.warn_at) == ("late", (0.5,))
    assert (quiet.breach_trigger, quiet.warn_at) == (None, (0.9,))
    assert "sla_defaults" not in full_form(parse_source(_WITH_SLAS))


def test_an_sla_default_that_is_wrong_is_reported_at_sla_defaults() -> None:
    _, report = validate_text(_WITH_SLAS.replace("trigger: late}", "trigger: lately}"))
    found = [(p.path, p.code, p.line) for p in report.problems]
    assert found == [("sla_defaults.on_breach.trigger", "unknown-trigger", 16)]


def test_an_sla_head_that_cannot_be_read_is_an_error_with_an_example() -> None:
    _, report = validate_text(_WITH_SLAS.replace("sla answer:", "sla Answer:"))
    [problem] = [p for p in report.problems if p.code == "sla-head-unreadable"]
    assert problem.path == "slas[0].sla Answer"
    assert "sla arrival: {en: Arrival on site" in problem.hint
