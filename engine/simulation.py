"""Time-skipping simulation: run a scenario against definitions on virtual time.

A scenario (YAML, format in docs/simulation.md) creates cases, fires triggers, advances a
virtual clock and checks states, data and SLA clocks. It runs the real engine on a scratch
SQLite database: the same services, and the same :func:`fire_due_timer` an RQ worker calls.
Advancing the clock fires every timer that falls due, in due order, each at its own due
instant, so a year of timers takes seconds and nothing sleeps.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.core import messages
from engine.core.definition import parse_source
from engine.core.durations import parse_duration
from engine.core.machine import ADMIN_ROLE, Actor
from engine.core.messages import Message, error_record
from engine.core.records import CaseRecord
from engine.core.sla import compute_clocks
from engine.errors import DurationInvalid, ScenarioError, SvcflowError, written
from engine.runtime.clock import ManualClock
from engine.services import cases, timer_firing
from engine.services.calendars import load_calendars, save_calendar
from engine.services.contracts import load_contract
from engine.services.definitions import get_definition, publish, set_parameter
from engine.store import migrate
from engine.store.database import create_db_engine, session_factory

STEP_KINDS = ("create", "fire", "advance", "advance_to", "expect", "expect_error", "cancel")
MAX_TIMER_FIRINGS = 100_000  # a runaway every-minute cron cannot hang a simulation
_ACTOR_KEYS = frozenset({"actor", "roles"})
# Keys each mapping step needs and may have. A misspelt key is refused rather than ignored: an
# ``expect`` with ``stat:`` instead of ``state:`` would otherwise check nothing and pass.
STEP_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "create": (
        frozenset({"definition"}),
        frozenset({"case", "data", "business_key", "contract"}) | _ACTOR_KEYS,
    ),
    "fire": (frozenset({"case", "trigger"}), frozenset({"payload"}) | _ACTOR_KEYS),
    "cancel": (frozenset({"case"}), frozenset({"reason"}) | _ACTOR_KEYS),
    "expect": (
        frozenset({"case"}),
        frozenset({"state", "status", "data", "triggers", "events", "sla", "contract", "params"}),
    ),
}


@dataclass
class StepResult:
    index: int
    kind: str
    ok: bool
    # What the step did, or every way the case differs from what it expected, as sentences
    # with codes and values (engine/core/messages.py): the dashboard says them in the
    # reader's language, ``message`` in English for the CLI and the tests.
    messages: tuple[Message, ...]
    at: datetime

    @property
    def message(self) -> str:
        return "; ".join(str(m) for m in self.messages)


@dataclass
class ScenarioReport:
    name: str
    steps: list[StepResult] = field(default_factory=list)
    timers_fired: int = 0

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def failures(self) -> list[StepResult]:
        return [s for s in self.steps if not s.ok]


def _instant(value: Any, where: str) -> datetime:
    """An instant the scenario wrote. YAML reads an unquoted ``2025-09-30T10:00:00+08:00`` as
    a datetime and a quoted one as text; both are taken. One without its UTC offset is refused,
    never read in some zone: the scenario must mean the same instant on every machine
    (docs/simulation.md)."""
    if value is None:
        raise ScenarioError(
            f"{where}: no instant given.",
            hint="Write e.g. 2025-09-30T10:00:00+08:00 (with its UTC offset).",
        )
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise ScenarioError(
                f"{where}: {written(value)} is not an ISO 8601 instant.",
                hint="Write e.g. 2025-09-30T10:00:00+08:00 (with its UTC offset).",
            ) from exc
    if parsed.tzinfo is None:
        typed = value.isoformat() if isinstance(value, date) else str(value)
        raise ScenarioError(
            f"{where}: {typed} has no UTC offset.",
            hint=f"Write it with its offset, e.g. {parsed.isoformat()}+08:00 for Beijing time.",
        )
    return parsed


def _json_values(value: Any, where: str) -> Any:
    """Case data and payloads as a request would carry them: JSON, where an instant is ISO 8601
    text. YAML reads an unquoted timestamp as a datetime, which no request can hold; it is
    passed on as the text it was written as (``Z`` for UTC), and one without an offset is
    refused like any other instant in the scenario."""
    if isinstance(value, Mapping):
        return {k: _json_values(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_json_values(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, datetime):
        text = _instant(value, where).isoformat()
        return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    return value


def _duration(value: Any, where: str) -> timedelta:
    try:
        return parse_duration(value).timedelta
    except DurationInvalid as exc:
        raise ScenarioError(f"{where}: {exc.message}", hint=exc.hint) from exc


@contextmanager
def _scratch_database() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory(prefix="svcflow-sim-") as folder:
        engine = create_db_engine(f"sqlite:///{Path(folder) / 'simulation.db'}")
        try:
            migrate.upgrade(engine)
            yield engine
        finally:
            engine.dispose()


class Simulator:
    """Drives one scenario. Usable directly from tests with a scenario dict."""

    def __init__(self, sessions: sessionmaker[Session], clock: ManualClock) -> None:
        self.sessions = sessions
        self.clock = clock
        self.aliases: dict[str, int] = {}
        self.timers_fired = 0

    # --- time --------------------------------------------------------------------------------

    def advance_to(self, target: datetime) -> int:
        """Fire every timer due up to ``target`` in due order, then set the clock to it."""
        fired = 0
        while True:
            with self.sessions() as session, session.begin():
                due = timer_firing.due_for_delivery(session, until=target, limit=1)
            if not due:
                break
            if fired >= MAX_TIMER_FIRINGS:
                raise ScenarioError(
                    f"More than {MAX_TIMER_FIRINGS} timers fired before {target.isoformat()}.",
                    hint="Check for a cron timer that fires far too often.",
                )
            self.clock.set(max(due[0].due_at, self.clock.now()))
            self.deliver(due[0].id)
            fired += 1
        self.clock.set(target)
        self.timers_fired += fired
        return fired

    def deliver(self, timer_id: int) -> None:
        """What a worker's job does with one delivery, failure handling included."""
        now = self.clock.now()
        try:
            with self.sessions() as session, session.begin():
                timer_firing.fire_due_timer(session, timer_id, now=now)
        except Exception as exc:  # same policy as the RQ job: record, maybe retry later
            with self.sessions() as session, session.begin():
                timer_firing.record_failure(session, timer_id, exc, now=now)

    # --- steps -------------------------------------------------------------------------------

    def case_id(self, alias: Any, where: str) -> int:
        if isinstance(alias, int):
            return alias
        if alias not in self.aliases:
            raise ScenarioError(
                f"{where}: no case called {written(alias)} was created earlier in the scenario.",
                hint="Name cases with `case:` in their create step.",
            )
        return self.aliases[alias]

    def run_step(self, index: int, step: Mapping[str, Any]) -> StepResult:
        where = f"steps[{index}]"
        kinds = [k for k in STEP_KINDS if k in step] if isinstance(step, Mapping) else []
        if len(kinds) != 1:
            raise ScenarioError(
                f"{where} must be a mapping with exactly one of: {', '.join(STEP_KINDS)}.",
                hint="Write one action per step.",
            )
        kind = kinds[0]
        body = step[kind]
        _check_body(kind, body, f"{where}.{kind}")
        handler = getattr(self, f"_step_{kind}")
        ok, said = handler(body, where)
        return StepResult(index, kind, ok, tuple(said), self.clock.now())

    def _actor(self, body: Mapping[str, Any]) -> Actor:
        roles = body.get("roles")
        return Actor(str(body.get("actor", "simulation")), frozenset(roles or {ADMIN_ROLE}))

    def _step_create(self, body: Mapping[str, Any], where: str) -> tuple[bool, list[Message]]:
        if "contract" in body and not isinstance(body["contract"], str):
            raise ScenarioError(
                f"{where}.create.contract must be a contract id, not {written(body['contract'])}.",
                hint="e.g. contract: b3 (the id written in the contract file).",
            )
        with self.sessions() as session, session.begin():
            out = cases.create_case(
                session,
                body["definition"],
                _json_values(body.get("data", {}), f"{where}.create.data"),
                actor=self._actor(body),
                now=self.clock.now(),
                business_key=body.get("business_key"),
                contract=body.get("contract"),
            )
        if "case" in body:
            self.aliases[str(body["case"])] = out.case.id
        created = {"case_id": out.case.id, "state": out.case.state}
        if out.case.contract_name:
            created["contract"] = out.case.contract_name
            return True, [Message(messages.SIM_CREATED_UNDER, created)]
        return True, [Message(messages.SIM_CREATED, created)]

    def _step_fire(self, body: Mapping[str, Any], where: str) -> tuple[bool, list[Message]]:
        case_id = self.case_id(body.get("case"), where)
        with self.sessions() as session, session.begin():
            out = cases.fire(
                session,
                case_id,
                body["trigger"],
                _json_values(body.get("payload", {}), f"{where}.fire.payload"),
                actor=self._actor(body),
                now=self.clock.now(),
            )
        moved = {"trigger": body["trigger"], "from_state": out.event.from_state}
        return True, [Message(messages.SIM_FIRED, {**moved, "state": out.case.state})]

    def _step_cancel(self, body: Mapping[str, Any], where: str) -> tuple[bool, list[Message]]:
        case_id = self.case_id(body.get("case"), where)
        with self.sessions() as session, session.begin():
            cases.cancel_case(
                session,
                case_id,
                actor=self._actor(body),
                now=self.clock.now(),
                reason=str(body.get("reason", "scenario")),
            )
        return True, [Message(messages.SIM_CANCELLED, {"case_id": case_id})]

    def _step_advance(self, body: Any, where: str) -> tuple[bool, list[Message]]:
        fired = self.advance_to(self.clock.now() + _duration(body, where))
        return True, [Message(messages.SIM_ADVANCED, {"duration": str(body), "fired": fired})]

    def _step_advance_to(self, body: Any, where: str) -> tuple[bool, list[Message]]:
        target = _instant(body, where)
        if target < self.clock.now():
            raise ScenarioError(
                f"{where}: {body} is in the virtual past.", hint="Time only moves forward."
            )
        fired = self.advance_to(target)
        return True, [Message(messages.SIM_ADVANCED_TO, {"instant": str(body), "fired": fired})]

    def _step_expect_error(self, body: Mapping[str, Any], where: str) -> tuple[bool, list[Message]]:
        expected = body.get("code")
        action = {k: v for k, v in body.items() if k != "code"}
        try:
            self.run_step(-1, action)
        except ScenarioError:
            raise
        except SvcflowError as exc:
            if expected and exc.code != expected:
                got = {"expected": expected, "code": exc.code, "error": error_record(exc)}
                return False, [Message(messages.SIM_WRONG_ERROR, got)]
            return True, [Message(messages.SIM_FAILED_AS_EXPECTED, {"code": exc.code})]
        if not expected:
            return False, [Message(messages.SIM_NO_ERROR_ANY)]
        return False, [Message(messages.SIM_NO_ERROR, {"expected": expected})]

    def _step_expect(self, body: Mapping[str, Any], where: str) -> tuple[bool, list[Message]]:
        case_id = self.case_id(body.get("case"), where)
        with self.sessions() as session, session.begin():
            case = cases.get_case(session, case_id)
            problems = self._check_case(session, case, body, where)
        if problems:
            return False, problems
        return True, [Message(messages.SIM_AS_EXPECTED, {"case_id": case_id})]

    def _check_case(
        self, session: Session, case: CaseRecord, body: Mapping[str, Any], where: str
    ) -> list[Message]:
        # What differs is said in the scenario's own spelling (JSON, which YAML reads too):
        # "data.engineer is absent, expected "王"", not Python's None and '王'.
        problems = []
        for key in ("state", "status"):
            if key in body and getattr(case, key) != body[key]:
                problems.append(_differs(key, getattr(case, key), body[key]))
        if "contract" in body and case.contract_name != body["contract"]:
            problems.append(_differs("contract", case.contract_name, body["contract"]))
        for name, value in (body.get("params") or {}).items():
            if case.params.get(name) != value:
                problems.append(_differs(f"params.{name}", case.params, value, key=name))
        for name, value in _json_values(body.get("data") or {}, f"{where}.expect.data").items():
            if case.data.get(name) != value:
                problems.append(_differs(f"data.{name}", case.data, value, key=name))
        history = cases.history(session, case.id)
        if "triggers" in body:
            fired = [e.trigger for e in history if e.event_type == "transition"]
            if fired != list(body["triggers"]):
                expected = written(list(body["triggers"]))
                problems.append(
                    Message(messages.SIM_TRIGGERS, {"actual": written(fired), "expected": expected})
                )
        if "events" in body:
            kinds = [e.event_type for e in history]
            missing = [k for k in body["events"] if k not in kinds]
            if missing:
                problems.append(
                    Message(
                        messages.SIM_EVENTS_MISSING,
                        {"missing": written(missing), "actual": written(kinds)},
                    )
                )
        if "sla" in body:
            definition = get_definition(session, case.definition_name, case.definition_version)
            rounds: dict[str, list[str]] = {}
            for c in compute_clocks(
                definition,
                history,
                data=case.data,
                params=case.params,
                now=self.clock.now(),
                calendars=load_calendars(session),
            ):
                rounds.setdefault(c.name, []).append(c.status.value)
            for name, expected in body["sla"].items():
                problems += _sla_problems(name, rounds.get(name), expected)
        return problems


