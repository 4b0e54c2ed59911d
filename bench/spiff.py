"""svcflow beside SpiffWorkflow: the same small ticket process in both engines, every step
persisted to SQLite, in one run.

The process (a six-step service ticket with a one-hour contact timer): a ticket is logged; the
customer must be contacted within 1 hour (else the contact is overdue and still owed); then
diagnosis, dispatch, the engineer's arrival, the repair (which may be noted again and again
before it is done: the loop that lets one ticket take 1,000 steps), and closing.

* *svcflow*: :data:`DEFINITION` below, published with ``engine.services.definitions.publish``;
  a ticket is created with ``engine.services.cases.create_case`` (which arms its 1-hour
  ``contact_overdue`` state timer) and each step is ``engine.services.cases.fire`` in its own
  ``with session.begin()``, on an engine from ``create_db_engine`` (SQLite, WAL,
  ``BEGIN IMMEDIATE``), migrated by ``engine.store.migrate``: svcflow's real services.
* *SpiffWorkflow* (3.x, an optional bench dependency: ``pip install -e '.[bench]'``):
  :data:`BPMN` below, written for this bench (a user task per step, an interrupting boundary
  timer ``PT1H`` on the contact task leading to a late-contact task, an exclusive gateway
  looping the repair task until ``done``). A ticket is ``BpmnWorkflow(spec)`` plus
  ``do_engine_steps()``, stored as ``BpmnWorkflowSerializer().serialize_json(...)`` in a table
  of its own in the same SQLite database; each step reads the row back, deserializes, runs
  the ready task with the step's data, runs the engine steps, serializes and UPDATEs the row,
  in one transaction on the same kind of engine. Both engines read the ticket and write it
  back on every step; the spec is parsed once, as svcflow compiles its machine once.

Measured in one process, the two engines alternating in ``--rounds`` rounds (the one that goes
first swapping each round), median over the rounds:

* *creation*: ms per ticket created and persisted (``--tickets`` per round);
* *persisted step*: ms per step of the six-step journey on fresh tickets (``--tickets`` per
  round, each through its six steps);
* *growth*: one ticket per engine takes ``--long`` steps (the repair noted again and again);
  the median cost of the 21 steps around step 10 against those around the last step.

Printed: each figure per engine, ``ratio`` = Spiff's time / svcflow's (how many times faster
svcflow is), and ``growth`` = t(step ``--long``) / t(step 10) per engine. Targets: ratio >= 10
per persisted step, >= 2 at creation, svcflow's growth <= 1.25 (flat). Exits 1 when one is
missed. ``--profile`` adds a cProfile of svcflow's creation and step. Results:
docs/benchmarks.md.

    python bench/spiff.py [--rounds 5] [--tickets 100] [--long 1000] [--profile]
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/spiff.py` puts bench/ first on sys.path, where bench/calendar.py and
# bench/transitions.py would shadow the standard library and the state machine library. Drop
# it; use the repository root.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import cProfile  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from importlib.metadata import version  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import Column, Engine, Integer, MetaData, Table, Text, insert, select, update  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from engine.core.machine import Actor  # noqa: E402
from engine.services.cases import create_case, fire  # noqa: E402
from engine.services.definitions import publish  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.case_store import get_case  # noqa: E402
from engine.store.database import create_db_engine, session_factory  # noqa: E402

try:
    from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState
except ImportError:  # pragma: no cover - told on the command line
    raise SystemExit(
        "SpiffWorkflow is not installed: pip install -e '.[bench]' (an optional bench "
        "dependency, not a runtime one)"
    ) from None

TARGET_STEP = 10.0
TARGET_CREATE = 2.0
TARGET_GROWTH = 1.25
NAME = "bench_ticket"
ACTOR = Actor("bench", frozenset({"integrator"}))
T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)

# The six steps with the data each records (Spiff: the task's data; svcflow: the payload the
# transition's actions copy into the case data).
STEPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("contact", {"contacted_by": "hotline-3"}),
    ("diagnose", {"diagnosis": "power board"}),
    ("dispatch", {"engineer": "eng-7"}),
    ("arrive", {"arrived": True}),
    ("repair", {"done": True}),
    ("close", {"feedback": "device runs"}),
)
NOTE = ("repair", {"done": False})  # the repair noted, not done: the step that loops

DEFINITION = f"""
name: {NAME}
title: {{en: Six-step ticket, zh: 六步工单}}
initial: logged
data_schema:
  type: object
  required: [customer]
  properties:
    customer: {{type: string}}
    contacted_by: {{type: string}}
    diagnosis: {{type: string}}
    engineer: {{type: string}}
    arrived: {{type: boolean}}
    notes: {{type: integer, minimum: 0}}
    done: {{type: boolean}}
    feedback: {{type: string}}
