"""``svcflow demo``: a living, back-dated service desk in an empty database.

Nothing is written into the tables directly. The demo publishes the bundled workflows and
drives the real engine on virtual time, from ``days`` ago up to now: it opens repair
tickets, complaints, spare-part requests, device files, maintenance visits, follow-up calls
and stocks for several customers and teams, moves each case some way along its usual path
(as the hotline, the engineers' app, the parts store would), and between those steps fires
every timer that falls due, each at its own instant, as the workers would have (the same
:class:`engine.simulation.Simulator` the scenarios use). Where a case's path stops, its
clocks keep running: the dashboard shows overdue and breached promises, warnings, silent
stalls, cases dwelling past their state's 95th percentile, clocks an operator paused, and
tickets whose loaner was cancelled. Timers due after now stay armed for the workers.

Everything is drawn from a seeded random generator: the same ``--cases`` and ``--seed`` at
the same instant give the same desk.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.machine import Actor
from engine.errors import OperationInvalid, SvcflowError
from engine.runtime.clock import ManualClock
from engine.services import cases, delivery_health, inspection, links, operations
from engine.services.definitions import publish
from engine.simulation import Simulator
from engine.store.models import Case

HOTLINE = Actor("demo:hotline", frozenset({"integrator"}))
ENGINEER = Actor("demo:engineer-app", frozenset({"integrator"}))
STORE = Actor("demo:parts-store", frozenset({"integrator"}))
PORTAL = Actor("demo:customer-portal", frozenset({"integrator"}))
MANAGER = Actor("demo:service-manager", frozenset({"supervisor"}))

CUSTOMERS = (
    "湘雅医院",
    "瑞金医院",
    "华山医院",
    "新乡市中心医院",
    "濮阳市人民医院",
    "郑州大学第一附属医院",
    "湛江市第一人民医院",
    "洛阳市中心医院",
)
TEAMS = ("华东一组", "华东二组", "华中组", "华南组")
ENGINEERS = ("陈工", "王工", "刘工", "张工", "李工", "赵工", "孙工", "周工")
MODELS = ("CT-Revo-64", "DR-2000", "US-Vivid-E9", "MR-Signa-1.5T")
# Shares of the cases by kind; the rest of each kind's data is drawn per case.
KINDS = ("repair", "complaint", "spare", "visit", "call")
WEIGHTS = (0.55, 0.12, 0.15, 0.08, 0.1)


@dataclass(frozen=True)
class Step:
    trigger: str
    actor: Actor
    after: timedelta  # from the case's creation
    payload: Callable[[datetime], dict[str, Any]] = lambda _: {}


@dataclass
class DemoReport:
    created: Counter[str] = field(default_factory=Counter)  # cases by definition, children too
    fired: int = 0
    timers_fired: int = 0
    stopped_early: int = 0  # paths that met a refusal (a timer moved the case first)
    findings: dict[str, int] = field(default_factory=dict)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _h(hours: float) -> timedelta:
    return timedelta(hours=hours)


def _repair_path(engineer: str) -> list[Step]:
    return [
        Step("contact", HOTLINE, _h(0.4), lambda t: {"at": _iso(t)}),
        Step("remote_failed", HOTLINE, _h(0.8), lambda _: {"reason": "远程诊断无法恢复"}),
        Step("dispatch", HOTLINE, _h(1.0), lambda _: {"engineer": engineer}),
        Step(
            "confirm_visit",
            ENGINEER,
            _h(1.3),
            lambda t: {"confirmed_with": "设备科", "planned_arrival": _iso(t + _h(1.5))},
        ),
        Step("arrive", ENGINEER, _h(2.7)),
        Step(
            "diagnose",
            ENGINEER,
            _h(3.5),
            lambda t: {
                "diagnosis": "电源板故障",
                "plan": "更换电源板",
                "cause": "normal_use",
                "warranty_until": _iso(t + timedelta(days=400)),
            },
        ),
        Step("consent", ENGINEER, _h(4.0), lambda _: {"consented_by": "设备科主任"}),
        Step("repair_done", ENGINEER, _h(7.0)),
        Step("sign", ENGINEER, _h(7.5), lambda _: {"signed_by": "设备科主任"}),
        Step(
            "deliver_report",
            ENGINEER,
            _h(30),
            lambda t: {
                "report_no": f"SR-{t:%y%m%d%H%M}",
                "performance_test_passed": True,
                "operator_instructed": True,
            },
        ),
        Step("close", ENGINEER, _h(31), lambda _: {"feedback": "设备运行正常"}),
    ]


_TEAM_OF_THREE = {"manager": "赵敏", "expert": "陈工"}
COMPLAINT_PATH = [
    Step("contact", HOTLINE, _h(3), lambda t: {"manager": "赵敏", "complaint_form": "TS-demo"}),
    Step(
        "conclude_not_at_fault",
        HOTLINE,
        _h(40),
        lambda _: {
            "team": {**_TEAM_OF_THREE, "regional_lead": "周经理"},
            "responsibility": "外力撞击所致，非产品质量问题",
            "answer_ref": "DF-demo",
            "evidence": ["现场照片"],
        },
    ),
    Step(
        "agree_next_steps",
        HOTLINE,
        _h(60),
        lambda _: {"next_steps": "按成本价更换", "agreed_by": "科室主任"},
    ),
    Step(
        "close",
        MANAGER,
        _h(80),
        lambda _: {"report_ref": "TSBG-demo", "archived_by": "档案室"},
    ),
]
SPARE_PATH = [
    Step("approve", STORE, _h(0.5), lambda _: {"reviewed_by": "备件员孙丽"}),
    Step(
        "issue",
        STORE,
        _h(3),
        lambda _: {"outbound_record": "CK-demo", "signed_by": "王工", "store": "郑州中心库"},
    ),
    Step("arrive_on_site", ENGINEER, _h(10)),
    Step("install", ENGINEER, _h(30), lambda _: {"device_serial": "DEV-demo"}),
]
VISIT_PATH = [
    Step(
        "schedule",
        ENGINEER,
        _h(20),
        lambda t: {"engineer": "刘工", "planned_for": _iso(t + timedelta(days=3))},
    ),
]
CALL_PATH = [
    Step("call_done", HOTLINE, _h(26), lambda _: {"called_by": "回访专员", "outcome": "satisfied"}),
]


@dataclass
class _Case:
    kind: str
    created_at: datetime
    definition: str
    data: dict[str, Any]
    business_key: str | None
    path: list[Step]
    stop: int  # how many steps of its path the case takes
    case_id: int | None = None


def _plan(rng: random.Random, n: int, start: datetime, now: datetime) -> list[_Case]:
    """``n`` cases created over ``[start, now)``, each with the steps it will take."""
    planned: list[_Case] = []
    # The installed base: each device at one customer; about three cases per device.
    fleet = [
        (f"{model[:2]}-{2022 + i % 4}-{i:04d}", customer, model)
        for i in range(max(8, n // 3))
        for customer, model in [(rng.choice(CUSTOMERS), rng.choice(MODELS))]
    ]
    span = (now - start).total_seconds()
    for number in range(1, n + 1):
        kind = rng.choices(KINDS, WEIGHTS)[0]
        # More cases lately: a desk's open work is mostly recent, some of it from today.
        if rng.random() < 0.15:
            at = now - _h(12 * rng.random())
        else:
            at = start + timedelta(seconds=span * rng.random() ** 0.6)
        serial, customer, device_model = rng.choice(fleet)
        if kind == "repair":
            data = {
                "customer": customer,
                "device_serial": serial,
                "device_model": device_model,
                "fault": rng.choice(("开机无图像", "机架不旋转", "探头无信号", "报错 E-042")),
                "priority": "emergency" if rng.random() < 0.15 else "normal",
                "team": rng.choice(TEAMS),
                "distance_class": "same_city",
                "channel": "hotline",
            }
            path = _repair_path(rng.choice(ENGINEERS))
            key: str | None = f"T-{at:%Y}-{number:04d}"
        elif kind == "complaint":
            data = {
                "customer": customer,
                "channel": rng.choice(("hotline", "wechat", "email")),
                "device_serial": serial,
                "description": "维修后同一故障再次出现",
                "category": rng.choice(("quality", "non_quality")),
                "severity": rng.choice(("minor", "serious")),
                "regional_team": rng.choice(TEAMS),
            }
            path, key = COMPLAINT_PATH, f"C-{at:%Y}-{number:04d}"
        elif kind == "spare":
            model = f"PB-{200 + number % 30}"
            data = {
                "part_model": model,
                "part_name": "电源板",
                "requested_by": rng.choice(ENGINEERS),
                "customer": customer,
            }
            path, key = SPARE_PATH, f"SP-{at:%Y}-{number:04d}"
        elif kind == "visit":
            data = {"device_serial": serial, "customer": customer}
            path, key = VISIT_PATH, f"PM-{at:%Y}-{number:04d}"
        else:
            data = {"customer": customer, "device_serial": serial}
            path, key = CALL_PATH, f"FU-{at:%Y}-{number:04d}"
        # Old cases mostly finished their path; recent ones are on their way.
        age = (now - at).total_seconds() / span
        stop = len(path) if rng.random() < 0.35 + 0.6 * age else rng.randrange(len(path) + 1)
        definition = {
            "repair": "repair_ticket",
            "complaint": "complaint",
            "spare": "spare_part",
            "visit": "preventive_maintenance",
            "call": "follow_up",
        }[kind]
        planned.append(_Case(kind, at, definition, data, key, path, stop))
    return planned


def _devices(session: Session, planned: list[_Case], at: datetime, actor: Actor) -> int:
    """A device file for each device the tickets name, in service since before the demo
    began, so tickets attach to it and report their repairs (R-KPI-01)."""
    made = 0
    for serial, customer in sorted(
        {(c.data["device_serial"], c.data["customer"]) for c in planned if c.kind == "repair"}
    ):
        out = cases.create_case(
            session,
            "device",
            {"device_serial": serial, "customer": customer},
            actor=actor,
            now=at,
            business_key=serial,
        )
        cases.fire(session, out.case.id, "register", {"accepted_at": _iso(at)}, actor=actor, now=at)
        made += 1
    return made


def _stocks(session: Session, at: datetime) -> int:
    for model in ("PB-200", "PB-210", "PB-220"):
        cases.create_case(
            session,
            "spare_stock",
            {"part_model": model, "part_name": "电源板", "on_hand": 12, "avg_monthly_usage": 2},
            actor=STORE,
            now=at,
            business_key=f"STOCK-{model}",
        )
    return 3


def refuse_unless_empty(session: Session, now: datetime) -> None:
    """The demo only fills an empty database (its cases would mix with real work), and only
    while no worker runs on it: a worker's sweeper would deliver the demo's back-dated timers
    at the real present, before the demo's virtual clock reaches them."""
    alive = [w.name for w in delivery_health.report(session, now=now).workers if w.alive]
    if alive:
        raise OperationInvalid(
            f"Workers are running on this database ({', '.join(alive)}).",
            hint="Stop `make run` (Ctrl-C), run `svcflow demo`, then `make run` again.",
            workers=alive,
        )
    existing = session.execute(select(func.count()).select_from(Case)).scalar_one()
    if existing:
        raise OperationInvalid(
            f"The database already holds {existing} cases; the demo fills an empty one only.",
            hint="Point SVCFLOW_DATABASE_URL at a new database (or, for a local try-out, "
            "remove var/svcflow.db) and run `svcflow demo` again.",
            cases=existing,
        )


