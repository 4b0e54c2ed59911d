"""A field declared once: its type, description and labels in its ``fields`` entry, and data
and payloads naming it without a type (engine/core/compact.py, docs/definitions.md "Field
labels"). The fields the engine writes come typed and labelled from the engine."""

from __future__ import annotations

import dataclasses
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.compact import TYPE_WORDS, expand, full_form
from engine.core.definition import WorkflowDefinition, parse_source
from engine.core.engine_fields import ENGINE_FIELDS
from engine.core.validation import load_definition, validate_text

_HEAD = """\
name: mini
title: {en: Mini, zh: 迷你}
initial: open
states:
  - state open: {en: Open, zh: 打开}
  - state done: {en: Done, zh: 完成}
    final: true
"""

_DECLARED = (
    _HEAD
    + """\
data: {cause!, note, parts}
transitions:
  - on finish: open -> done
    payload: {cause!, note: string, parts}
  - on record: open
    payload: {part!, disposal}
fields:
  cause:
    en: Cause
    zh: 原因
    description: What caused the fault.
    values:
      wear: {en: Wear, zh: 磨损}
      misuse: {en: Misuse, zh: 使用不当}
  note: {en: Note, zh: 备注, type: text}
  parts: {en: Parts, zh: 配件, type: [{part!, disposal}]}
  part: {en: Part, zh: 配件名称, type: text}
  disposal: {en: Disposal, zh: 处置, type: [returned, destroyed]}
"""
)


def _problems(text: str) -> list[tuple[str, str, str, int | None, int | None]]:
    _, report = validate_text(text)
    return [(p.severity.value, p.path, p.code, p.line, p.column) for p in report.problems]


def test_a_field_named_without_a_type_takes_the_type_its_fields_entry_declares() -> None:
    assert _problems(_DECLARED) == []
    document = full_form(parse_source(_DECLARED.replace("[{part!, disposal}]", "[{part!}]")))
    data = document["data_schema"]
    assert data["required"] == ["cause"]
    # values without type: the keys are the enum, in the order written; the description
    # is the case data's.
    assert data["properties"]["cause"] == {
        "enum": ["wear", "misuse"],
        "description": "What caused the fault.",
    }
    assert data["properties"]["note"] == {"type": "string", "minLength": 1}
    finish, record = document["transitions"]
    # The payload takes the type without the data field's description; a type written
    # where the field is named wins.
    assert finish["payload_schema"]["properties"] == {
        "cause": {"enum": ["wear", "misuse"]},
        "note": {"type": "string"},
        "parts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["part"],
                "properties": {"part": {"type": "string", "minLength": 1}},
            },
        },
    }
    assert record["payload_schema"]["properties"]["disposal"] == {"enum": ["returned", "destroyed"]}


def test_the_full_form_keeps_the_glossary_as_labels_and_expands_to_itself() -> None:
    document = full_form(parse_source(_DECLARED))
    assert document["fields"]["note"] == {"en": "Note", "zh": "备注"}
    assert "description" not in document["fields"]["cause"]
    assert full_form(document) == document
    compact = load_definition(parse_source(_DECLARED))
    assert compact.fingerprint == load_definition(document).fingerprint
    assert compact.fields["cause"].values["misuse"].zh == "使用不当"


def test_records_of_a_declared_type_take_their_fields_types_from_the_glossary() -> None:
    document = full_form(parse_source(_DECLARED))
    parts = document["data_schema"]["properties"]["parts"]["items"]
    assert parts == {
        "type": "object",
        "required": ["part"],
        "properties": {
            "part": {"type": "string", "minLength": 1},
            "disposal": {"enum": ["returned", "destroyed"]},
        },
    }


def test_a_field_without_a_type_anywhere_is_an_error_at_its_line_with_a_suggestion() -> None:
    text = _DECLARED.replace("payload: {part!, disposal}", "payload: {part!, dispoal}")
    assert _problems(text) == [
        ("error", "transitions[1].payload.dispoal", "compact-field-untyped", 13, 22)
    ]
    _, report = validate_text(text)
    hint = report.problems[0].hint
    assert "Did you mean 'disposal'?" in hint
    assert "fields" in hint and "docs/definitions.md" in hint


def test_a_missing_type_in_data_is_reported_at_data() -> None:
    text = _DECLARED.replace("data: {cause!, note, parts}", "data: {cause!, note, parts, fault!}")
    assert _problems(text) == [("error", "data.fault!", "compact-field-untyped", 8, 29)]


