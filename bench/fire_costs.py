"""The statements one step issues, and what each costs: the performance model's figures.

Five kinds of step, each repeated on the bundled workflows with every statement recorded
(bench/replay.py's Recorder: the time from ``before_cursor_execute`` to
``after_cursor_execute``, i.e. the DBAPI call with its round trip, without SQLAlchemy's own
work before and after it). A step's time splits into its statements, its commit (from the
``commit`` event to the end of the transaction, returning the connection included) and the
rest, which is Python: the engine's and SQLAlchemy's.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from bench.driver import Driver, confirm_visit
from bench.journeys import HOTLINE, START
from bench.replay import Recorder, StepRecord
from engine.services import cases, timer_firing


@dataclass
class StepKind:
    title: str
    steps: list[StepRecord]


def label(sql: str) -> str:
    """A short name for a statement: verb, table and the columns it matches on."""
    text = " ".join(sql.split())
    verb = text.split()[0].upper()
    found = re.search(r"\b(?:FROM|INTO|UPDATE) (\w+)", text)
    if verb not in ("SELECT", "INSERT", "UPDATE", "DELETE") or found is None:
        return text[:40]
    where = text.split(" WHERE ", 1)[1] if " WHERE " in text else ""
    columns = list(dict.fromkeys(re.findall(r"\w+\.(\w+) (?:=|IN|IS|>|<)", where)))
    by = f" by {', '.join(columns)}" if columns else ""
    lock = " FOR UPDATE" if text.endswith("FOR UPDATE") else ""
    return f"{verb} {found.group(1)}{by}{lock}"


def measure(driver: Driver, reps: int) -> list[StepKind]:
    """Each kind of step ``reps`` times on cases prepared for it (untimed)."""
    base = START + timedelta(days=60)
    session = driver.session
    with session.begin():
        stock = cases.create_case(
            session,
            "spare_stock",
            {"part_model": "MODEL-STOCK", "on_hand": 10, "avg_monthly_usage": 1.0},
            actor=HOTLINE,
            now=base,
            business_key="MODEL-STOCK",
        ).case.id
    waiting = [driver.ticket(f"MODEL-D-{r}", base, to="awaiting_dispatch") for r in range(reps)]
    looping = driver.ticket("MODEL-LOOP", base, events=6)
    logged = [driver.ticket(f"MODEL-T-{r}", base, to="logged") for r in range(reps)]

    def at(minutes: int, r: int) -> Any:
        return base + timedelta(minutes=minutes, seconds=r)

    def returned(r: int) -> Callable[[Session], Any]:
        return lambda s: cases.fire(s, stock, "part_returned", {}, actor=HOTLINE, now=at(0, r))

    def dispatch(r: int) -> Callable[[Session], Any]:
        return lambda s: cases.fire(
            s, waiting[r], "dispatch", {"engineer": "李工"}, actor=HOTLINE, now=at(5, r)
        )

    def loop(r: int) -> Callable[[Session], Any]:
        return lambda s: confirm_visit(s, looping, at(10, r))

    def due(name: str) -> Callable[[int], Callable[[Session], Any]]:
        timers = [driver.armed_timer(case_id, name) for case_id in logged]

        def step(r: int) -> Callable[[Session], Any]:
            timer = timers[r]
            return lambda s: timer_firing.fire_due_timer(s, timer.id, now=timer.due_at)

        return step

    plan: list[tuple[str, str, Callable[[int], Callable[[Session], Any]]]] = [
        (
            "plain fire: spare_stock part_returned (no SLA; a self-loop, timers untouched)",
            "fire",
            returned,
        ),
        (
            "repair-ticket fire with SLAs: dispatch (awaiting_dispatch -> dispatched)",
            "fire",
            dispatch,
        ),
        ("self-loop: repair_ticket confirm_visit in dispatched", "fire", loop),
        (
            "due SLA timer: first_contact warning 45 min after logging",
            "timer",
            due("sla:first_contact:sla_warning:0.75"),
        ),
        (
            "due state timer: contact_overdue (logged -> contact_late)",
            "timer",
            due("contact_overdue"),
        ),
    ]
    recorder = Recorder(driver.engine, track_ids=False)
    driver.recorder = recorder
    out = []
    try:
        for title, kind, make in plan:
            driver.steps = []
            for r in range(reps):
                driver.timed(kind, title, make(r))
            out.append(StepKind(title, driver.steps))
    finally:
        recorder.close()
        driver.recorder = None
    return out


def report(database: str, kinds: Sequence[StepKind]) -> None:
    print(f"\n{database}: the statements of one step (medians over the repetitions)")
    for kind in kinds:
        times: dict[str, list[float]] = defaultdict(list)
        counts: Counter[str] = Counter()
        for step in kind.steps:
            for statement in step.statements:
                times[label(statement.sql)].append(statement.seconds)
                counts[label(statement.sql)] += 1
        reps = len(kind.steps)
        total = statistics.median(s.seconds for s in kind.steps)
        in_db = statistics.median(sum(st.seconds for st in s.statements) for s in kind.steps)
        commit = statistics.median(s.commit_seconds for s in kind.steps)
        statements = statistics.median(len(s.statements) for s in kind.steps)
        print(
            f"  {kind.title}\n    {statements:.0f} statements; step {total * 1e3:.2f} ms = "
            f"statements {in_db * 1e3:.2f} + commit {commit * 1e3:.2f} + Python "
            f"{(total - in_db - commit) * 1e3:.2f}  ({reps} repetitions)"
        )
        for name, seconds in times.items():
            each = statistics.median(seconds) * 1e6
            print(f"      {counts[name] / reps:4.1f} x {each:6.0f} us  {name}")
