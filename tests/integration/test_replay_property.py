"""Property: whatever triggers a user fires, in whatever order, the stored case agrees with a
model of the definition, history stays contiguous, and both replays rebuild the stored case.

One database per test function (hypothesis runs many examples); each example makes a new case.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from engine import errors
from engine.core.machine import compile_workflow
from engine.core.replay import check_contiguous, fold, reexecute
from engine.services import cases
from engine.services.definitions import get_definition, set_parameter
from tests.conftest import ADMIN, T0
from tests.workflows import COUNTER, COUNTER_TRIGGERS

NAME = "it_counter"

# Valid payloads and the triggers on the way to ``done`` come up more often, so that examples
# reach the final state (and CaseClosed) instead of bouncing off InvalidTrigger.
payloads = st.sampled_from(
    [{}, {"note": "ok"}, {"note": "ok"}, {"note": "签字"}, {"note": ""}, {"note": 1}]
)
triggers = st.sampled_from(
    [*COUNTER_TRIGGERS, "ping", "submit", "submit", "approve", "approve", "nonexistent"]
)
steps = st.lists(st.tuples(triggers, payloads), max_size=16)
initial_data = st.fixed_dictionaries(
    {"count": st.integers(0, 4)},
    optional={"zero": st.sampled_from([0, 2, 3]), "extra": st.sampled_from(["x", "维修"])},
)


def expected_outcome(
    state: str, data: dict[str, Any], limit: int, trigger: str, payload: dict[str, Any]
) -> tuple[str, dict[str, Any]] | type[errors.SvcflowError]:
    """What it_counter promises: the new state and data, or the error class."""
    sources = {
        "ping": {"open"},
        "submit": {"open"},
        "reject": {"review"},
        "approve": {"review"},
        "overflow": {"open"},
        "divide": {"open", "review"},
        "label": {"open"},
    }
    if state == "done":
        return errors.CaseClosed
    if trigger not in sources:
        return errors.UnknownTrigger
    if state not in sources[trigger]:
        return errors.InvalidTrigger
    data = dict(data)
    if trigger == "ping":
        data["count"] += 1
        return "open", data
    if trigger == "submit":
        return ("review", data) if data["count"] >= limit else errors.GuardRejected
    if trigger == "reject":
        data["rejections"] = data.get("rejections", 0) + 1
        return "open", data
    if trigger == "approve":
        note = payload.get("note")
        if not (isinstance(note, str) and note):
            return errors.PayloadInvalid
        data["note"] = note
        return "done", data
    if trigger == "overflow":
        return errors.DataInvalid
    if trigger == "divide":
        if not data.get("zero"):
            return errors.ExpressionError
        data["ratio"] = 10 // data["zero"]
        return "open", data
    assert trigger == "label"
    if "extra" not in data:
        return errors.ExpressionError
    data["tag"] = data["extra"] + "!"
    return "open", data


def _read(sessions: sessionmaker[Session], case_id: int) -> tuple[Any, list[Any]]:
    with sessions() as session, session.begin():
        return cases.get_case(session, case_id), cases.history(session, case_id)


def test_random_trigger_sequences_keep_history_and_replay_consistent(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(COUNTER)

    @settings(max_examples=25, deadline=None, database=None)
    @given(data=initial_data, limit=st.sampled_from([1, 3, 5]), steps=steps)
    def run(data: dict[str, Any], limit: int, steps: list[tuple[str, dict[str, Any]]]) -> None:
        with sessions() as session, session.begin():
            set_parameter(session, NAME, "limit", limit, actor="test", now=T0)
            case_id = cases.create_case(session, NAME, data, actor=ADMIN, now=T0).case.id
        state, model = "open", dict(data)
        fired = 0

        for n, (trigger, payload) in enumerate(steps):
            before = _read(sessions, case_id)
            expected = expected_outcome(state, model, limit, trigger, payload)
            now = T0.replace(minute=n + 1)
            try:
                with sessions() as session, session.begin():
                    out = cases.fire(session, case_id, trigger, payload, actor=ADMIN, now=now)
            except errors.SvcflowError as exc:
                assert isinstance(expected, type), f"{trigger} failed: {exc}"
                assert type(exc) is expected, f"{trigger}: {exc!r}"
                assert _read(sessions, case_id) == before
                continue
            assert not isinstance(expected, type), f"{trigger} should raise {expected}"
            state, model = expected
            fired += 1
            assert (out.case.state, dict(out.case.data)) == (state, model)
            assert out.event.seq == fired + 1

        case, events = _read(sessions, case_id)
        check_contiguous(events)
        assert [e.seq for e in events] == list(range(1, fired + 2))
        assert case.version == fired + 1
        assert (case.state, dict(case.data)) == (state, model)
        assert case.params["limit"] == limit
        assert fold(events) == (case.state, case.data)
        with sessions() as session, session.begin():
            compiled = compile_workflow(get_definition(session, NAME, case.definition_version))
        assert reexecute(compiled, events, case.params) == (case.state, case.data)

    run()