states:
  - name: logged
    title: {{en: Logged, zh: 已登记}}
    timers:
      - name: contact_overdue
        after: 1h
        trigger: contact_overdue
  - name: contact_late
    title: {{en: Contact overdue, zh: 联系超时}}
  - name: diagnosing
    title: {{en: Diagnosing, zh: 诊断中}}
  - name: awaiting_dispatch
    title: {{en: Awaiting dispatch, zh: 待派工}}
  - name: dispatched
    title: {{en: Dispatched, zh: 已派工}}
  - name: repairing
    title: {{en: Repairing, zh: 维修中}}
  - name: resolved
    title: {{en: Resolved, zh: 已修复}}
  - name: closed
    title: {{en: Closed, zh: 已关闭}}
    final: true
transitions:
  - trigger: contact_overdue
    source: logged
    dest: contact_late
  - trigger: contact
    source: [logged, contact_late]
    dest: diagnosing
    payload_schema:
      type: object
      required: [contacted_by]
      properties: {{contacted_by: {{type: string}}}}
    actions:
      - set: {{contacted_by: payload.contacted_by}}
  - trigger: diagnose
    source: diagnosing
    dest: awaiting_dispatch
    payload_schema:
      type: object
      required: [diagnosis]
      properties: {{diagnosis: {{type: string}}}}
    actions:
      - set: {{diagnosis: payload.diagnosis}}
  - trigger: dispatch
    source: awaiting_dispatch
    dest: dispatched
    payload_schema:
      type: object
      required: [engineer]
      properties: {{engineer: {{type: string}}}}
    actions:
      - set: {{engineer: payload.engineer}}
  - trigger: arrive
    source: dispatched
    dest: repairing
    payload_schema:
      type: object
      required: [arrived]
      properties: {{arrived: {{type: boolean}}}}
    actions:
      - set: {{arrived: payload.arrived}}
  - trigger: repair
    source: repairing
    dest: repairing
    guard: "!payload.done"
    payload_schema: &repair_payload
      type: object
      required: [done]
      properties: {{done: {{type: boolean}}}}
    actions:
      - increment: notes
  - trigger: repair
    source: repairing
    dest: resolved
    guard: "payload.done"
    payload_schema: *repair_payload
    actions:
      - set: {{done: payload.done}}
  - trigger: close
    source: resolved
    dest: closed
    payload_schema:
      type: object
      required: [feedback]
      properties: {{feedback: {{type: string}}}}
    actions:
      - set: {{feedback: payload.feedback}}