def _differs(what: str, actual: Any, expected: Any, *, key: str | None = None) -> Message:
    """``what`` differs from what the scenario expected; with ``key``, ``actual`` is the
    mapping the value is read from, which may lack it."""
    if key is not None:
        if key not in actual:
            return Message(messages.SIM_ABSENT, {"what": what, "expected": written(expected)})
        actual = actual[key]
    return Message(
        messages.SIM_DIFFERS,
        {"what": what, "actual": written(actual), "expected": written(expected)},
    )


def _sla_problems(name: str, statuses: list[str] | None, expected: Any) -> list[Message]:
    """An ``sla`` expectation: a status is the clock's latest round's; a list gives every
    round's status, first to latest (``[breached, met]``)."""
    wanted = {"sla": name, "expected": written(expected)}
    if statuses is None:
        return [Message(messages.SIM_SLA_MISSING, wanted)]
    if isinstance(expected, list):
        if statuses != expected:
            return [Message(messages.SIM_SLA_ROUNDS, {**wanted, "actual": written(statuses)})]
    elif statuses[-1] != expected:
        return [Message(messages.SIM_SLA_STATUS, {**wanted, "actual": written(statuses[-1])})]
    return []


def _check_body(kind: str, body: Any, where: str) -> None:
    if kind == "expect_error" and not isinstance(body, Mapping):
        raise ScenarioError(f"{where} must be a mapping with the step to try and its code.")
    if kind not in STEP_KEYS:
        return
    required, optional = STEP_KEYS[kind]
    if not isinstance(body, Mapping):
        raise ScenarioError(
            f"{where} must be a mapping, not {written(body)}.",
            hint=f"Give at least: {', '.join(sorted(required))}.",
        )
    missing = sorted(required - set(body))
    unknown = sorted(set(body) - required - optional)
    if missing or unknown:
        problems = [f"lacks {', '.join(missing)}"] if missing else []
        problems += [f"has unknown key(s) {', '.join(unknown)}"] if unknown else []
        raise ScenarioError(
            f"{where} {' and '.join(problems)}.",
            hint=f"Keys of {kind}: {', '.join(sorted(required | optional))}.",
        )


