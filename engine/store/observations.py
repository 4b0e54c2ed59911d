"""Observations of committed work, for metrics and logs.

Services note what they did (an event appended, a timer fired) on the session; the notes are
handed to the registered sinks only after the transaction commits, so a metric never counts a
transition that was rolled back. The engine knows no metrics library: adapters (the web app,
the workers) register sinks (engine/runtime/telemetry.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
_KEY = "svcflow.observations"


@dataclass(frozen=True)
class Observation:
    kind: str  # "event" or "timer_fired"
    labels: dict[str, Any] = field(default_factory=dict)


Sink = Callable[[Observation], None]
_sinks: list[Sink] = []


def add_sink(sink: Sink) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def note(session: Session, kind: str, **labels: Any) -> None:
    if _sinks:
        session.info.setdefault(_KEY, []).append(Observation(kind, labels))


@event.listens_for(Session, "after_commit")
def _emit(session: Session) -> None:
    for observation in session.info.pop(_KEY, ()):
        for sink in _sinks:
            try:
                sink(observation)
            except Exception:  # telemetry must never break a committed change
                log.warning("observation sink failed", exc_info=True)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)