def run_demo(
    sessions: sessionmaker[Session],
    workflows: Path,
    *,
    now: datetime,
    cases_wanted: int = 200,
    days: int = 45,
    seed: int = 17,
) -> DemoReport:
    """Seed the desk and return what was done. ``now`` is the real present: the virtual clock
    stops there."""
    if cases_wanted < 1:
        raise OperationInvalid(
            f"--cases must be at least 1, not {cases_wanted}.", hint="Try --cases 200."
        )
    rng = random.Random(seed)
    start = now - timedelta(days=days)
    report = DemoReport()
    with sessions() as session, session.begin():
        refuse_unless_empty(session, now)
        for path in sorted(workflows.glob("*.yaml")):
            publish(session, path.read_text("utf-8"), actor="demo", now=start)
    planned = _plan(rng, cases_wanted, start, now)
    with sessions() as session, session.begin():
        report.created["device"] = _devices(session, planned, start, HOTLINE)
        report.created["spare_stock"] = _stocks(session, start)
    clock = ManualClock(start)
    sim = Simulator(sessions, clock)
    for at, action in _timeline(rng, planned):
        if at > now:
            break  # what would happen later is what the dashboard shows as waiting
        sim.advance_to(max(at, clock.now()))
        action(sessions, clock.now(), report)
    sim.advance_to(now)
    report.timers_fired = sim.timers_fired
    with sessions() as session, session.begin():
        inspection.refresh_dwell_stats(session, now=now)
        report.created = Counter(
            dict(
                session.execute(
                    select(Case.definition_name, func.count()).group_by(Case.definition_name)
                ).all()
            )
        )
        report.findings = {
            reason: count for reason, count in inspection.counts(session, now=now).items() if count
        }
    return report


