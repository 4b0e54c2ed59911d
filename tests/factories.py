"""Cases made and moved through the services, for tests that set a situation up and then check
what a service, the API or the dashboard makes of it.

Each call runs in a transaction of its own, as one request or one worker job would, at an
instant the test picks (``now``): nothing reads the clock. The service functions themselves
take a session and never commit; these are their callers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from engine.core.machine import Actor
from engine.core.records import FireOutcome
from engine.services import cases, timer_firing
from engine.services.scheduling import DueTimer
from tests.conftest import ADMIN, T0

TICKET_NAME = "service_ticket"  # tests/workflows.py TICKET


def create_case(
    sessions: sessionmaker[Session],
    definition: str,
    data: dict[str, Any] | None = None,
    *,
    now: datetime = T0,
    actor: Actor = ADMIN,
    **options: Any,
) -> FireOutcome:
    """``cases.create_case`` in a transaction of its own; ``options`` are the service's
    (``business_key``, ``idempotency_key``, ``version``, ...)."""
    with sessions() as session, session.begin():
        return cases.create_case(session, definition, data or {}, actor=actor, now=now, **options)


def fire(
    sessions: sessionmaker[Session],
    case_id: int,
    trigger: str,
    payload: dict[str, Any] | None = None,
    *,
    now: datetime = T0,
    actor: Actor = ADMIN,
    **options: Any,
) -> FireOutcome:
    """``cases.fire`` in a transaction of its own; ``options`` are the service's
    (``expected_version``, ``idempotency_key``, ``reason``)."""
    with sessions() as session, session.begin():
        return cases.fire(session, case_id, trigger, payload, actor=actor, now=now, **options)


def create_ticket(sessions: sessionmaker[Session], *, now: datetime = T0, **data: Any) -> int:
    """A service ticket whose reminder may fire (``allowed`` unless given); its case id."""
    return create_case(sessions, TICKET_NAME, {"allowed": True, **data}, now=now).case.id


def deliver(
    sessions: sessionmaker[Session], timer_id: int, now: datetime
) -> timer_firing.TimerOutcome | DueTimer | None:
    """One delivery, as the RQ job makes it: the fire in one transaction, or else the failure
    counted in another. The fire's outcome, or the retry the failure scheduled (None: the
    timer failed for good)."""
    try:
        with sessions() as session, session.begin():
            return timer_firing.fire_due_timer(session, timer_id, now=now)
    except Exception as exc:  # what the job catches: any error of the fire is recorded
        with sessions() as session, session.begin():
            return timer_firing.record_failure(session, timer_id, exc, now=now)


def fail_reminder(sessions: sessionmaker[Session], case_id: int) -> int:
    """Deliver a ticket's reminder when due while its guard refuses (``allowed`` is false):
    the refusal is a permanent error, so the timer fails for good. Its id."""
    with sessions() as session, session.begin():
        (remind,) = [t for t in timer_firing.case_timers(session, case_id) if t.name == "remind"]
    assert deliver(sessions, remind.id, remind.due_at) is None, "the reminder was not refused"
    with sessions() as session, session.begin():
        failed = [t for t in timer_firing.case_timers(session, case_id) if t.id == remind.id]
    assert [t.status for t in failed] == ["failed"], failed
    return int(remind.id)


def ticket_with_failed_reminder(
    sessions: sessionmaker[Session], *, now: datetime = T0
) -> tuple[int, int]:
    """A ticket created at ``now`` whose reminder failed two hours later: (case id, timer id)."""
    case_id = create_ticket(sessions, now=now, allowed=False)
    return case_id, fail_reminder(sessions, case_id)


def deliver_due(sessions: sessionmaker[Session], case_id: int, now: datetime) -> None:
    """Deliver every armed timer of the case due by ``now``, each at its due instant and in
    due order, as workers that keep up would."""
    while True:
        with sessions() as session:
            due = [t for t in timer_firing.armed_timers(session, case_id) if t.due_at <= now]
        if not due:
            return
        deliver(sessions, due[0].id, due[0].due_at)


# A complaint answered at fault whose rectification took two rounds (times in Beijing, a
# working week of March 2025): the first result, finished Thursday 20 March 16:00, was due
# back by Monday 24 March 16:00 and was sent back late, on Tuesday 25 March 09:00; the second,
# finished that day at 14:00, was fed back on Wednesday 26 March 10:00, in time.
COMPLAINT = {
    "customer": "洛阳市中心医院",
    "description": "磁共振维修后图像伪影",
    "category": "quality",
    "severity": "serious",
}
COMPLAINT_ROUNDS = {
    name: datetime.fromisoformat(f"2025-03-{day}+08:00").astimezone(UTC)
    for name, day in {
        "created": "17T09:00:00",
        "first_finished": "20T16:00:00",
        "first_due": "24T16:00:00",
        "sent_back": "25T09:00:00",
        "second_finished": "25T14:00:00",
        "second_due": "27T14:00:00",
        "fed_back": "26T10:00:00",
    }.items()
}


def complaint_with_two_rectification_rounds(sessions: sessionmaker[Session]) -> int:
    """The complaint above, verified after its second round (COMPLAINT_ROUNDS); its id."""
    at = COMPLAINT_ROUNDS
    created = at["created"]
    case_id = create_case(sessions, "complaint", COMPLAINT, now=created).case.id
    contact = {"manager": "王建国", "complaint_form": "TS-1"}
    fire(sessions, case_id, "contact", contact, now=created + timedelta(hours=1))
    answer = {
        "team": {"manager": "王建国", "expert": "李工", "regional_lead": "张主任"},
        "responsibility": "线圈接头松动",
        "answer_ref": "DF-1",
        "plan": "更换线圈接头",
        "rectify_by": "2025-03-28T18:00:00+08:00",
    }
    fire(sessions, case_id, "conclude_at_fault", answer, now=created + timedelta(days=1))
    done = {"result": "已更换"}
    fire(sessions, case_id, "finish_rectification", done, now=at["first_finished"])
    deliver_due(sessions, case_id, at["sent_back"])  # the first round's feedback breaches
    fire(sessions, case_id, "rework", {"reason": "伪影仍可见"}, now=at["sent_back"])
    fire(sessions, case_id, "finish_rectification", done, now=at["second_finished"])
    fire(sessions, case_id, "feed_back", {"verified_by": "陈主任"}, now=at["fed_back"])
    return case_id
