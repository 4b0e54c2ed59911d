"""Transitions that keep a case where it is: no `dest` (stay), and `reenter` (restart the
state's timers). The format says a stay once for many states (issue 12, item 1)."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.core.diagram import to_dot
from engine.core.machine import ADMIN_ROLE, Actor, compile_workflow
from engine.core.validation import load_definition, validate

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ADMIN = Actor("token:root", frozenset({ADMIN_ROLE}))

DOCUMENT: dict[str, Any] = {
    "name": "tst_stay",
    "title": {"en": "Stay", "zh": "停留"},
    "initial": "open",
    "data_schema": {
        "type": "object",
        "properties": {"notes": {"type": "integer"}, "reminded": {"type": "integer"}},
    },
    "states": [
        {"name": "open", "title": {"en": "Open", "zh": "打开"}},
        {"name": "waiting", "title": {"en": "Waiting", "zh": "等待"}},
        {"name": "done", "title": {"en": "Done", "zh": "完成"}, "final": True},
    ],
    "transitions": [
        {"trigger": "wait", "source": "open", "dest": "waiting"},
        {"trigger": "finish", "source": ["open", "waiting"], "dest": "done"},
        {
            "trigger": "note",
            "source": ["open", "waiting"],
            "actions": [{"increment": "notes"}],
        },
        {
            "trigger": "remind",
            "source": "waiting",
            "reenter": True,
            "actions": [{"increment": "reminded"}],
        },
    ],
}


def _doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DOCUMENT)
    doc.update(changes)
    return doc


def _step(trigger: str, state: str):  # type: ignore[no-untyped-def]
    compiled = compile_workflow(load_definition(copy.deepcopy(DOCUMENT), version=1))
    return compiled.step(
        state=state, data={}, trigger=trigger, payload={}, params={}, now=T0, actor=ADMIN
    )


@pytest.mark.parametrize("state", ["open", "waiting"])
def test_a_transition_without_dest_keeps_the_case_in_each_of_its_sources(state: str) -> None:
    result = _step("note", state)

    assert (result.from_state, result.to_state) == (state, state)
    assert result.data == {"notes": 1}
    assert not result.reentered and not result.entered


def test_reenter_stays_and_says_the_state_was_entered_again() -> None:
    result = _step("remind", "waiting")

    assert result.to_state == "waiting"
    assert result.reentered and result.entered


def test_a_move_enters_and_is_no_reentry() -> None:
    result = _step("wait", "open")

    assert result.entered and not result.reentered


def test_a_stay_is_offered_in_every_source_state_and_in_no_other() -> None:
    compiled = compile_workflow(load_definition(copy.deepcopy(DOCUMENT), version=1))

    assert "note" in compiled.allowed_triggers("open", ADMIN)
    assert "remind" not in compiled.allowed_triggers("open", ADMIN)
    assert {"note", "remind"} <= set(compiled.allowed_triggers("waiting", ADMIN))


def _codes(document: dict[str, Any]) -> dict[str, str]:
    return {p.code: p.path for p in validate(document).errors}


def test_reenter_on_a_transition_that_moves_is_an_error_at_its_path() -> None:
    doc = _doc()
    doc["transitions"][0]["reenter"] = True

    assert _codes(doc) == {"reenter-without-stay": "transitions[0].reenter"}
    (problem,) = validate(doc).errors
    assert "from 'open' to 'waiting'" in problem.message
    assert "remove dest" in (problem.hint or "")


def test_reenter_on_a_self_loop_written_with_dest_is_allowed() -> None:
    doc = _doc()
    doc["transitions"][3]["dest"] = "waiting"

    assert validate(doc).ok


def test_a_state_whose_transitions_all_stay_is_a_dead_end() -> None:
    doc = _doc()
    doc["transitions"] = [t for t in doc["transitions"] if t["trigger"] != "finish"]
    doc["transitions"].append({"trigger": "finish", "source": "open", "dest": "done"})

    assert _codes(doc) == {"dead-end-state": "states[1]"}


def test_a_stay_from_a_final_state_is_refused() -> None:
    doc = _doc()
    doc["transitions"][2]["source"] = ["open", "done"]

    (problem,) = validate(doc).errors
    assert (problem.code, problem.path) == ("final-state-has-exit", "transitions[2].source[1]")
    assert "takes no more triggers" in problem.message


def test_the_diagram_draws_a_stay_as_a_line_in_each_source() -> None:
    dot = to_dot(load_definition(copy.deepcopy(DOCUMENT), version=1))
    nodes = {
        line.split('"')[1]: line for line in dot.splitlines() if re.match(r'\s*"\w+" \[', line)
    }

    assert '"open" -> "open"' not in dot and '"waiting" -> "waiting"' not in dot
    assert ">↻ note</font>" in nodes["open"] and "note: open -> open" in nodes["open"]
    assert ">↻ note</font>" in nodes["waiting"]
    assert ">↻ remind (re-enter)</font>" in nodes["waiting"]
    assert "↻" not in nodes["done"]