"""

# The same process in BPMN, for SpiffWorkflow (timer and condition expressions are Python, as
# Spiff evaluates them).
BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="bench_ticket_definitions" targetNamespace="urn:svcflow:bench">
  <bpmn:process id="bench_ticket" isExecutable="true">
    <bpmn:startEvent id="logged"/>
    <bpmn:sequenceFlow id="to_contact" sourceRef="logged" targetRef="contact"/>
    <bpmn:userTask id="contact" name="Contact the customer"/>
    <bpmn:boundaryEvent id="contact_overdue" attachedToRef="contact" cancelActivity="true">
      <bpmn:timerEventDefinition>
        <bpmn:timeDuration>"PT1H"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="overdue" sourceRef="contact_overdue" targetRef="contact_late"/>
    <bpmn:userTask id="contact_late" name="Contact the customer, overdue"/>
    <bpmn:sequenceFlow id="late_done" sourceRef="contact_late" targetRef="contacted"/>
    <bpmn:sequenceFlow id="contact_done" sourceRef="contact" targetRef="contacted"/>
    <bpmn:exclusiveGateway id="contacted" default="to_diagnose"/>
    <bpmn:sequenceFlow id="to_diagnose" sourceRef="contacted" targetRef="diagnose"/>
    <bpmn:userTask id="diagnose" name="Diagnose"/>
    <bpmn:sequenceFlow id="to_dispatch" sourceRef="diagnose" targetRef="dispatch"/>
    <bpmn:userTask id="dispatch" name="Dispatch an engineer"/>
    <bpmn:sequenceFlow id="to_arrive" sourceRef="dispatch" targetRef="arrive"/>
    <bpmn:userTask id="arrive" name="Engineer on site"/>
    <bpmn:sequenceFlow id="to_repair" sourceRef="arrive" targetRef="repair"/>
    <bpmn:userTask id="repair" name="Repair (or note progress)"/>
    <bpmn:sequenceFlow id="repair_step" sourceRef="repair" targetRef="repaired"/>
    <bpmn:exclusiveGateway id="repaired" default="again"/>
    <bpmn:sequenceFlow id="again" sourceRef="repaired" targetRef="repair"/>
    <bpmn:sequenceFlow id="to_close" sourceRef="repaired" targetRef="close">
      <bpmn:conditionExpression>done</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:userTask id="close" name="Close with feedback"/>
    <bpmn:sequenceFlow id="to_closed" sourceRef="close" targetRef="closed"/>
    <bpmn:endEvent id="closed"/>
  </bpmn:process>
</bpmn:definitions>
"""

spiff_meta = MetaData()
spiff_workflows = Table(
    "spiff_workflows",
    spiff_meta,
    Column("id", Integer, primary_key=True),
    Column("state", Text, nullable=False),
)


# --- the two engines ---------------------------------------------------------------------------


class Svcflow:
    """Tickets through svcflow's services, one transaction per creation and per step."""

    name = "svcflow"

    def __init__(self, engine: Engine) -> None:
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self.serial = 0
        self.now = T0

    def _tick(self) -> datetime:
        self.now += timedelta(seconds=1)  # within the hour: the contact timer never falls due
        return self.now

    def create(self) -> int:
        self.serial += 1
        with self.sessions() as session, session.begin():
            data = {"customer": f"hospital-{self.serial}"}
            return create_case(session, NAME, data, actor=ACTOR, now=self._tick()).case.id

    def step(self, ticket: int, trigger: str, data: dict[str, Any]) -> None:
        with self.sessions() as session, session.begin():
            fire(session, ticket, trigger, data, actor=ACTOR, now=self._tick())


class Stuck(Exception):
    """The engine found no ready task for the step."""


class Spiff:
    """Tickets through SpiffWorkflow, serialized to a row of their own per creation and step."""

    name = "spiff"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        spiff_meta.create_all(engine)
        parser = BpmnParser()
        parser.add_bpmn_str(BPMN.encode(), filename="bench_ticket.bpmn")
        self.spec = parser.get_spec("bench_ticket")
        self.serializer = BpmnWorkflowSerializer()
        self.steps_taken = 0

    def create(self) -> int:
        workflow = BpmnWorkflow(self.spec)
        workflow.do_engine_steps()
        state = self.serializer.serialize_json(workflow)
        with self.engine.begin() as conn:
            return int(
                conn.execute(insert(spiff_workflows).values(state=state)).inserted_primary_key[0]
            )

    def step(self, ticket: int, task: str, data: dict[str, Any]) -> None:
        if task == STEPS[0][0]:
            self.steps_taken = 0  # a new ticket's first step
        with self.engine.begin() as conn:
            state = conn.execute(
                select(spiff_workflows.c.state).where(spiff_workflows.c.id == ticket)
            ).scalar_one()
            workflow = self.serializer.deserialize_json(state)
            ready = [
                t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.name == task
            ]
            if len(ready) != 1:
                # Spiff walks its task tree to a depth of 1,000 (TaskIterator's max_depth)
                # and each turn of the loop adds two levels: past ~500 turns it finds no
                # ready task (the workflow reports itself completed).
                raise Stuck(
                    f"no ready {task!r} task after {self.steps_taken} steps "
                    f"(completed: {workflow.is_completed()})"
                )
            [ready] = ready
            self.steps_taken += 1
            ready.set_data(**data)
            ready.run()
            workflow.do_engine_steps()
            conn.execute(
                update(spiff_workflows)
                .where(spiff_workflows.c.id == ticket)
                .values(state=self.serializer.serialize_json(workflow))
            )

    def completed(self, ticket: int) -> bool:
        with self.engine.connect() as conn:
            state = conn.execute(
                select(spiff_workflows.c.state).where(spiff_workflows.c.id == ticket)
            ).scalar_one()
        return bool(self.serializer.deserialize_json(state).is_completed())


