"""The RQ jobs of svcflow: module-level functions taking primitive ids, run by ``rq worker``.

Each job reloads what it needs and lets :func:`engine.services.timer_firing.fire_due_timer`
decide, under row locks, whether a timer still fires: a job delivered twice, late, or after
its case moved on does nothing harmful (rq docs, "Considerations for jobs").

A worker process has one :class:`~engine.runtime.resources.Runtime`, built from the
environment by the first job (:func:`current`); tests and benchmarks :func:`install` their
own. This is the one process global of svcflow, and it belongs to the worker process.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from engine.runtime import delivery, telemetry
from engine.runtime.resources import Runtime
from engine.services import timer_firing
from engine.services.scheduling import DueTimer

log = logging.getLogger(__name__)

_current: Runtime | None = None
_lock = threading.Lock()


def current() -> Runtime:
    """The worker process's runtime, built from ``SVCFLOW_*`` on first use (metrics and JSON
    logs are installed then)."""
    global _current  # noqa: PLW0603 - the worker process's runtime (module docstring)
    if _current is None:
        with _lock:
            if _current is None:
                telemetry.install()
                _current = Runtime()
    return _current


def install(runtime: Runtime | None) -> Runtime | None:
    """Use ``runtime`` in this process from now on (tests, benchmarks); returns the one it
    replaces, so a caller can put it back."""
    global _current
    with _lock:
        before, _current = _current, runtime
    return before


def fire_timer(timer_id: int, attempt: int = 0) -> str:
    """The job of one delivery. Never raises for a failed fire: the failure is recorded on the
    timer row and, when it may succeed later, a retry delivery is scheduled with backoff."""
    rt = current()
    result = _fire_one(rt, timer_id, attempt)
    log.info("timer %s attempt %s: %s", timer_id, attempt, result)
    return result


def fire_due_second(epoch: int, part: int = 0) -> str:
    """The batch job of one release second: fires every armed, never-attempted timer of
    ``part`` due in ``(epoch - 1, epoch]``, earliest first, each in its own transaction and
    with :func:`fire_timer`'s failure handling. A failure of one timer does not stop the
    others."""
    rt = current()
    second = datetime.fromtimestamp(epoch, UTC)
    now = rt.clock.now()
    if now < second:
        # Released before its second (clocks of hosts disagree): run again at that second,
        # under an id of its own, since this job's id stays taken until it ends.
        log.info(
            "batch %s delivered early at %s", delivery.batch_job_id(epoch, part), now.isoformat()
        )
        delivery.schedule_second(rt.queue, epoch, part, suffix=f"-early-{int(now.timestamp())}")
        return "early"
    with rt.sessions() as session, session.begin():
        due = timer_firing.first_deliveries_in(
            session,
            after=second - timedelta(seconds=1),
            until=second,
            part=part,
            parts=delivery.BATCH_PARTS,
        )
    results: dict[str, int] = {}
    for item in due:
        result = _fire_one(rt, item.id, item.attempts)
        key = result.split(":")[0]
        results[key] = results.get(key, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(results.items())) or "none due"
    log.info("timers due at %s part %s: %s", epoch, part, summary)
    return summary


def _fire_one(rt: Runtime, timer_id: int, attempt: int) -> str:
    now = rt.clock.now()
    try:
        with rt.sessions() as session, session.begin():
            outcome = timer_firing.fire_due_timer(session, timer_id, now=now)
    except Exception as exc:
        with rt.sessions() as session, session.begin():
            retry = timer_firing.record_failure(session, timer_id, exc, now=now)
        if retry is not None:
            delivery.schedule(rt.queue, retry, now=now)
        log.warning("timer %s attempt %s failed: %s", timer_id, attempt, exc)
        return f"failed: {type(exc).__name__}"
    if outcome.result is timer_firing.FireResult.NOT_DUE and outcome.due_at is not None:
        # Delivered before its time (clocks of hosts disagree): deliver again at the due
        # time, under an id of its own, since this job's id stays taken until it ends.
        log.info("timer %s delivered early; due %s", timer_id, outcome.due_at)
        delivery.schedule(
            rt.queue,
            DueTimer(timer_id, outcome.due_at, attempt),
            now=now,
            suffix=f"-early-{int(now.timestamp())}",
        )
    log.debug("timer %s: %s %s", timer_id, outcome.result.value, outcome.note)
    return outcome.result.value