Action = Callable[[sessionmaker[Session], datetime, DemoReport], None]


def _timeline(rng: random.Random, planned: list[_Case]) -> list[tuple[datetime, Action]]:
    """Every create, step and operator intervention, in the order they happen."""
    events: list[tuple[datetime, int, Action]] = []
    order = 0
    for case in planned:
        loaner = case.kind == "repair" and case.stop >= 7 and rng.random() < 0.4
        # Some loans end badly: the parts are awaited, the hospital gives the loaner back
        # unused and the loaner case is cancelled; the ticket stays repairing.
        cancelled = loaner and rng.random() < 0.3
        if cancelled:
            case.stop = 7
        events.append((case.created_at, order, _creator(case)))
        order += 1
        for step in case.path[: case.stop]:
            events.append((case.created_at + step.after, order, _stepper(case, step)))
            order += 1
        if loaner:
            when = case.created_at + _h(5)
            events.append((when, order, _stepper(case, Step("request_loaner", ENGINEER, _h(5)))))
            events.append((when + _h(1), order + 1, _loaner(case, "deliver", LOANER_DELIVERY)))
            if cancelled:
                events.append((when + _h(20), order + 2, _loaner_cancelled(case)))
            else:
                events.append((when + _h(1.5), order + 2, _loaner(case, "put_in_use", IN_USE)))
            if case.stop >= 8:  # repaired: the loaner goes back
                back = case.created_at + _h(7.2)
                events.append((back, order + 3, _loaner(case, "return_loaner", RETURNED)))
            order += 4
        if case.kind == "repair" and case.stop in (2, 7) and rng.random() < 0.25:
            # The hospital asks to wait: a supervisor pauses the resolution clock.
            last = case.path[case.stop - 1].after
            events.append((case.created_at + last + _h(0.1), order, _paused(case)))
            order += 1
    events.sort(key=lambda e: (e[0], e[1]))
    return [(at, action) for at, _, action in events]