# --- measures ----------------------------------------------------------------------------------


@dataclass
class Figures:
    create_ms: list[float] = field(default_factory=list)  # per round
    step_ms: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)  # the long ticket, ms per step in order
    tickets: list[int] = field(default_factory=list)
    stuck: str | None = None  # why the long ticket stopped before --long steps


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    result = work()
    return result, (time.perf_counter() - began) * 1000


def round_of(engine: Svcflow | Spiff, n: int, figures: Figures) -> None:
    """Create ``n`` tickets, then take each through the six steps."""
    tickets, ms = timed(lambda: [engine.create() for _ in range(n)])
    figures.create_ms.append(ms / n)
    figures.tickets.extend(tickets)

    def journeys() -> None:
        for ticket in tickets:
            for task, data in STEPS:
                engine.step(ticket, task, data)

    _, ms = timed(journeys)
    figures.step_ms.append(ms / (n * len(STEPS)))


def long_ticket(engine: Svcflow | Spiff, steps: int, figures: Figures) -> None:
    """One ticket to the repair, then ``steps`` more steps noting the repair."""
    ticket = engine.create()
    for task, data in STEPS[:4]:
        engine.step(ticket, task, data)
    task, data = NOTE
    for _ in range(steps):
        try:
            _, ms = timed(lambda: engine.step(ticket, task, data))
        except Stuck as exc:
            figures.stuck = str(exc)
            return
        figures.steps.append(ms)


def around(values: list[float], at: int, width: int = 10) -> float:
    """Median of the steps around step ``at`` (1-based), the ``width`` before it and after: a
    median, so that one step that met a WAL checkpoint does not make a window."""
    lo, hi = max(0, at - 1 - width), min(len(values), at + width)
    return statistics.median(values[lo:hi])