def test_a_missing_type_under_branches_is_reported_once_where_it_is_written() -> None:
    text = (
        _HEAD
        + """\
transitions:
  - on finish: open
    payload: {score!}
    branches:
      - dest: done
        guard: payload.score >= 1
      - guard: payload.score < 1
"""
    )
    assert _problems(text) == [
        ("error", "transitions[0].payload.score!", "compact-field-untyped", 10, 15)
    ]
    # The same holds for a type that means nothing (reported per branch, at the expanded
    # transition, before).
    wrong = text.replace("{score!}", "{score!: intger}")
    assert _problems(wrong) == [
        ("error", "transitions[0].payload.score!", "compact-type-unknown", 10, 15)
    ]


def test_a_wrong_declared_type_is_reported_once_at_its_fields_entry() -> None:
    text = _DECLARED.replace("备注, type: text}", "备注, type: txt}")
    assert _problems(text) == [("error", "fields.note.type", "compact-type-unknown", 22, 28)]


def test_a_type_that_holds_itself_is_an_error() -> None:
    text = _DECLARED.replace("[{part!, disposal}]", "[{part!, parts}]")
    assert _problems(text) == [("error", "fields.parts.type", "compact-field-cycle", 23, 30)]


def test_a_description_no_data_field_takes_is_a_warning() -> None:
    text = _DECLARED.replace(
        "备注, type: text}", "备注, type: text, description: Free text.}"
    ).replace("data: {cause!, note, parts}", "data: {cause!, note: string, parts}")
    assert _problems(text) == [
        ("warning", "fields.note.description", "field-description-unused", 22, 40)
    ]


# --- the engine's fields ------------------------------------------------------------------------

_NEWS = (
    _HEAD
    + """\
transitions:
  - on finish: open -> done
  - on child_news: open
    roles: [system]
    payload: {child_id, child_definition, child_state}
  - on late: open
    roles: [system]
    payload: {sla!}
"""
)


def test_the_engines_fields_compile_to_the_schemas_definitions_declared_by_hand() -> None:
    """What the bundled definitions wrote before (repair_ticket, device, complaint)."""
    assert _problems(_NEWS) == []
    _, news, late = full_form(parse_source(_NEWS))["transitions"]
    assert news["payload_schema"] == {
        "type": "object",
        "properties": {
            "child_id": {"type": "integer"},
            "child_definition": {"type": "string"},
            "child_state": {"type": "string"},
        },
    }
    assert late["payload_schema"] == {
        "type": "object",
        "required": ["sla"],
        "properties": {"sla": {"type": "string", "minLength": 1}},
    }


def test_the_engines_fields_come_labelled_and_a_definition_may_relabel_them() -> None:
    definition = load_definition(parse_source(_NEWS))
    assert set(definition.fields) == set(ENGINE_FIELDS)
    assert definition.fields["child_id"].title.zh == "子工单"
    assert definition.fields["sla"].title.en == "Time limit"

    relabelled = _NEWS + "fields:\n  sla: {en: Clock, zh: 时钟}\n"
    assert _problems(relabelled) == []
    definition = load_definition(parse_source(relabelled))
    assert (definition.fields["sla"].title.en, definition.fields["sla"].title.zh) == (
        "Clock",
        "时钟",
    )
    assert definition.fields["child_state"].title.zh == "子工单状态"


def test_the_engines_fields_cannot_be_retyped() -> None:
    retyped = _NEWS + "fields:\n  sla: {en: Clock, zh: 时钟, type: integer}\n"
    _, report = validate_text(retyped)
    [problem] = report.problems
    assert (problem.path, problem.code, problem.line) == (
        "fields.sla.type",
        "engine-field-typed",
        17,
    )
    assert "text" in problem.message and "Remove type" in problem.hint
    # ... and the payload keeps the engine's type meanwhile.
    late = expand(parse_source(retyped)).document["transitions"][2]
    assert late["payload_schema"]["properties"]["sla"] == {"type": "string", "minLength": 1}


def test_an_unlabelled_definition_without_engine_fields_gets_no_glossary() -> None:
    assert "fields" not in full_form(parse_source(_HEAD + "transitions:\n  - on a: open\n"))


# --- declared once means the same as written inline -------------------------------------------