def _creator(case: _Case) -> Action:
    def create(sessions: sessionmaker[Session], now: datetime, report: DemoReport) -> None:
        with sessions() as session, session.begin():
            out = cases.create_case(
                session,
                case.definition,
                case.data,
                actor=HOTLINE,
                now=now,
                business_key=case.business_key,
            )
        case.case_id = out.case.id
        report.created[case.definition] += 1

    return create


def _stepper(case: _Case, step: Step) -> Action:
    def fire(sessions: sessionmaker[Session], now: datetime, report: DemoReport) -> None:
        if case.case_id is None:
            return
        try:
            with sessions() as session, session.begin():
                cases.fire(
                    session,
                    case.case_id,
                    step.trigger,
                    step.payload(now),
                    actor=step.actor,
                    now=now,
                )
        except SvcflowError:
            # A timer or an earlier refusal moved the case off its usual path: it stays
            # where it is, as a real case would until someone looks at it.
            case.case_id = None
            report.stopped_early += 1
            return
        report.fired += 1

    return fire


LOANER_DELIVERY = {
    "loaner_model": "DR-3000",
    "loaner_serial": "LN-demo",
    "spec_equal_or_better": True,
    "delivered_by": "陈工",
}
IN_USE = {"received_by": "设备科"}
RETURNED = {"condition": "完好"}


def _loaner(case: _Case, trigger: str, payload: Mapping[str, Any]) -> Action:
    """A step of the loaner the ticket asked for (if it still has one open)."""

    def fire(sessions: sessionmaker[Session], now: datetime, report: DemoReport) -> None:
        if case.case_id is None:
            return
        with sessions() as session, session.begin():
            for child in links.children(session, case.case_id):
                if child.definition_name == "loaner" and child.status == "open":
                    actor = PORTAL if trigger == "put_in_use" else ENGINEER
                    if child.state not in {"offered", "delivered", "in_use"}:
                        continue
                    cases.fire(session, child.id, trigger, dict(payload), actor=actor, now=now)
                    report.fired += 1

    return fire


def _loaner_cancelled(case: _Case) -> Action:
    def cancel(sessions: sessionmaker[Session], now: datetime, report: DemoReport) -> None:
        if case.case_id is None:
            return
        with sessions() as session, session.begin():
            for child in links.children(session, case.case_id):
                if child.definition_name == "loaner" and child.status == "open":
                    cases.cancel_case(
                        session, child.id, actor=MANAGER, now=now, reason="客户改用科室备用设备"
                    )

    return cancel


def _paused(case: _Case) -> Action:
    def pause(sessions: sessionmaker[Session], now: datetime, report: DemoReport) -> None:
        if case.case_id is None:
            return
        try:
            with sessions() as session, session.begin():
                operations.set_sla_paused(
                    session,
                    case.case_id,
                    "resolution",
                    True,
                    actor=MANAGER,
                    reason="医院要求暂缓维修，等待科室安排停机时间",
                    now=now,
                )
        except SvcflowError:
            return  # the clock had already stopped

    return pause


def summary(report: DemoReport) -> Mapping[str, Any]:
    return {
        "cases": dict(report.created),
        "fires": report.fired,
        "timers_fired": report.timers_fired,
        "paths_stopped_early": report.stopped_early,
        "stuck_by_reason": report.findings,
    }
