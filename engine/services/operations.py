"""Operator actions: what a supervisor (or an administrator) does about a stuck case.

Every action needs a reason and records it, with the actor, in the case history in the same
transaction as the change: a retried timer (``timer_retried``), a trigger fired by hand (the
transition's context keeps the reason), a forced state (``forced``, administrators only;
timers and SLA clocks are re-derived for the new state), a cancellation, a paused or resumed
SLA clock (``sla_paused`` / ``sla_resumed``, which the clock computation honours), and a
reassignment of the definition's ``assignee`` field (``reassigned``).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from engine.core.machine import ADMIN_ROLE, Actor, compile_workflow
from engine.core.messages import PAYLOAD_KEY
from engine.core.records import EventRecord, FireOutcome
from engine.core.sla import SLA_PAUSED, SLA_RESUMED, ClockStatus, compute_clocks
from engine.errors import OperationInvalid, TriggerNotPermitted
from engine.services import cases, links, scheduling, timer_firing
from engine.services.calendars import LazyCalendars
from engine.services.definitions import get_definition
from engine.store import case_store
from engine.store.models import CaseStatus, EventType


def _require_reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise OperationInvalid(
            "Operator actions need a reason.", hint="Say why, e.g. 'customer called back'."
        )
    return reason.strip()


def retry_timer(
    session: Session, timer_id: int, *, actor: Actor, reason: str, now: datetime
) -> FireOutcome:
    """Re-arm a failed timer, delivered at once (``timer_retried``). A timer whose case has
    moved on since cannot fire: it is dismissed instead (``timer_cancelled``, saying why), so
    the answer never claims a retry that could only end as a stale no-op."""
    reason = _require_reason(reason)
    timer = timer_firing.failed_timer(session, timer_id)
    case_id = timer.case_id
    stale = timer_firing.stale_reason(session, timer)
    if stale is not None:
        timer_firing.cancel_failed(
            session, timer_id, now=now, note=f"cancelled by {actor.name}: {stale}"
        )
        return cases.record_event(
            session,
            case_id,
            EventType.TIMER_CANCELLED,
            {
                "timer_id": timer_id,
                "reason": reason,
                "why": str(stale),
                PAYLOAD_KEY: {"why": stale.to_dict()},
            },
            actor=actor,
            now=now,
        )
    timer_firing.retry_failed(session, timer_id, now=now, note=f"retried by {actor.name}: {reason}")
    return cases.record_event(
        session,
        case_id,
        EventType.TIMER_RETRIED,
        {"timer_id": timer_id, "reason": reason},
        actor=actor,
        now=now,
    )


def fire(
    session: Session,
    case_id: int,
    trigger: str,
    payload: dict[str, Any],
    *,
    actor: Actor,
    reason: str,
    now: datetime,
) -> FireOutcome:
    """Fire any trigger allowed now, on a supervisor's authority (the reason is recorded)."""
    return cases.fire(
        session, case_id, trigger, payload, actor=actor, now=now, reason=_require_reason(reason)
    )


def cancel(
    session: Session, case_id: int, *, actor: Actor, reason: str, now: datetime
) -> FireOutcome:
    return cases.cancel_case(session, case_id, actor=actor, now=now, reason=_require_reason(reason))


def force_state(
    session: Session, case_id: int, state: str, *, actor: Actor, reason: str, now: datetime
) -> FireOutcome:
    """Put an open case into ``state`` outside its definition's transitions (admins only).

    Recorded as ``forced``; the state entry is new, so the old state's timers are cancelled
    and the new state's armed, and SLA clocks are re-derived from the history."""
    reason = _require_reason(reason)
    if ADMIN_ROLE not in actor.roles:
        raise TriggerNotPermitted(
            "Only administrators may force a case into a state.",
            hint="Ask an administrator, or fire an allowed trigger.",
        )
    case = cases.get_case(session, case_id)
    definition = get_definition(session, case.definition_name, case.definition_version)
    if state not in definition.state_names:
        raise OperationInvalid(
            f"{definition.name!r} has no state {state!r}.",
            hint="States: " + ", ".join(definition.state_names) + ".",
            case_id=case_id,
        )
    if case.status != CaseStatus.OPEN.value:
        raise OperationInvalid(
            f"Case {case_id} is {case.status}; only open cases move.", case_id=case_id
        )
    version = case.version + 1
    status = (CaseStatus.COMPLETED if state in definition.final_states else CaseStatus.OPEN).value
    moved = dataclasses.replace(
        case,
        state=state,
        status=status,
        version=version,
        updated_at=now,
        state_entered_at=now,
        state_entry_seq=version,
    )
    event = EventRecord(
        case_id=case_id,
        seq=version,
        event_type=EventType.FORCED.value,
        trigger=None,
        from_state=case.state,
        to_state=state,
        actor=actor.name,
        payload={"reason": reason},
        changes={},
        at=now,
    )
    head = case_store.write_event(session, case, moved, event, doing="it was being forced")
    moved = dataclasses.replace(moved, history_head=head)
    event = dataclasses.replace(event, hash=head)
    links.clear_waits(
        session.connection(), case_id, entered_at=now, closed=status != CaseStatus.OPEN.value
    )
    scheduling.sync_after_event(
        session, definition, case=moved, previous=case, event=event, now=now
    )
    cases.settle(
        session, links.after_transition(definition, moved, [], entered=state, depth=0), now=now
    )
    return FireOutcome(
        cases.get_case(session, case_id),
        event,
        allowed_triggers=tuple(compile_workflow(definition).allowed_triggers(state)),
    )


