"""The ``fields`` glossary of the bundled workflows: every payload field a supervisor types
into a fire form, and every field the workbench shows or filters by, is labelled in both
languages, with each of its enum values (docs/definitions.md, "Field labels")."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.compact import FieldTypes, field_schema
from engine.core.definition import WorkflowDefinition, parse_source
from engine.core.validation import load_definition, validate
from engine.errors import ProblemList

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
BUNDLED = sorted(WORKFLOWS.glob("*.yaml"))


def _load(path: Path) -> WorkflowDefinition:
    return load_definition(parse_source(path.read_text("utf-8")))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_every_payload_field_has_a_chinese_and_an_english_label(path: Path) -> None:
    definition = _load(path)
    unlabelled = []
    for transition in definition.transitions:
        schema = transition.payload_schema or {}
        for name, spec in (schema.get("properties") or {}).items():
            entry = definition.fields.get(name)
            if entry is None or not entry.title.zh or not entry.title.en:
                unlabelled.append(f"{transition.trigger}.{name}")
                continue
            for value in spec.get("enum", ()) if isinstance(spec, dict) else ():
                if value not in entry.values:
                    unlabelled.append(f"{transition.trigger}.{name} = {value}")
    assert not unlabelled, f"{path.name}: add these to its fields section: {unlabelled}"


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_every_supervisor_facing_field_and_its_values_are_labelled(path: Path) -> None:
    definition = _load(path)
    supervision = definition.supervision
    named = [supervision.customer, supervision.team, supervision.priority, *supervision.filters]
    data = definition.data_schema.get("properties") or {}
    enums = [name for name, spec in data.items() if isinstance(spec, dict) and "enum" in spec]
    missing = [name for name in [*named, *enums] if name and name not in definition.fields]
    assert not missing, f"{path.name}: label {missing} in its fields section"
    for name in enums:
        assert set(data[name]["enum"]) <= set(definition.fields[name].values), (path.name, name)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_the_glossary_raises_no_problem(path: Path) -> None:
    problems = validate(parse_source(path.read_text("utf-8"))).problems
    assert [p for p in problems if p.path.startswith("fields")] == []


def test_the_glossary_is_read_into_the_definition() -> None:
    ticket = _load(WORKFLOWS / "repair_ticket.yaml")
    priority = ticket.fields["priority"]
    assert (priority.title.en, priority.title.zh) == ("Priority", "优先级")
    assert priority.values["emergency"].zh == "紧急"
    assert ticket.fields["at"].title.zh == "时间"


# Every bundled workflow declares its fields once (each type, description and label in fields;
# data lists names only), and a new one must too.
DECLARED_ONCE = [path.stem for path in BUNDLED]


def test_the_tests_below_hold_every_bundled_workflow() -> None:
    """An empty glob would let the two tests below pass without looking at anything."""
    assert {"repair_ticket", "loaner", "spare_stock"} <= set(DECLARED_ONCE)
    assert len(DECLARED_ONCE) >= 9, DECLARED_ONCE


@pytest.mark.parametrize("name", DECLARED_ONCE)
def test_every_data_field_has_a_chinese_and_an_english_label(name: str) -> None:
    """The case page shows every data field, and each field of the records one lists, by its
    label (no raw English names on Chinese pages for supervisors)."""
    definition = _load(WORKFLOWS / f"{name}.yaml")
    names = []
    for field, spec in definition.data_schema["properties"].items():
        # the fields of a record it holds or lists, too
        names += [field, *spec.get("properties", {}), *spec.get("items", {}).get("properties", {})]
    unlabelled = [
        field
        for field in names
        if field not in definition.fields
        or not (definition.fields[field].title.zh and definition.fields[field].title.en)
    ]
    assert not unlabelled, f"{name}.yaml: label {unlabelled} in its fields section"


@pytest.mark.parametrize("name", DECLARED_ONCE)
def test_each_field_type_is_written_once(name: str) -> None:
    """Data names its fields without types, and a payload writes a type only where it differs
    from the one fields declares."""
    document = parse_source((WORKFLOWS / f"{name}.yaml").read_text("utf-8"))
    declared = FieldTypes.of(document.get("fields"), ProblemList())
    assert [k for k, v in document["data"].items() if v is not None] == []
    repeated = []
    for transition in document["transitions"]:
        head = next((k for k in transition if k.startswith("on ")), transition.get("trigger"))
        for entry in [transition, *transition.get("branches", ())]:
            for key, written in (entry.get("payload") or {}).items():
                field = key.removesuffix("!")
                if written is None:
                    continue
                schema = field_schema(written, field, ProblemList(), declared)
                if schema == declared.schema(field, in_data=False):
                    repeated.append(f"{field} ({head})")
    assert not repeated, f"{name}.yaml: write these payload fields without a type: {repeated}"
