"""Cases made and moved through the services, for tests that set a situation up and then check
what a service, the API or the dashboard makes of it.

Each call runs in a transaction of its own, as one request or one worker job would, at an
instant the test picks (``now``): nothing reads the clock. The service functions themselves
take a session and never commit; these are their callers.
"""

from __future__ import annotations

from datetime import datetime
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