def set_sla_paused(
    session: Session,
    case_id: int,
    sla: str,
    paused: bool,
    *,
    actor: Actor,
    reason: str,
    now: datetime,
    resume_at: datetime | None = None,
) -> FireOutcome:
    """Pause or resume one SLA clock of a case (e.g. the customer asked to wait). A pause may
    say when it ends (``resume_at``): a timer then resumes the clock at that time, so a pause
    cannot be forgotten into a silent stall."""
    reason = _require_reason(reason)
    if resume_at is not None:
        resume_at = _resume_time(resume_at, paused=paused, now=now, case_id=case_id)
    case = cases.get_case(session, case_id)
    definition = get_definition(session, case.definition_name, case.definition_version)
    events = cases.history(session, case_id)
    # By name, the latest round last: an operator pauses or resumes a clock's current round.
    clocks = {
        c.name: c
        for c in compute_clocks(
            definition,
            events,
            data=case.data,
            params=case.params,
            now=now,
            calendars=LazyCalendars(session),
        )
    }
    clock = clocks.get(sla)
    if clock is None:
        raise OperationInvalid(
            f"{definition.name!r} has no SLA {sla!r}.",
            hint="SLAs: " + (", ".join(clocks) or "none") + ".",
        )
    needed = ClockStatus.RUNNING if paused else ClockStatus.PAUSED
    if clock.status is not needed:
        raise OperationInvalid(
            f"SLA {sla!r} of case {case_id} is {clock.status.value}; only a "
            f"{needed.value} clock can be {'paused' if paused else 'resumed'}.",
            case_id=case_id,
        )
    if not paused and not clock.manual_pause:
        # Recording a resume here would change nothing: the clock follows the state.
        raise OperationInvalid(
            f"SLA {sla!r} of case {case_id} is paused by its state {case.state!r}, not by an "
            "operator; it runs again when the case leaves that state.",
            case_id=case_id,
        )
    kind = EventType.SLA_PAUSED if paused else EventType.SLA_RESUMED
    assert kind.value in (SLA_PAUSED, SLA_RESUMED)
    payload: dict[str, Any] = {"sla": sla, "reason": reason}
    if resume_at is not None:
        payload["resume_at"] = resume_at.isoformat()
    return cases.record_event(session, case_id, kind, payload, actor=actor, now=now)


MAX_PAUSE = timedelta(days=366)  # a pause with a resume time ends within a year


def _resume_time(resume_at: datetime, *, paused: bool, now: datetime, case_id: int) -> datetime:
    """A pause's resume time, in UTC: later than now and within :data:`MAX_PAUSE` (a pause
    meant to last longer has no business resuming by itself: leave it without one)."""
    hint = "Give resume_at with a pause, as an instant in the future within a year."
    if not paused:
        raise OperationInvalid(
            "A resume time belongs to a pause, not to a resume.", hint=hint, case_id=case_id
        )
    try:
        resume_at = resume_at.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-14:00 is past the last instant there is
        resume_at = datetime.max.replace(tzinfo=UTC)
    if resume_at <= now:
        raise OperationInvalid(
            "A resume time belongs to a pause, and must be later than now.",
            hint=hint,
            case_id=case_id,
        )
    if resume_at - now > MAX_PAUSE:
        raise OperationInvalid(
            f"A resume time must be within a year ({MAX_PAUSE.days} days) of now.",
            hint=hint + " A longer pause is given no resume time; it is listed as sla_paused.",
            case_id=case_id,
        )
    return resume_at


def reassign(
    session: Session, case_id: int, assignee: str, *, actor: Actor, reason: str, now: datetime
) -> FireOutcome:
    """Hand the case to someone else: sets the definition's ``assignee`` data field."""
    reason = _require_reason(reason)
    case = cases.get_case(session, case_id)
    definition = get_definition(session, case.definition_name, case.definition_version)
    if definition.assignee is None:
        raise OperationInvalid(
            f"{definition.name!r} declares no assignee field.",
            hint="Add `assignee: <data field>` to the definition.",
        )
    if case.status != CaseStatus.OPEN.value:
        raise OperationInvalid(
            f"Case {case_id} is {case.status}; only open cases are reassigned.", case_id=case_id
        )
    return cases.record_event(
        session,
        case_id,
        EventType.REASSIGNED,
        {
            "field": definition.assignee,
            "from": case.data.get(definition.assignee),
            "to": assignee,
            "reason": reason,
        },
        actor=actor,
        now=now,
        changes={definition.assignee: assignee},
    )
