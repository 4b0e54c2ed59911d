"""Traceability from the requirements catalog to definitions and tests.

Every definition element (the definition, a parameter, state, timer, transition, SLA, counter,
decision table, parent link) cites the requirement IDs it implements in ``requirements:``;
tests and scenarios cite IDs in their text. :func:`build_matrix` maps each catalog ID to both, and
:func:`render_markdown` writes docs/requirements.md. An ID that nothing cites must be
explained under ``elsewhere:`` in workflows/catalog/requirements.yaml. Pure: callers pass file
texts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

REQUIREMENT_ID = re.compile(r"\bR-[A-Z]{2,4}-\d{2}\b")
# "R-REP-03..R-REP-11" or "R-REP-03..11" cites every ID in between.
ID_RANGE = re.compile(r"\b(R-[A-Z]{2,4}-)(\d{2})\s*\.\.\s*(?:R-[A-Z]{2,4}-)?(\d{2})\b")
_TEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)")


@dataclass
class Trace:
    id: str
    title: str
    elements: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    elsewhere: str | None = None

    @property
    def status(self) -> str:
        if self.elements and self.tests:
            return "implemented, tested"
        if self.elements:
            return "implemented, NOT TESTED"
        if self.elsewhere:
            return "not a case life cycle"
        return "NOT COVERED"


def _cites(raw: Any) -> list[str]:
    return [r for r in raw if isinstance(r, str)] if isinstance(raw, list) else []


def definition_elements(document: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """(requirement id, element label) for every citation in one definition document."""
    name = document.get("name", "?")
    for rid in _cites(document.get("requirements")):
        yield rid, f"`{name}`"
    for pname, param in (document.get("parameters") or {}).items():
        for rid in _cites(param.get("requirements")):
            yield rid, f"`{name}` parameter `{pname}` (default {param.get('default')!r})"
    for state in document.get("states") or []:
        for rid in _cites(state.get("requirements")):
            yield rid, f"`{name}` state `{state.get('name')}`"
        for timer in state.get("timers") or []:
            for rid in _cites(timer.get("requirements")):
                label = timer.get("name") or timer.get("trigger")
                yield rid, f"`{name}` state `{state.get('name')}` timer `{label}`"
    for i, t in enumerate(document.get("transitions") or []):
        source = t.get("source")
        sources = ",".join(source) if isinstance(source, list) else source
        for rid in _cites(t.get("requirements")):
            yield (
                rid,
                (
                    f"`{name}` transitions[{i}] `{t.get('trigger')}`: {sources} -> "
                    f"{t.get('dest', '(stays)')}"
                ),
            )
    for sla in document.get("slas") or []:
        for rid in _cites(sla.get("requirements")):
            yield rid, f"`{name}` SLA `{sla.get('name')}`"
    for cname, counter in (document.get("counters") or {}).items():
        for rid in _cites(counter.get("requirements")):
            yield rid, f"`{name}` counter `{cname}`"
    for tname, table in (document.get("decisions") or {}).items():
        for rid in _cites(table.get("requirements")):
            yield rid, f"`{name}` decision table `{tname}`"
    parent = document.get("parent") or {}
    for rid in _cites(parent.get("requirements")):
        yield rid, f"`{name}` parent link to `{parent.get('definition')}`"


def citations_in_tests(path: str, text: str) -> Iterable[tuple[str, str]]:
    """(requirement id, test label) for IDs cited in a test module or a scenario file.

    In Python files an ID counts for the test function it appears in (or the whole module when
    it appears before any test); in scenario files, for the scenario."""
    current = path
    for line in text.splitlines():
        match = _TEST_DEF.match(line)
        if match:
            current = f"{path}::{match.group(1)}"
        for rid in cited_ids(line):
            yield rid, current


def cited_ids(text: str) -> list[str]:
    """Every requirement ID a text cites, ranges expanded, in order of appearance."""
    ids: list[str] = []
    for match in ID_RANGE.finditer(text):
        prefix, first, last = match.group(1), int(match.group(2)), int(match.group(3))
        ids += [f"{prefix}{n:02d}" for n in range(first, last + 1)]
    ids += REQUIREMENT_ID.findall(ID_RANGE.sub(" ", text))
    return ids


def build_matrix(
    catalog: Mapping[str, str],
    elsewhere: Mapping[str, str],
    definitions: Iterable[Mapping[str, Any]],
    tests: Iterable[tuple[str, str]],
) -> list[Trace]:
    traces = {
        rid: Trace(rid, title, elsewhere=elsewhere.get(rid)) for rid, title in catalog.items()
    }
    for document in definitions:
        for rid, label in definition_elements(document):
            if rid in traces and label not in traces[rid].elements:
                traces[rid].elements.append(label)
    for path, text in tests:
        for rid, label in citations_in_tests(path, text):
            if rid in traces and label not in traces[rid].tests:
                traces[rid].tests.append(label)
    return [traces[rid] for rid in catalog]


def render_markdown(traces: list[Trace]) -> str:
    lines = [
        "# Requirements traceability",
        "",
        "Generated by `svcflow requirements` from the `requirements:` citations in",
        "`workflows/*.yaml` and the requirement IDs cited in `tests/` and the scenarios; the",
        "catalog and the explanations for IDs met outside a case's life cycle are in",
        "`workflows/catalog/requirements.yaml`. Do not edit by hand: the test suite regenerates "
        "it and",
        "fails when it is out of date.",
        "",
        "| ID | requirement | status | definition elements | tests |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in traces:
        elements = "<br>".join(t.elements) or (t.elsewhere or "")
        tests = "<br>".join(f"`{x}`" for x in t.tests)
        lines.append(f"| {t.id} | {t.title} | {t.status} | {elements} | {tests} |")
    missing = [t for t in traces if t.status == "NOT COVERED"]
    lines += ["", "## Not covered", ""]
    lines += [f"- {t.id}: {t.title}" for t in missing] or ["None."]
    return "\n".join(lines) + "\n"