def run_scenario(scenario: Mapping[str, Any], base_dir: Path) -> ScenarioReport:
    """Run a parsed scenario; paths in it are relative to ``base_dir``."""
    if not isinstance(scenario, Mapping) or not isinstance(scenario.get("steps"), list):
        raise ScenarioError(
            "A scenario is a mapping with start, definitions and steps.",
            hint="See docs/simulation.md.",
        )
    start = _instant(scenario.get("start"), "start")
    clock = ManualClock(start)
    report = ScenarioReport(name=str(scenario.get("name", "scenario")))
    with _scratch_database() as engine:
        sessions = session_factory(engine)
        _prepare(sessions, scenario, base_dir, start)
        simulator = Simulator(sessions, clock)
        for index, step in enumerate(scenario["steps"]):
            try:
                report.steps.append(simulator.run_step(index, step))
            except ScenarioError:
                raise
            except SvcflowError as exc:
                report.steps.append(
                    StepResult(
                        index,
                        next(iter(step), "?"),
                        False,
                        (
                            Message(
                                messages.SIM_STEP_ERROR,
                                {"code": exc.code, "error": error_record(exc)},
                            ),
                        ),
                        clock.now(),
                    )
                )
                break
        report.timers_fired = simulator.timers_fired
    return report


def _prepare(
    sessions: sessionmaker[Session], scenario: Mapping[str, Any], base_dir: Path, now: datetime
) -> None:
    definitions = scenario.get("definitions") or (
        [scenario["definition"]] if "definition" in scenario else []
    )
    if not definitions:
        raise ScenarioError(
            "The scenario names no definition.", hint="Add definitions: [path.yaml]."
        )
    with sessions() as session, session.begin():
        for name, overrides in (scenario.get("calendars") or {}).items():
            save_calendar(session, name, actor="simulation", now=now, overrides=overrides)
        for relative in definitions:
            path = (base_dir / relative).resolve()
            if not path.is_file():
                raise ScenarioError(f"Definition file {relative!r} not found (looked in {path}).")
            publish(session, path.read_text("utf-8"), actor="simulation", now=now, origin=str(path))
        for definition_name, params in (scenario.get("parameters") or {}).items():
            for param, value in params.items():
                set_parameter(session, definition_name, param, value, actor="simulation", now=now)
        contract_files = scenario.get("contracts") or []
        if not isinstance(contract_files, list):
            raise ScenarioError(
                "contracts must be a list of contract files.",
                hint="e.g. contracts: [../contracts/b3.yaml]",
            )
        for relative in contract_files:
            if not isinstance(relative, str):
                raise ScenarioError(f"contracts lists {written(relative)}, not a file path.")
            path = (base_dir / relative).resolve()
            if not path.is_file():
                raise ScenarioError(f"Contract file {relative!r} not found (looked in {path}).")
            load_contract(
                session, path.read_text("utf-8"), actor="simulation", now=now, origin=str(path)
            )


def run_scenario_file(path: Path) -> ScenarioReport:
    return run_scenario(parse_source(path.read_text("utf-8"), str(path)), path.parent)
