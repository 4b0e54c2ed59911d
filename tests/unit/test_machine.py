"""The compiled state machine and the pure transition step; replay of a hand-built history.

One small definition exercises every rule: ``triage`` has two guarded transitions whose order
matters, ``assign`` is role-limited and takes a payload, ``visit`` counts visits (at most two,
by data_schema), ``cancel`` leaves from every non-final state.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine.core.machine import ADMIN_ROLE, Actor, CompiledWorkflow, StepResult, compile_workflow
from engine.core.records import EventRecord
from engine.core.replay import check_contiguous, fold, reexecute
from engine.core.validation import load_definition
from engine.errors import (
    ActionFailed,
    CaseClosed,
    DataInvalid,
    ExpressionError,
    GuardRejected,
    InvalidTrigger,
    PayloadInvalid,
    ReplayError,
    SvcflowError,
    TriggerNotPermitted,
)

T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
ANYONE = Actor("caller")
SUPERVISOR = Actor("sue", frozenset({"supervisor"}))
ENGINEER = Actor("eli", frozenset({"engineer"}))
ADMIN = Actor("root", frozenset({ADMIN_ROLE}))
PARAMS = {"threshold": 5}

DOCUMENT: dict[str, Any] = {
    "name": "unit_service",
    "title": {"en": "Unit service", "zh": "单元服务"},
    "initial": "new",
    "parameters": {"threshold": {"type": "integer", "default": 5}},
    "data_schema": {
        "type": "object",
        "required": ["score"],
        "properties": {
            "score": {"type": "integer"},
            "lane": {"enum": ["fast", "slow"]},
            "engineer": {"type": "string", "minLength": 1},
            "assigned_at": {"type": "string"},
            "limit": {"type": "integer"},
            "spare": {"type": "integer"},
            "visits": {"type": "integer", "minimum": 0, "maximum": 2},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "states": [
        {"name": "new", "title": {"en": "New", "zh": "新建"}},
        {"name": "fast", "title": {"en": "Fast lane", "zh": "快速"}},
        {"name": "slow", "title": {"en": "Slow lane", "zh": "慢速"}},
        {"name": "done", "title": {"en": "Done", "zh": "完成"}, "final": True},
        {"name": "cancelled", "title": {"en": "Cancelled", "zh": "取消"}, "final": True},
    ],
    "transitions": [
        {
            "trigger": "triage",
            "source": "new",
            "dest": "fast",
            "guard": "data.score >= params.threshold",
            "actions": [{"set": {"lane": "'fast'"}}],
        },
        {
            "trigger": "triage",
            "source": "new",
            "dest": "slow",
            "guard": "data.score >= 0",
            "actions": [{"set": {"lane": "'slow'"}}],
        },
        {
            "trigger": "assign",
            "source": ["fast", "slow"],
            "dest": "fast",
            "roles": ["supervisor"],
            "payload_schema": {
                "type": "object",
                "required": ["engineer"],
                "properties": {"engineer": {"type": "string", "minLength": 1}},
                "additionalProperties": False,
            },
            "actions": [
                {"set": {"engineer": "payload.engineer", "assigned_at": "now"}},
                {"set": {"limit": "params.threshold * 2"}},
                {"set": {"spare": "data.limit - data.score"}},
            ],
        },
        {
            "trigger": "visit",
            "source": "fast",
            "dest": "fast",
            "actions": [{"increment": "visits"}],
        },
        {"trigger": "finish", "source": ["fast", "slow"], "dest": "done"},
        {"trigger": "cancel", "source": "*", "dest": "cancelled", "roles": ["supervisor"]},
    ],
}


def _compiled(document: dict[str, Any] = DOCUMENT, version: int | None = 1) -> CompiledWorkflow:
    return compile_workflow(load_definition(copy.deepcopy(document), version=version))


def _fire(
    trigger: str,
    state: str,
    data: dict[str, Any],
    *,
    payload: dict[str, Any] | None = None,
    params: dict[str, Any] = PARAMS,
    actor: Actor = ANYONE,
    now: datetime = T0,
) -> StepResult:
    return _compiled().step(
        state=state,
        data=data,
        trigger=trigger,
        payload=payload or {},
        params=params,
        now=now,
        actor=actor,
        case_id=42,
    )


# --- choosing the transition ------------------------------------------------------------------


def test_first_transition_whose_guard_holds_wins() -> None:
    # score 7 satisfies both triage guards; the first one listed is taken.
    result = _fire("triage", "new", {"score": 7})

    assert (result.from_state, result.to_state, result.transition_index) == ("new", "fast", 0)
    assert result.data == {"score": 7, "lane": "fast"}
    assert result.changes == {"lane": "fast"}


def test_a_later_transition_fires_when_earlier_guards_are_false() -> None:
    result = _fire("triage", "new", {"score": 3})

    assert (result.to_state, result.transition_index, result.data["lane"]) == ("slow", 1, "slow")


def test_guards_read_the_params_the_caller_passes() -> None:
    result = _fire("triage", "new", {"score": 7}, params={"threshold": 10})

    assert result.to_state == "slow"


def test_no_guard_holds_names_every_guard_tried() -> None:
    with pytest.raises(GuardRejected) as caught:
        _fire("triage", "new", {"score": -1})

    error = caught.value
    assert error.fields["state"] == "new"
    assert error.fields["trigger"] == "triage"
    assert error.fields["case_id"] == 42
    assert error.fields["guards"] == [
        "transitions[0].guard = data.score >= params.threshold",
        "transitions[1].guard = data.score >= 0",
    ]
    assert "data.score >= 0" in (error.hint or "")


def test_a_guard_that_fails_to_evaluate_names_its_element() -> None:
    with pytest.raises(ExpressionError) as caught:
        _fire("triage", "new", {"score": 7}, params={})

    assert caught.value.fields["path"] == "transitions[0].guard"


# --- triggers that cannot fire ---------------------------------------------------------------


def test_invalid_trigger_lists_the_triggers_allowed_in_that_state() -> None:
    with pytest.raises(InvalidTrigger) as caught:
        _fire("visit", "new", {"score": 1}, actor=SUPERVISOR)

    error = caught.value
    assert error.allowed == ["triage", "cancel"]
    assert error.fields["state"] == "new"
    assert "triage, cancel" in (error.hint or "")


def test_invalid_trigger_lists_only_what_the_caller_may_fire() -> None:
    with pytest.raises(InvalidTrigger) as caught:
        _fire("visit", "new", {"score": 1}, actor=ANYONE)

    assert caught.value.allowed == ["triage"]  # cancel needs a supervisor


def test_unknown_trigger_is_invalid_too() -> None:
    with pytest.raises(InvalidTrigger):
        _fire("teleport", "fast", {"score": 1})


@pytest.mark.parametrize("trigger", ["to_done", "to_cancelled", "to_fast"])
def test_machine_has_no_automatic_to_state_triggers(trigger: str) -> None:
    compiled = _compiled()

    assert trigger not in compiled.machine.events
    with pytest.raises(InvalidTrigger):
        _fire(trigger, "new", {"score": 1}, actor=ADMIN)


@pytest.mark.parametrize("state", ["done", "cancelled"])
@pytest.mark.parametrize("trigger", ["cancel", "finish", "nonsense"])
def test_final_state_takes_no_triggers(state: str, trigger: str) -> None:
    with pytest.raises(CaseClosed) as caught:
        _fire(trigger, state, {"score": 1}, actor=ADMIN)

    assert caught.value.fields == {"case_id": 42, "state": state, "trigger": trigger}


def test_allowed_triggers_follow_definition_order_and_skip_final_states() -> None:
    compiled = _compiled()

    assert compiled.allowed_triggers("new") == ["triage", "cancel"]
    assert compiled.allowed_triggers("fast") == ["assign", "visit", "finish", "cancel"]
    assert compiled.allowed_triggers("slow") == ["assign", "finish", "cancel"]
    assert compiled.allowed_triggers("done") == []
    assert compiled.allowed_triggers("cancelled") == []


@pytest.mark.parametrize("state", ["new", "fast", "slow"])
def test_star_source_covers_every_non_final_state(state: str) -> None:
    result = _fire("cancel", state, {"score": 1}, actor=SUPERVISOR)

    assert (result.to_state, result.transition_index) == ("cancelled", 5)


def test_star_source_expands_to_the_non_final_states_in_the_definition() -> None:
    definition = load_definition(copy.deepcopy(DOCUMENT))

    assert definition.transitions[5].sources == ("new", "fast", "slow")


# --- payload ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        ({}, "'engineer' is a required property"),
        ({"engineer": ""}, "engineer:"),
        ({"engineer": 7}, "engineer:"),
        ({"engineer": "eli", "extra": 1}, "'extra' was unexpected"),
    ],
)
def test_payload_that_breaks_the_payload_schema_is_refused(
    payload: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        _fire("assign", "fast", {"score": 1}, payload=payload, actor=SUPERVISOR)

    error = caught.value
    assert error.fields["path"] == "transitions[2].payload_schema"
    assert error.fields["trigger"] == "assign"
    assert any(complaint in text for text in error.fields["errors"]), error.fields["errors"]


# --- roles ------------------------------------------------------------------------------------


def test_actor_without_the_role_may_not_fire() -> None:
    with pytest.raises(TriggerNotPermitted) as caught:
        _fire("assign", "fast", {"score": 1}, payload={"engineer": "eli"}, actor=ENGINEER)

    assert caught.value.fields["path"] == "transitions[2].roles"
    assert "supervisor" in caught.value.message


def test_actor_with_no_roles_may_not_fire_a_role_limited_transition() -> None:
    with pytest.raises(TriggerNotPermitted):
        _fire("cancel", "new", {"score": 1}, actor=ANYONE)


@pytest.mark.parametrize("actor", [SUPERVISOR, ADMIN], ids=["supervisor", "admin"])
def test_actor_with_the_role_or_admin_may_fire(actor: Actor) -> None:
    result = _fire("assign", "slow", {"score": 1}, payload={"engineer": "eli"}, actor=actor)

    assert result.to_state == "fast"


@pytest.mark.parametrize(
    "actor", [ANYONE, ENGINEER, Actor.system()], ids=["none", "other", "system"]
)
def test_transition_without_roles_is_open_to_anyone(actor: Actor) -> None:
    assert _fire("finish", "slow", {"score": 1}, actor=actor).to_state == "done"


# --- actions ----------------------------------------------------------------------------------


def test_actions_set_from_payload_now_params_and_data_in_order() -> None:
    now = datetime(2025, 10, 8, 9, 30, tzinfo=UTC)

    result = _fire(
        "assign", "fast", {"score": 3}, payload={"engineer": "eli"}, actor=SUPERVISOR, now=now
    )

    assert result.changes == {
        "engineer": "eli",  # payload
        "assigned_at": "2025-10-08T09:30:00Z",  # now, stored as ISO 8601 UTC
        "limit": 10,  # params
        "spare": 7,  # data, as set by the previous action
    }
    assert result.data == {"score": 3, **result.changes}


def test_increment_starts_from_zero_and_counts_up() -> None:
    first = _fire("visit", "fast", {"score": 1})
    second = _fire("visit", "fast", first.data)

    assert first.data["visits"] == 1
    assert second.data["visits"] == 2
    assert second.changes == {"visits": 2}


def test_action_result_that_breaks_data_schema_is_refused_and_changes_nothing() -> None:
    data = {"score": 1, "visits": 2, "tags": ["x"]}
    before = copy.deepcopy(data)

    with pytest.raises(DataInvalid) as caught:
        _fire("visit", "fast", data)

    assert "visits: 3 is greater than the maximum of 2" in caught.value.message
    assert data == before


def test_increment_of_a_stored_non_number_fails_with_its_path() -> None:
    data = {"score": 1, "visits": "two"}

    with pytest.raises(ActionFailed) as caught:
        _fire("visit", "fast", data)

    assert caught.value.fields["path"] == "transitions[3].actions[0].increment"
    assert data == {"score": 1, "visits": "two"}


@pytest.mark.parametrize(
    ("trigger", "state", "payload", "actor", "refusal"),
    [
        ("triage", "new", {}, ANYONE, None),
        ("assign", "fast", {"engineer": "eli"}, SUPERVISOR, None),  # many actions
        ("assign", "fast", {"engineer": ""}, SUPERVISOR, PayloadInvalid),
        ("assign", "fast", {"engineer": "eli"}, ENGINEER, TriggerNotPermitted),
        ("visit", "fast", {}, ANYONE, DataInvalid),  # visits already 2
        ("finish", "new", {}, ANYONE, InvalidTrigger),
    ],
)
def test_step_never_mutates_its_inputs(
    trigger: str,
    state: str,
    payload: dict[str, Any],
    actor: Actor,
    refusal: type[SvcflowError] | None,
) -> None:
    data = {"score": 6, "visits": 2, "tags": ["a", "b"]}
    params = {"threshold": 5}
    inputs = (data, payload, params)
    snapshot = copy.deepcopy(inputs)

    if refusal is None:
        result = _fire(trigger, state, data, payload=payload, params=params, actor=actor)
        assert result.data is not data
        assert result.data != data  # the step did change the case: on a copy
    else:
        with pytest.raises(refusal):
            _fire(trigger, state, data, payload=payload, params=params, actor=actor)

    assert inputs == snapshot


# --- compilation and caching ------------------------------------------------------------------


def test_compiled_machine_is_cached_per_name_and_version() -> None:
    first = compile_workflow(load_definition(copy.deepcopy(DOCUMENT), version=3))
    again = compile_workflow(load_definition(copy.deepcopy(DOCUMENT), version=3))
    other = compile_workflow(load_definition(copy.deepcopy(DOCUMENT), version=4))

    assert first is again
    assert other is not first


def test_draft_definitions_are_cached_by_content() -> None:
    changed = copy.deepcopy(DOCUMENT)
    changed["parameters"]["threshold"]["default"] = 6

    first = _compiled(version=None)
    assert _compiled(version=None) is first
    assert _compiled(changed, version=None) is not first


def test_one_machine_serves_many_cases_without_holding_their_state() -> None:
    compiled = _compiled()
    before = compiled.machine.models[:]

    _fire("triage", "new", {"score": 7})
    _fire("triage", "new", {"score": 1})

    assert compiled.machine.models == before == []
    assert compiled.machine.auto_transitions is False
    assert compiled.machine.ignore_invalid_triggers is False


def test_initial_data_is_checked_against_data_schema() -> None:
    compiled = _compiled()

    compiled.check_initial_data({"score": 1})
    with pytest.raises(DataInvalid) as caught:
        compiled.check_initial_data({"lane": "fast"})
    assert "'score' is a required property" in caught.value.message


# --- replay -----------------------------------------------------------------------------------


def _history() -> tuple[list[EventRecord], StepResult]:
    """A case history built from real step results, the way the service records it."""
    created = {"score": 3}
    events = [
        EventRecord(
            case_id=1,
            seq=1,
            event_type="created",
            trigger=None,
            from_state=None,
            to_state="new",
            actor="sue",
            payload={},
            changes=created,
            at=T0,
        )
    ]
    steps = [
        ("triage", {}, ANYONE),
        ("assign", {"engineer": "eli"}, SUPERVISOR),
        ("visit", {}, ENGINEER),
        ("finish", {}, ENGINEER),
    ]
    state, data = "new", dict(created)
    result: StepResult | None = None
    for seq, (trigger, payload, actor) in enumerate(steps, start=2):
        at = T0 + timedelta(hours=seq)
        result = _fire(trigger, state, data, payload=payload, actor=actor, now=at)
        events.append(
            EventRecord(
                case_id=1,
                seq=seq,
                event_type="transition",
                trigger=trigger,
                from_state=state,
                to_state=result.to_state,
                actor=actor.name,
                payload=payload,
                changes=result.changes,
                at=at,
            )
        )
        state, data = result.to_state, result.data
    assert result is not None
    return events, result


def test_fold_and_reexecute_agree_with_the_live_outcome() -> None:
    events, last = _history()

    folded = fold(events)
    replayed = reexecute(_compiled(), events, PARAMS)

    assert folded == replayed == (last.to_state, last.data)
    # the timestamp proves re-execution used each event's time, not a clock
    assert replayed[1]["assigned_at"] == "2025-09-30T05:00:00Z"


def test_reexecute_detects_a_history_that_lies_about_its_changes() -> None:
    events, _ = _history()
    events[3] = dataclasses.replace(events[3], changes={"engineer": "mallory"})

    assert fold(events) != reexecute(_compiled(), events, PARAMS)


def test_check_contiguous_accepts_a_complete_history() -> None:
    events, _ = _history()

    check_contiguous(events)


def test_check_contiguous_rejects_a_gap() -> None:
    events, _ = _history()
    del events[2]

    with pytest.raises(ReplayError) as caught:
        check_contiguous(events)

    assert "seq 4 where 3 was expected" in caught.value.message
    assert caught.value.fields["case_id"] == 1


def test_replay_needs_the_creation_event() -> None:
    events, _ = _history()

    with pytest.raises(ReplayError):
        reexecute(_compiled(), events[1:], PARAMS)
    with pytest.raises(ReplayError):
        fold([])


# --- formats ------------------------------------------------------------------------------------


def _with_instants() -> CompiledWorkflow:
    document = copy.deepcopy(DOCUMENT)
    document["data_schema"]["properties"]["due"] = {"type": "string", "format": "date-time"}
    assign = document["transitions"][2]
    assign["payload_schema"]["properties"]["at"] = {"type": "string", "format": "date-time"}
    return _compiled(document)


@pytest.mark.parametrize(
    "bad", ["yesterday", "2025-09-30", "2025-09-30 10:00:00", "2025-02-30T00:00:00Z"]
)
def test_date_time_is_enforced_in_payload_and_data_naming_the_field(bad: str) -> None:
    compiled = _with_instants()

    with pytest.raises(PayloadInvalid) as payload:
        compiled.step(
            state="fast",
            data={"score": 1},
            trigger="assign",
            payload={"engineer": "Li", "at": bad},
            params=PARAMS,
            now=T0,
            actor=SUPERVISOR,
        )
    assert f'at: "{bad}" is not a "date-time"' in payload.value.message
    with pytest.raises(DataInvalid) as data:
        compiled.check_initial_data({"score": 1, "due": bad})
    assert f'due: "{bad}" is not a "date-time"' in data.value.message


def test_rfc_3339_instants_pass_with_any_offset() -> None:
    compiled = _with_instants()
    for good in (
        "2025-09-30T10:00:00Z",
        "2025-09-30T10:00:00.5+08:00",
        "2025-09-30T02:00:00-05:30",
    ):
        compiled.check_initial_data({"score": 1, "due": good})
