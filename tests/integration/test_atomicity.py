"""A fire that fails, in the engine or after it, leaves no trace: state, data, version, history
and idempotency records read back exactly as before (in a new session)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import DataInvalid, ExpressionError, PayloadInvalid, SvcflowError
from engine.services import cases
from engine.store.models import Case, CaseEvent, IdempotencyRecord
from tests.conftest import ADMIN, T0
from tests.factories import create_case, fire
from tests.workflows import COUNTER

LATER = T0.replace(hour=4)


class CallerError(Exception):
    """Stands for anything the caller does after fire() returned: a view, a job, a hook."""


@pytest.fixture
def case_in_review(sessions: sessionmaker[Session], publish_workflow) -> int:
    """A counter case with some history, sitting in ``review`` (so ``approve`` applies)."""
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 2, "zero": 0}).case.id
    for trigger in ("ping", "submit"):
        fire(sessions, case_id, trigger, idempotency_key=trigger)
    return case_id


@pytest.fixture
def open_case(sessions: sessionmaker[Session], publish_workflow) -> int:
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 5, "zero": 0}).case.id
    fire(sessions, case_id, "ping")
    return case_id


# (trigger, error, text the message must contain so a process owner finds the culprit)
FAILING_ACTIONS = {
    "data-schema": ("overflow", DataInvalid, "count"),
    "division-by-zero": ("divide", ExpressionError, "transitions[5].actions[0].set.ratio"),
    "missing-field": ("label", ExpressionError, "extra"),
}


@pytest.mark.parametrize("failure", FAILING_ACTIONS.values(), ids=FAILING_ACTIONS.keys())
def test_failing_action_changes_nothing(
    sessions: sessionmaker[Session],
    open_case: int,
    snapshot,
    failure: tuple[str, type[SvcflowError], str],
) -> None:
    trigger, error, mentions = failure
    before = snapshot(open_case)

    with pytest.raises(error) as info, sessions() as session, session.begin():
        cases.fire(
            session,
            open_case,
            trigger,
            {},
            actor=ADMIN,
            now=LATER,
            idempotency_key=f"try-{trigger}",
        )

    assert mentions in str(info.value)
    assert info.value.hint
    assert snapshot(open_case) == before


def test_payload_against_schema_changes_nothing(
    sessions: sessionmaker[Session], case_in_review: int, snapshot
) -> None:
    before = snapshot(case_in_review)

    for payload in ({}, {"note": ""}, {"note": 3}):
        with pytest.raises(PayloadInvalid) as info, sessions() as session, session.begin():
            cases.fire(
                session,
                case_in_review,
                "approve",
                payload,
                actor=ADMIN,
                now=LATER,
                idempotency_key="approve",
            )
        assert info.value.fields["path"] == "transitions[3].payload_schema"

    assert snapshot(case_in_review) == before
    assert before.case.state == "review"


def test_failure_after_fire_returned_rolls_everything_back(
    sessions: sessionmaker[Session], case_in_review: int, snapshot
) -> None:
    before = snapshot(case_in_review)

    with pytest.raises(CallerError), sessions() as session, session.begin():
        out = cases.fire(
            session,
            case_in_review,
            "approve",
            {"note": "ok"},
            actor=ADMIN,
            now=LATER,
            idempotency_key="approve-1",
        )
        # The engine has written the case, the event and the idempotency record by now.
        assert out.case.state == "done"
        assert len(cases.history(session, case_in_review)) == len(before.history) + 1
        raise CallerError

    assert snapshot(case_in_review) == before
    # The key was not spent: the same request now runs for real, once.
    with sessions() as session, session.begin():
        retry = cases.fire(
            session,
            case_in_review,
            "approve",
            {"note": "ok"},
            actor=ADMIN,
            now=LATER,
            idempotency_key="approve-1",
        )
    assert not retry.replayed
    assert retry.event.seq == before.case.version + 1
    assert snapshot(case_in_review).case.state == "done"


def test_failure_after_create_returned_leaves_no_case(
    sessions: sessionmaker[Session], publish_workflow, row_count
) -> None:
    publish_workflow(COUNTER)

    with pytest.raises(CallerError), sessions() as session, session.begin():
        cases.create_case(
            session,
            "it_counter",
            {"count": 0},
            actor=ADMIN,
            now=T0,
            business_key="BK-1",
            idempotency_key="create-1",
        )
        raise CallerError

    assert (row_count(Case), row_count(CaseEvent), row_count(IdempotencyRecord)) == (0, 0, 0)
    with sessions() as session, session.begin():
        created = cases.create_case(
            session,
            "it_counter",
            {"count": 0},
            actor=ADMIN,
            now=T0,
            business_key="BK-1",
            idempotency_key="create-1",
        )
    assert not created.replayed
    assert created.case.business_key == "BK-1"


def test_invalid_initial_data_creates_nothing(
    sessions: sessionmaker[Session], publish_workflow, row_count
) -> None:
    publish_workflow(COUNTER)

    for data in ({}, {"count": -1}, {"count": "3"}):
        with pytest.raises(DataInvalid), sessions() as session, session.begin():
            cases.create_case(session, "it_counter", data, actor=ADMIN, now=T0, idempotency_key="c")

    assert (row_count(Case), row_count(CaseEvent), row_count(IdempotencyRecord)) == (0, 0, 0)
