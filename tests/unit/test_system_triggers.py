"""Who may fire a trigger the engine fires itself (docs/definitions.md, "Who may fire a trigger").

A timer's trigger and an SLA breach's trigger are system-only unless their transition names
roles; a related case's news is marked ``roles: [system]`` by its definition. A system-only
trigger is refused to every token, an admin's included, and left out of what a caller is
offered; the engine (``Actor.system``) fires it as before.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.core.definition import KNOWN_ROLES, SYSTEM_ROLE
from engine.core.machine import ADMIN_ROLE, Actor, CompiledWorkflow, compile_workflow
from engine.core.validation import load_definition, validate
from engine.errors import TriggerNotPermitted
from engine.services.tokens import Role

T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
INTEGRATOR = Actor("token:hotline", frozenset({"integrator"}))
SUPERVISOR = Actor("token:sue", frozenset({"supervisor"}))
ADMIN = Actor("token:root", frozenset({ADMIN_ROLE}))
ENGINE = Actor.system("timer")

DOCUMENT: dict[str, Any] = {
    "name": "unit_deadlines",
    "title": {"en": "Deadlines", "zh": "期限"},
    "initial": "waiting",
    "data_schema": {"type": "object", "properties": {"late": {"type": "boolean"}}},
    "states": [
        {
            "name": "waiting",
            "title": {"en": "Waiting", "zh": "等待"},
            "timers": [
                {"after": "1h", "trigger": "expire"},
                {"after": "2h", "trigger": "remind"},
            ],
        },
        {"name": "answered", "title": {"en": "Answered", "zh": "已答复"}},
        {"name": "expired", "title": {"en": "Expired", "zh": "已过期"}, "final": True},
        {"name": "done", "title": {"en": "Done", "zh": "完成"}, "final": True},
    ],
    "transitions": [
        {"trigger": "answer", "source": "waiting", "dest": "answered"},
        {"trigger": "expire", "source": "waiting", "dest": "expired"},
        # a timer's trigger a definition opens to supervisors on purpose
        {"trigger": "remind", "source": "waiting", "dest": "waiting", "roles": ["supervisor"]},
        {
            "trigger": "record_breach",
            "source": ["waiting", "answered"],
            "dest": "answered",
            "actions": [{"set": {"late": "true"}}],
        },
        {"trigger": "child_done", "source": "answered", "dest": "done", "roles": [SYSTEM_ROLE]},
    ],
    "slas": [
        {
            "name": "answer",
            "target": "30m",
            "start": {"states": ["waiting"]},
            "stop": {"states": ["answered"]},
            "on_breach": {"trigger": "record_breach"},
        }
    ],
}


def _compiled() -> CompiledWorkflow:
    return compile_workflow(load_definition(copy.deepcopy(DOCUMENT), version=1))


def _fire(trigger: str, actor: Actor, state: str = "waiting") -> str:
    result = _compiled().step(
        state=state, data={}, trigger=trigger, payload={}, params={}, now=T0, actor=actor
    )
    return result.to_state


def test_the_engine_triggers_are_the_timers_and_the_sla_breaches() -> None:
    definition = load_definition(copy.deepcopy(DOCUMENT), version=1)

    assert definition.engine_triggers == {"expire", "remind", "record_breach"}
    roles = {t.trigger: definition.roles_of(t) for t in definition.transitions}
    assert roles == {
        "answer": (),
        "expire": (SYSTEM_ROLE,),
        "remind": ("supervisor",),  # named roles win
        "record_breach": (SYSTEM_ROLE,),
        "child_done": (SYSTEM_ROLE,),
    }


@pytest.mark.parametrize("actor", [INTEGRATOR, SUPERVISOR, ADMIN], ids=lambda a: a.name)
@pytest.mark.parametrize(
    ("trigger", "state"),
    [("expire", "waiting"), ("record_breach", "waiting"), ("child_done", "answered")],
)
def test_a_system_trigger_is_refused_to_every_token(actor: Actor, trigger: str, state: str) -> None:
    with pytest.raises(TriggerNotPermitted) as caught:
        _fire(trigger, actor, state)

    error = caught.value
    assert "svcflow fires it itself" in str(error)
    assert "operator action" in (error.hint or "")
    assert error.fields["trigger"] == trigger


def test_the_engine_fires_them_as_before() -> None:
    assert _fire("expire", ENGINE) == "expired"
    assert _fire("record_breach", ENGINE) == "answered"
    assert _fire("child_done", ENGINE, "answered") == "done"
    # the actor a related case fires its news as (engine/services/links.py)
    assert _fire("child_done", Actor("case:7", frozenset({SYSTEM_ROLE, ADMIN_ROLE})), "answered")


def test_a_timer_trigger_opened_to_a_role_is_fired_by_that_role() -> None:
    assert _fire("remind", SUPERVISOR) == "waiting"
    assert _fire("remind", ADMIN) == "waiting"  # admin may fire what a person may
    assert _fire("remind", ENGINE) == "waiting"  # the timer still fires it
    with pytest.raises(TriggerNotPermitted, match="needs one of the roles supervisor"):
        _fire("remind", INTEGRATOR)


def test_callers_are_offered_only_what_they_may_fire() -> None:
    compiled = _compiled()

    assert compiled.allowed_triggers("waiting") == ["answer", "expire", "remind", "record_breach"]
    assert compiled.allowed_triggers("waiting", INTEGRATOR) == ["answer"]
    assert compiled.allowed_triggers("waiting", SUPERVISOR) == ["answer", "remind"]
    assert compiled.allowed_triggers("waiting", ADMIN) == ["answer", "remind"]
    assert compiled.allowed_triggers("answered", ADMIN) == []
    assert compiled.allowed_triggers("answered", ENGINE) == ["record_breach", "child_done"]


def test_a_misspelt_role_is_an_error_with_a_suggestion() -> None:
    document = copy.deepcopy(DOCUMENT)
    document["transitions"][0]["roles"] = ["supervsor"]

    (problem,) = [p for p in validate(document).errors if p.code == "unknown-role"]

    assert problem.path == "transitions[0].roles[0]"
    assert "'supervsor'" in problem.message and "'supervisor'" in (problem.hint or "")


def test_every_token_role_is_a_role_a_definition_may_name() -> None:
    assert {role.value for role in Role} | {SYSTEM_ROLE} == KNOWN_ROLES