def profile_svcflow(engine: Svcflow, n: int) -> None:
    profiler = cProfile.Profile()
    tickets = [profiler.runcall(engine.create) for _ in range(n)]
    for ticket in tickets:
        for task, data in STEPS:
            profiler.runcall(engine.step, ticket, task, data)
    print(f"\n--- cProfile of svcflow: {n} tickets created and taken through 6 steps ---")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(15)


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per engine")
    parser.add_argument("--tickets", type=int, default=100, help="tickets per round and engine")
    parser.add_argument("--long", type=int, default=1000, help="steps of the long ticket")
    parser.add_argument("--profile", action="store_true", help="cProfile svcflow's side")
    args = parser.parse_args(argv)
    if args.long < 30:
        parser.error("--long must be at least 30")

    print(
        f"svcflow vs SpiffWorkflow {version('SpiffWorkflow')}: {args.rounds} rounds x "
        f"{args.tickets} tickets, a ticket of {args.long} steps; SQLite, python "
        f"{platform.python_version()}, nproc {len(os.sched_getaffinity(0))}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    directory = tempfile.mkdtemp(prefix="svcflow-bench-spiff-")
    try:
        db = create_db_engine(f"sqlite:///{directory}/bench.db")
        migrate.upgrade(db)
        with session_factory(db)() as session, session.begin():
            publish(session, DEFINITION, actor="bench", now=T0)
        engines: dict[str, Svcflow | Spiff] = {"svcflow": Svcflow(db), "spiff": Spiff(db)}
        figures = {name: Figures() for name in engines}
        for engine in engines.values():  # warm-up: first statements, caches, parsing
            round_of(engine, 5, Figures())
        for i in range(args.rounds):
            order = list(engines) if i % 2 == 0 else list(reversed(engines))
            for name in order:
                round_of(engines[name], args.tickets, figures[name])
        for name in ("svcflow", "spiff") if args.rounds % 2 else ("spiff", "svcflow"):
            long_ticket(engines[name], args.long, figures[name])
        problems = check(engines, figures)
        if args.profile:
            engine = engines["svcflow"]
            assert isinstance(engine, Svcflow)
            profile_svcflow(engine, args.tickets)
        db.dispose()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return report(figures, args.long, problems)


def check(engines: dict[str, Svcflow | Spiff], figures: dict[str, Figures]) -> list[str]:
    """Every ticket of the rounds closed in both engines."""
    problems = []
    svcflow = engines["svcflow"]
    assert isinstance(svcflow, Svcflow)
    with svcflow.sessions() as session:
        open_ = [t for t in figures["svcflow"].tickets if get_case(session, t).state != "closed"]
    if open_:
        problems.append(f"svcflow: {len(open_)} tickets not closed")
    spiff = engines["spiff"]
    assert isinstance(spiff, Spiff)
    left = [t for t in figures["spiff"].tickets[:50] if not spiff.completed(t)]
    if left:
        problems.append(f"spiff: {len(left)} of 50 tickets looked at not completed")
    return problems


def report(figures: dict[str, Figures], long: int, problems: list[str]) -> int:
    ours, theirs = figures["svcflow"], figures["spiff"]
    misses: list[str] = []

    def line(label: str, a: list[float], b: list[float], target: float) -> None:
        mine, spiff = statistics.median(a), statistics.median(b)
        ratio = spiff / mine
        verdict = "met" if ratio >= target else "MISSED"
        if ratio < target:
            misses.append(label)
        print(
            f"  {label:<16} svcflow {mine:7.3f} ms  spiff {spiff:7.3f} ms  ratio {ratio:6.1f}"
            f"  (target >= {target:g}: {verdict}; rounds svcflow "
            f"{', '.join(f'{x:.2f}' for x in a)}; spiff {', '.join(f'{x:.2f}' for x in b)})"
        )

    print("\nmedian over the rounds (ratio = spiff / svcflow: how many times faster svcflow is)")
    line("creation", ours.create_ms, theirs.create_ms, TARGET_CREATE)
    line("persisted step", ours.step_ms, theirs.step_ms, TARGET_STEP)
    print(f"\none ticket of {long} steps, ms per step (median of the 21 steps around each)")
    for name, f in figures.items():
        last = len(f.steps) - 10
        early, late = around(f.steps, 10), around(f.steps, last)
        growth = late / early
        target = f"target <= {TARGET_GROWTH:g}: " + ("met" if growth <= TARGET_GROWTH else "MISSED")
        if name == "svcflow" and (growth > TARGET_GROWTH or f.stuck):
            misses.append("growth")
        print(
            f"  {name:<8} step 10 {early:7.3f} ms  step {last} {late:7.3f} ms  growth "
            f"{growth:5.2f}" + (f"  ({target})" if name == "svcflow" else "")
        )
        if f.stuck:
            print(f"           stopped after {len(f.steps) + 4} steps: {f.stuck}")
    common = min(len(ours.steps), len(theirs.steps)) - 10
    late_ratio = around(theirs.steps, common) / around(ours.steps, common)
    print(f"  ratio at step {common}: {late_ratio:.1f}")
    for problem in problems:
        print(f"  CHECK FAILED: {problem}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if misses or problems else 0


if __name__ == "__main__":
    sys.exit(main())
