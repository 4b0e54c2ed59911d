"""The documentation's examples are real: they validate and they run."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from croniter import croniter

from engine.core.definition import parse_source
from engine.core.machine import ADMIN_ROLE, Actor, compile_workflow
from engine.core.validation import definition_schema, load_definition, validate

DOCS = Path(__file__).resolve().parents[2] / "docs"
NOW = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)


def _yaml_blocks(name: str) -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", (DOCS / name).read_text("utf-8"), re.DOTALL)
    # A changed fence (```yml, indented, CRLF) would leave nothing to check: fail instead.
    assert blocks, f"no ```yaml blocks found in docs/{name}"
    return blocks


def test_complete_example_in_definitions_doc_validates_and_runs() -> None:
    (example,) = [
        b for b in _yaml_blocks("definitions.md") if b.lstrip().startswith("# A customer")
    ]
    report = validate(parse_source(example))
    assert report.problems == []
    compiled = compile_workflow(load_definition(parse_source(example), version=1))
    actor = Actor("doc", frozenset({ADMIN_ROLE}))
    data = {"customer": "Puyang hospital", "category": "quality", "severity": "serious"}
    params = compiled.definition.default_params()
    step = compiled.step(
        state="received",
        data=data,
        trigger="contact",
        payload={"manager": "Wang"},
        params=params,
        now=NOW,
        actor=actor,
    )
    assert step.to_state == "investigating"
    assert step.data["contacted_at"].startswith("2025-09-30T02:00:00")
    explained = compiled.step(
        state=step.to_state,
        data=step.data,
        trigger="conclude",
        payload={"supplier_at_fault": False},
        params=params,
        now=NOW,
        actor=actor,
    )
    assert explained.to_state == "explained"
    assert explained.data["supplier_at_fault"] is False


def test_cron_examples_in_definitions_doc_are_valid() -> None:
    text = (DOCS / "definitions.md").read_text("utf-8")
    schedules = re.findall(r'every: "([^"]+)"', text)

    assert schedules, "the regex found no cron example: it no longer matches the doc"
    for schedule in schedules:
        assert croniter.is_valid(schedule), schedule


def _schema_keys(node: Any, schema: dict[str, Any], seen: set[str]) -> set[str]:
    """Every mapping key the definition schema accepts, following its $defs."""
    if isinstance(node, list):
        return set().union(*(_schema_keys(n, schema, seen) for n in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    keys: set[str] = set()
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref not in seen:
        seen.add(ref)
        keys |= _schema_keys(schema["$defs"][ref.removeprefix("#/$defs/")], schema, seen)
    properties = node.get("properties")
    if isinstance(properties, dict):
        keys |= set(properties)
    for name, child in node.items():
        if name not in ("properties", "$defs", "$ref"):
            keys |= _schema_keys(child, schema, seen)
    for child in (properties or {}).values():
        keys |= _schema_keys(child, schema, seen)
    return keys


def test_every_key_the_schema_accepts_is_documented() -> None:
    schema = json.loads(
        (DOCS.parent / "engine" / "core" / "schemas" / "definition.schema.json").read_text("utf-8")
    )
    doc = (DOCS / "definitions.md").read_text("utf-8")
    keys = _schema_keys(schema, schema, set())

    assert len(keys) > 40, keys  # the walk found the schema's keys, not nothing
    undocumented = sorted(k for k in keys if f"`{k}`" not in doc)
    assert undocumented == [], f"docs/definitions.md does not mention {undocumented}"


def test_every_bundled_workflow_names_the_schema_for_editors() -> None:
    """The modeline's relative path resolves from the file, to the schema the validator uses."""
    workflows = sorted((DOCS.parent / "workflows").glob("*.yaml"))
    assert len(workflows) >= 9
    for path in workflows:
        first = path.read_text("utf-8").splitlines()[0]
        prefix = "# yaml-language-server: $schema="
        assert first.startswith(prefix), path.name
        target = (path.parent / first.removeprefix(prefix)).resolve()
        assert json.loads(target.read_text("utf-8")) == definition_schema(), path.name