_NAMES = st.text(string.ascii_lowercase, min_size=1, max_size=8).filter(
    lambda n: n not in ENGINE_FIELDS
)
_TYPES = st.one_of(
    st.sampled_from(sorted(TYPE_WORDS)),
    st.sampled_from(["number >= 0", "integer 1..3"]),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=3, unique=True),
)


@given(st.dictionaries(_NAMES, st.tuples(_TYPES, st.booleans()), min_size=1))
def test_declaring_types_in_fields_compiles_as_writing_them_inline(
    fields: dict[str, tuple[Any, bool]],
) -> None:
    def key(name: str, required: bool) -> str:
        return f"{name}!" if required else name

    inline = {key(n, r): t for n, (t, r) in fields.items()}
    bare = {key(n, r): None for n, (t, r) in fields.items()}
    glossary = {n: {"en": n, "zh": n, "type": t} for n, (t, _) in fields.items()}
    transitions = [{"trigger": "t", "source": "a"}]
    written_inline = expand(
        {"data": inline, "transitions": [{**transitions[0], "payload": inline}]}
    )
    declared = expand(
        {
            "data": bare,
            "transitions": [{**transitions[0], "payload": bare}],
            "fields": glossary,
        }
    )
    assert declared.problems.items == written_inline.problems.items == []
    for part in ("data_schema", "transitions"):
        assert declared.document[part] == written_inline.document[part]


def test_the_field_labels_example_in_the_definitions_doc_reads_without_a_problem() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "definitions.md").read_text("utf-8")
    section = text[text.index("### Field labels") :]
    example = section[section.index("```yaml\n") + 8 : section.index("```\n", 10)]
    expansion = expand(parse_source(example))
    assert expansion.problems.items == []
    document = expansion.document
    assert document["data_schema"]["properties"]["cause"]["description"].startswith("What caused")
    diagnose, disposal, news = document["transitions"]
    assert diagnose["payload_schema"]["properties"]["cause"] == {"enum": ["normal_use", "misuse"]}
    assert disposal["payload_schema"]["required"] == ["part", "disposal"]
    assert news["payload_schema"]["properties"]["child_id"] == {"type": "integer"}
    assert document["fields"]["child_state"] == {
        "en": "Loaner case's state",
        "zh": "备用机工单状态",
    }
    assert document["fields"]["child_id"] == {"en": "Child case", "zh": "子工单"}


# --- the bundled workflows rewritten -------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
# Each workflow rewritten to declare its fields once, and its text before the rewrite (the
# repair ticket's proof is tests/unit/test_compact.py, against its full form).
BEFORE_FIELDS_ONCE = {
    "complaint": "complaint_before_fields.yaml",
    "spare_part": "spare_part_before_fields.yaml",
    "device": "device_before_fields.yaml",
    "satisfaction_survey": "satisfaction_survey_before_fields.yaml",
    "loaner": "loaner_before_fields.yaml",
    "preventive_maintenance": "preventive_maintenance_before_fields.yaml",
    "follow_up": "follow_up_before_fields.yaml",
    "spare_stock": "spare_stock_before_fields.yaml",
}
# Labels corrected on the way, by workflow: spare_part's reason is the data field of the
# request as well as write_off's payload field, so it is no longer "Reason written off";
# spare_stock's is retire's payload field as well as withdraw_replenishment's, so it is no
# longer "Reason withdrawn".
RELABELLED = {"spare_part": {"reason"}, "spare_stock": {"reason"}}


def _loaded(path: Path) -> WorkflowDefinition:
    return load_definition(parse_source(path.read_text("utf-8"), path.name))


@pytest.mark.parametrize("name", sorted(BEFORE_FIELDS_ONCE))
def test_a_workflow_declaring_its_fields_once_compiles_as_before(name: str) -> None:
    """The same data schema, payload schemas, transitions, states, SLAs, ...: only labels
    are added, and every label it had reads as before."""
    before = _loaded(ROOT / "tests" / "unit" / "fixtures" / BEFORE_FIELDS_ONCE[name])
    after = _loaded(ROOT / "workflows" / f"{name}.yaml")
    assert dataclasses.replace(after, fields={}) == dataclasses.replace(before, fields={})
    document_before, document_after = dict(before.document), dict(after.document)
    labels_before, labels_after = document_before.pop("fields"), document_after.pop("fields")
    assert document_after == document_before
    kept = [k for k in labels_before if k not in RELABELLED.get(name, set())]
    assert {k: labels_after[k] for k in kept} == {k: labels_before[k] for k in kept}
