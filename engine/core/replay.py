"""Rebuilding a case from its history.

Two independent ways, which must agree with each other and with the stored case:

* :func:`fold` applies each event's recorded ``changes`` in order (cheap; what the history
  *says* happened);
* :func:`reexecute` runs every recorded trigger through the compiled machine again with the
  event's payload and time (what the definition *does*), proving the history is complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.core.calendar import BusinessCalendar
from engine.core.definition import SYSTEM_ROLE
from engine.core.machine import ADMIN_ROLE, Actor, CompiledWorkflow
from engine.core.migration import DROPPED_KEY, MIGRATED
from engine.core.records import EventRecord
from engine.errors import ReplayError

CREATED = "created"
TRANSITION = "transition"


def check_contiguous(events: Sequence[EventRecord]) -> None:
    for expected, event in enumerate(events, start=1):
        if event.seq != expected:
            raise ReplayError(
                f"History of case {event.case_id} jumps to seq {event.seq} where {expected} was "
                "expected.",
                case_id=event.case_id,
            )


def fold(events: Iterable[EventRecord]) -> tuple[str, dict[str, Any]]:
    state: str | None = None
    data: dict[str, Any] = {}
    for event in events:
        if event.event_type == CREATED:
            data = dict(event.changes)
        else:
            data.update(event.changes)
        if event.event_type == MIGRATED:  # fields the new version no longer has
            for name in event.payload.get(DROPPED_KEY) or ():
                data.pop(name, None)
        state = event.to_state
    if state is None:
        raise ReplayError("A case history needs at least its creation event.")
    return state, data


def reexecute(
    compiled: CompiledWorkflow,
    events: Sequence[EventRecord],
    params: Mapping[str, Any],
    calendars: Mapping[str, BusinessCalendar] | None = None,
) -> tuple[str, dict[str, Any]]:
    if not events or events[0].event_type != CREATED:
        raise ReplayError("A case history starts with its creation event.")
    state, data = events[0].to_state, dict(events[0].changes)
    # Roles and payloads were checked when the events happened. Replay re-runs every event,
    # a person's or the engine's own (a timer, a breach, a child's news: transitions only the
    # system role may fire), so it acts with both roles.
    replayer = Actor("replay", frozenset({ADMIN_ROLE, SYSTEM_ROLE}))
    for event in events[1:]:
        if event.event_type == TRANSITION and event.trigger is not None:
            result = compiled.step(
                state=state,
                data=data,
                trigger=event.trigger,
                payload=event.payload,
                params=params,
                now=event.at,
                actor=replayer,
                case_id=event.case_id,
                counters=(event.context or {}).get("counters"),
                calendars=calendars,
                created_at=events[0].at,
            )
            state, data = result.to_state, result.data
        else:
            data.update(event.changes)
            state = event.to_state
    return state, data
