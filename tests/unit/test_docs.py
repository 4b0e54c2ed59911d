"""The documentation's examples are real: they validate and they run."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from croniter import croniter

from engine.core.definition import parse_source
from engine.core.machine import ADMIN_ROLE, Actor, compile_workflow
from engine.core.validation import load_definition, validate

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
