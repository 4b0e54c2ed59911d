"""Journeys driven through the services, one transaction per step, each step timed.

A step is what a user's request or a timer's job is: ``with session.begin():`` around
``cases.create_case``, ``cases.fire`` or ``timer_firing.fire_due_timer``, on one Session
reused from step to step (as bench/transitions.py does). What a step needs that is not part
of it (which case a spawned child is, which timer falls due next, the state the step left) is
read before or after it, untimed, on a connection of its own.
"""

from __future__ import annotations

import cProfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bench.journeys import ENGINEER, HOTLINE, START, Create, Due, Journey, ticket_data
from bench.replay import BenchFailure, Recorder, StepRecord
from engine.services import cases, timer_firing
from engine.store.models import Base, TimerStatus

case_table = Base.metadata.tables["cases"]
timer_table = Base.metadata.tables["timers"]
event_table = Base.metadata.tables["case_events"]


class Driver:
    def __init__(self, engine: Engine, sessions: sessionmaker[Session]) -> None:
        self.engine = engine
        self.session = sessions()
        self.recorder: Recorder | None = None  # set: every step's statements are recorded
        self.profiler: cProfile.Profile | None = None  # set: it profiles the steps, nothing else
        self.steps: list[StepRecord] = []

    def close(self) -> None:
        self.session.close()

    def run(self, journeys: Sequence[Journey]) -> list[StepRecord]:
        """Every step of every journey, in order; returns the steps, timed."""
        self.steps = []
        for journey in journeys:
            self._journey(journey)
        return self.steps

    def timed(self, kind: str, label: str, action: Callable[[Session], Any]) -> Any:
        """One step: ``action`` in a transaction of its own, timed from begin to commit."""
        session, recorder, profiler = self.session, self.recorder, self.profiler
        if recorder is not None:
            recorder.start(kind, label)
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        with session.begin():
            result = action(session)
        ended = time.perf_counter()
        if profiler is not None:
            profiler.disable()
        if recorder is not None:
            self.steps.append(recorder.stop(ended - started, ended))
        else:
            self.steps.append(StepRecord(kind, label, ended - started))
        return result

    # --- one journey ---------------------------------------------------------------------------

    def _journey(self, journey: Journey) -> None:
        refs: dict[str, int] = {}
        root: int | None = None
        clock = START
        for index, step in enumerate(journey.steps):
            where = f"{journey.name} step {index} ({type(step).__name__} {step.ref})"
            if isinstance(step, Due):
                clock = self._due(journey, step, refs, root, clock=clock, where=where)
                continue
            now = START + step.at
            if now < clock:
                raise BenchFailure(f"{where}: {now} is before the journey's clock {clock}")
            clock = now
            timer = self.next_due(root)
            if timer is not None and timer.due_at <= now:
                raise BenchFailure(f"{where}: timer {timer.name!r} falls due first ({timer})")
            if isinstance(step, Create):
                created = self.timed(
                    "create",
                    f"{step.definition} create",
                    lambda s, c=step, n=now: cases.create_case(
                        s, c.definition, c.data, actor=c.actor, now=n
                    ),
                )
                refs[step.ref] = created.case.id
                root = created.case.id if root is None else root
                state = created.case.state
            else:
                case_id = self._case(journey, refs, root, step.ref, where)
                fired = self.timed(
                    "fire",
                    f"{step.ref}.{step.trigger}",
                    lambda s, f=step, c=case_id, n=now: cases.fire(
                        s, c, f.trigger, f.payload, actor=f.actor, now=n
                    ),
                )
                state = fired.case.state
            if state != step.expect:
                raise BenchFailure(f"{where}: reached {state!r}, expected {step.expect!r}")

    def _due(
        self,
        journey: Journey,
        step: Due,
        refs: dict[str, int],
        root: int | None,
        *,
        clock: datetime,
        where: str,
    ) -> datetime:
        """Fire the timer the step names, which must be the journey's next to fall due, at
        its due instant, the way a worker's job does."""
        timer = self.next_due(root)
        case_id = self._case(journey, refs, root, step.ref, where)
        if timer is None or (timer.case_id, timer.name) != (case_id, step.timer):
            raise BenchFailure(f"{where}: expected {step.timer!r} due next, found {timer}")
        outcome = self.timed(
            "timer",
            f"timer {step.timer.split(':')[0]}",
            lambda s: timer_firing.fire_due_timer(s, timer.id, now=timer.due_at),
        )
        if outcome.result is not timer_firing.FireResult.FIRED:
            raise BenchFailure(f"{where}: timer {timer.id} {outcome.result}: {outcome.note}")
        self.expect_state(case_id, step.expect, where)
        return max(clock, timer.due_at)  # type: ignore[no-any-return]

    def _case(
        self, journey: Journey, refs: dict[str, int], root: int | None, ref: str, where: str
    ) -> int:
        """The case a step names; a child is looked up once it exists."""
        if ref not in refs:
            definition = journey.children.get(ref)
            if root is None or definition is None:
                raise BenchFailure(f"{where}: no case {ref!r} yet")
            with self.engine.connect() as conn:
                found = list(
                    conn.execute(
                        select(case_table.c.id).where(
                            case_table.c.parent_id == root,
                            case_table.c.definition_name == definition,
                        )
                    ).scalars()
                )
            if len(found) != 1:
                raise BenchFailure(f"{where}: {len(found)} {definition} children, expected 1")
            refs[ref] = found[0]
        return refs[ref]

    def next_due(self, root: int | None) -> Row[Any] | None:
        """The journey's armed timer that falls due first (its cases: the root and its
        children), as a batch job or the sweeper would find it."""
        if root is None:
            return None
        family = select(case_table.c.id).where(
            or_(case_table.c.id == root, case_table.c.parent_id == root)
        )
        query = (
            select(
                timer_table.c.id, timer_table.c.case_id, timer_table.c.name, timer_table.c.due_at
            )
            .where(
                timer_table.c.status == TimerStatus.ARMED.value,
                timer_table.c.case_id.in_(family),
            )
            .order_by(timer_table.c.due_at, timer_table.c.id)
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).one_or_none()

    def armed_timer(self, case_id: int, name: str) -> Row[Any]:
        with self.engine.connect() as conn:
            return conn.execute(
                select(timer_table.c.id, timer_table.c.due_at).where(
                    timer_table.c.case_id == case_id,
                    timer_table.c.name == name,
                    timer_table.c.status == TimerStatus.ARMED.value,
                )
            ).one()

    def expect_state(self, case_id: int, expected: str, where: str) -> None:
        with self.engine.connect() as conn:
            state = conn.execute(
                select(case_table.c.state).where(case_table.c.id == case_id)
            ).scalar_one()
        if state != expected:
            raise BenchFailure(f"{where}: case is in {state!r}, expected {expected!r}")

    # --- single tickets, for the growth and the statement model ---------------------------------

    def ticket(self, serial: str, now: datetime, *, to: str = "dispatched", events: int = 4) -> int:
        """A new repair ticket moved to ``to`` (logged, remote_diagnosis, awaiting_dispatch
        or dispatched); in dispatched, confirm_visit self-loops follow until its history holds
        ``events`` events (4 to get there). Untimed."""
        session = self.session
        with session.begin():
            case_id: int = cases.create_case(
                session, "repair_ticket", ticket_data(serial), actor=HOTLINE, now=now
            ).case.id
        reached = "logged"
        for trigger, payload, state in (
            ("contact", {"at": now.isoformat()}, "remote_diagnosis"),
            ("remote_failed", {"reason": "需上门"}, "awaiting_dispatch"),
            ("dispatch", {"engineer": "李工"}, "dispatched"),
        ):
            if reached == to:
                return case_id
            with session.begin():
                cases.fire(session, case_id, trigger, payload, actor=HOTLINE, now=now)
            reached = state
        for i in range(events - 4):
            with session.begin():
                confirm_visit(session, case_id, now + timedelta(milliseconds=i + 1))
        with self.engine.connect() as conn:
            held = conn.execute(
                select(func.count()).where(event_table.c.case_id == case_id)
            ).scalar_one()
        if held != events:
            raise BenchFailure(f"ticket {case_id} holds {held} events, not {events}")
        return case_id


def confirm_visit(session: Session, case_id: int, now: datetime) -> None:
    """The repair ticket's self-loop in dispatched; checked, since a guard could refuse it."""
    out = cases.fire(
        session, case_id, "confirm_visit", {"confirmed_with": "设备科"}, actor=ENGINEER, now=now
    )
    if out.case.state != "dispatched":
        raise BenchFailure(f"confirm_visit left ticket {case_id} in {out.case.state!r}")
