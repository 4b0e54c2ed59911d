"""A repair ticket's journey, and the rows each of its fires writes: what the benchmarks on the
bundled ``repair_ticket`` definition drive and what their bare baselines must write.

:data:`STEPS` is a valid trigger sequence of ``workflows/repair_ticket.yaml`` from ``logged`` to
``closed`` along the full on-site path (the one ``workflows/scenarios/repair_loaner_after_8h``
takes, without the waits): contact, remote diagnosis fails, dispatch, visit confirmed, arrival,
warranty diagnosis, consent, repair done, signature (which spawns a satisfaction survey), report,
closing feedback. Every state it enters but ``closed`` runs SLA clocks, two of them arm state
timers (``logged``, ``repairing``), and ``repair_done`` counts the repair per device serial.

:func:`capture_plan` runs one ticket through the engine's services with every statement captured
(``before_cursor_execute``) and turns each fire's *writes* into a :class:`Step` of plain
operations keyed by natural keys (case, timer name, SLA name) instead of row ids, with instants
as offsets from the fire's ``now``: :func:`replay` then makes the same row writes on another
ticket with statements built once, reading nothing but the case row. Like every writer of a
case event it chains each event to the case's history head (a SHA-256 of the event, docs/audit.md)
and gives it a feed position (docs/events.md), as the engine does. That is the floor a fire
of this definition cannot go below; the engine's reads (its counters, clocks, armed timers,
calendars) and its deciding are what the ratio against it measures.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, bindparam, delete, event, insert, select, text, update
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.elements import TextClause

from engine.core.history_chain import GENESIS, ChainedEvent, event_hash
from engine.core.machine import Actor
from engine.services.cases import create_case, fire
from engine.services.definitions import publish
from engine.services.timer_firing import fire_due_timer
from engine.store.database import session_factory
from engine.store.models import Base, TimerStatus

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
NAME = "repair_ticket"
ACTOR = Actor("bench", frozenset({"integrator"}))

# (trigger, payload): logged -> ... -> closed. The warranty ends far ahead, so the diagnosis is a
# warranty repair (awaiting_consent); the report confirms the on-site checks the guard asks for.
STEPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("contact", {"at": "2026-01-05T00:30:00Z"}),
    ("remote_failed", {"reason": "detector does not answer"}),
    ("dispatch", {"engineer": "eng-7"}),
    ("confirm_visit", {"confirmed_with": "head of equipment"}),
    ("arrive", {}),
    (
        "diagnose",
        {
            "diagnosis": "power board",
            "plan": "replace the power board",
            "cause": "normal_use",
            "warranty_until": "2099-01-01T00:00:00Z",
        },
    ),
    ("consent", {"consented_by": "head of equipment"}),
    ("repair_done", {"note": "board replaced"}),
    ("sign", {"signed_by": "head of equipment"}),
    (
        "deliver_report",
        {"report_no": "SR-1", "performance_test_passed": True, "operator_instructed": True},
    ),
    ("close", {"feedback": "board returned to the factory, device runs"}),
)
# A self-loop of `repairing` (escalation to L3), for benchmarks that fire one case many times.
SELF_LOOP: tuple[str, dict[str, Any]] = ("escalate", {"reason": "needs the manufacturer"})
REPAIRING_AFTER = 7  # steps of STEPS that take a new ticket to `repairing`

cases = Base.metadata.tables["cases"]
events = Base.metadata.tables["case_events"]
timers = Base.metadata.tables["timers"]
case_slas = Base.metadata.tables["case_slas"]
counters = Base.metadata.tables["counters"]
case_waits = Base.metadata.tables["case_waits"]
feed_head = Base.metadata.tables["event_feed_head"]


def ticket_data(i: int) -> dict[str, Any]:
    """A new ticket's data; its own device serial, so the repair counter never reaches the
    replacement threshold (a third repair of one device would go to replacement_pending)."""
    return {
        "customer": f"hospital-{i % 500}",
        "device_serial": f"SN-{i:08d}",
        "device_model": "DR-2000",
        "fault": "no image after exposure",
        "priority": "normal",
        "distance_class": "same_city",
    }


def publish_bundled(session: Any, now: datetime) -> None:
    """Publish every bundled definition (the ticket spawns surveys and loaners; it attaches to
    a device file when one exists)."""
    for path in sorted(WORKFLOWS.glob("*.yaml")):
        publish(session, path.read_text("utf-8"), actor="bench", now=now)


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class Op:
    """One write. ``kind`` says which statement; ``target`` is ``case`` (the ticket) or ``child``
    (a case the fire spawned); ``values`` are column values, instants as seconds from ``now``
    (``{"$at": s}``), versions and state entries relative to the ticket's read version."""

    kind: str
    target: str = "case"
    values: dict[str, Any] = field(default_factory=dict)
    key: Any = None  # natural key: an SLA name, timer names, ...


@dataclass
class Step:
    trigger: str
    source: str
    dest: str
    moved: bool
    statements: int  # what the engine's fire issued (reads and writes, BEGIN excluded)
    writes: int  # of which INSERT / UPDATE / DELETE
    ops: list[Op]

    @property
    def bumps(self) -> int:
        """Versions the ticket gains: the fire, plus e.g. a child_spawned record."""
        return sum(1 for op in self.ops if op.kind == "update_case" and op.target == "case")


@dataclass
class Plan:
    steps: list[Step]

    def to_json(self) -> str:
        return json.dumps([asdict(s) for s in self.steps])

    @classmethod
    def from_json(cls, text: str) -> Plan:
        steps = []
        for raw in json.loads(text):
            raw["ops"] = [Op(**op) for op in raw["ops"]]
            steps.append(Step(**raw))
        return cls(steps)

    def by_source(self) -> dict[tuple[str, str], Step]:
        return {(s.source, s.trigger): s for s in self.steps}

    def version_after(self, fires: int) -> int:
        """The ticket's version after the first ``fires`` steps of the journey."""
        walked = [s for s in self.steps if s.trigger != SELF_LOOP[0]]
        return 1 + sum(s.bumps for s in walked[:fires])


def _encode(value: Any, now: datetime) -> Any:
    if isinstance(value, datetime):
        return {"$at": (value - now).total_seconds()}
    return value


def decode(value: Any, now: datetime) -> Any:
    if isinstance(value, dict) and set(value) == {"$at"}:
        return now + timedelta(seconds=value["$at"])
    return value


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[Any, dict[str, Any]]]]:
    """(Core statement, its bound values) of everything sent while inside; BEGIN and
    savepoints, which have no compiled statement, are left out."""
    seen: list[tuple[Any, dict[str, Any]]] = []

    def record(_c: Any, _cur: Any, _sql: str, _p: Any, context: Any, _many: bool) -> None:
        compiled = getattr(context, "compiled", None)
        if compiled is not None and compiled.statement is not None:
            seen.append((compiled.statement, dict(context.compiled_parameters[0])))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def capture_plan(engine: Engine, now: datetime, *, serial: int = 99_999_999) -> Plan:
    """Run one ticket through :data:`STEPS` and :data:`SELF_LOOP` (from ``repairing``, before
    the repair is done) on ``engine`` with the services, and return each fire's writes."""
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        ticket = create_case(session, NAME, ticket_data(serial), actor=ACTOR, now=now).case.id
    journey = [*STEPS[:REPAIRING_AFTER], SELF_LOOP, *STEPS[REPAIRING_AFTER:]]
    steps = []
    for i, (trigger, payload) in enumerate(journey):
        at = now + timedelta(seconds=i + 1)
        with sessions() as session:
            with captured(engine) as seen, session.begin():
                before = (
                    session.connection()
                    .execute(select(cases.c.state, cases.c.version).where(cases.c.id == ticket))
                    .one()
                )
                seen.clear()
                outcome = fire(session, ticket, trigger, payload, actor=ACTOR, now=at)
            steps.append(
                _step(
                    engine,
                    ticket,
                    trigger,
                    before=before,
                    dest=outcome.case.state,
                    seen=seen,
                    now=at,
                )
            )
    return Plan(steps)


def _step(
    engine: Engine,
    ticket: int,
    trigger: str,
    *,
    before: Any,
    dest: str,
    seen: Sequence[tuple[Any, dict[str, Any]]],
    now: datetime,
) -> Step:
    with engine.connect() as conn:
        child = conn.execute(
            select(cases.c.id).where(cases.c.parent_id == ticket).order_by(cases.c.id.desc())
        ).first()
        names = dict(conn.execute(select(timers.c.id, timers.c.name)).all())
        slas = dict(conn.execute(select(case_slas.c.id, case_slas.c.sla)).all())
    targets = {ticket: "case"}
    if child is not None:
        targets[child.id] = "child"
    ops: list[Op] = []
    writes = 0
    for statement, params in seen:
        if isinstance(statement, TextClause):  # PostgreSQL: the feed's take-and-stamp
            writes += 1
            ops.append(Op("take_feed_positions"))
            continue
        if not isinstance(statement, Insert | Update | Delete):
            continue
        writes += 1
        ops.append(_op(statement, params, before.version, targets, names=names, slas=slas, now=now))
    return Step(trigger, before.state, dest, dest != before.state, len(seen), writes, ops)


def _op(
    statement: Any,
    params: dict[str, Any],
    read_version: int,
    targets: Mapping[int, str],
    *,
    names: Mapping[int, str],
    slas: Mapping[int, str],
    now: datetime,
) -> Op:
    table = statement.table.name
    # The replay computes the history chain and takes feed positions itself (see _Ticket).
    values = {k: _encode(v, now) for k, v in params.items() if k not in ("hash", "b_feed_rank")}
    if table == "event_feed_head":  # SQLite: the commit moves the feed head past the events
        return Op("take_feed_positions")
    if isinstance(statement, Insert):
        if table == "cases":
            values.pop("parent_id", None)
            return Op("insert_case", "child", values)
        target = targets.get(params.get("case_id"), "case")  # type: ignore[arg-type]
        values.pop("case_id", None)
        if target == "case":
            for column in ("seq", "state_entry_seq"):
                if column in values:
                    values[column] -= read_version  # relative to the version read
        if table == "counters":
            return Op("insert_counter", target, values)
        return Op(f"insert_{table}", target, values)
    if table == "cases" and "new_version" not in params and "new_head" in params:
        return Op("set_head", targets[params["case_id"]])  # a new case's history head
    if table == "cases" and set(params) == {"assignee", "b_case"}:  # the workbench's assignee
        return Op("set_assignee", targets[params["b_case"]], {"assignee": params["assignee"]})
    if table == "cases":
        target = targets[params["case_id"]]
        keep = {
            "new_version": params["new_version"] - read_version,
            "new_state": params["new_state"],
            "new_status": params["new_status"],
            "new_data": params["new_data"],
            # A fire that moves the case starts a state entry at its own version.
            "moved": params["entry_seq"] == params["new_version"],
        }
        return Op("update_case", target, keep)
    if table == "case_slas":
        # Built once with bound values (v_<column>, the row by b_id), or per call with literal
        # values (<column>, the row by id_1) as the engine did before.
        if "b_id" in params:
            columns = {k[2:]: v for k, v in values.items() if k.startswith("v_")}
            return Op("update_case_slas", "case", columns, slas[params["b_id"]])
        columns = {k: v for k, v in values.items() if k != "id_1"}
        return Op("update_case_slas", "case", columns, slas[params["id_1"]])
    if table == "timers":
        # `id IN (...)`: one list, or its items expanded into id_1_1, id_1_2, ... (b_ids,
        # b_ids_1, ... for the statement built once).
        ids: list[int] = []
        for k, v in params.items():
            if k.startswith(("id_", "b_ids")):
                ids.extend(v if isinstance(v, list | tuple) else [v])
        set_values = {
            "status": values["status"],
            "updated_at": values["updated_at"] if "updated_at" in values else values["b_now"],
            "note": values["note"] if "note" in values else values["b_note"],
        }
        if ids:
            return Op("cancel_timers", "case", set_values, sorted(names[i] for i in ids))
        if "state_entry_seq_1" in params or "b_entry" in params:
            return Op("cancel_timers", "case", set_values, "$entry")
        return Op("cancel_timers", "case", set_values, "$all")
    if table == "counters":
        return Op("add_counter", "case", {"by": params["b_by"]}, params["b_name"])
    if table == "case_waits":
        return Op("delete_case_waits", "case")
    raise ValueError(f"a write the plan does not know: {statement}")


# --- the replay: the same row writes, statements built once ------------------------------------

SELECT_TICKET = select(
    cases.c.id,
    cases.c.state,
    cases.c.data,
    cases.c.version,
    cases.c.state_entered_at,
    cases.c.state_entry_seq,
    cases.c.history_head,
).where(cases.c.id == bindparam("b_id"))
UPDATE_TICKET = (
    update(cases)
    .where(
        cases.c.id == bindparam("b_id"),
        cases.c.version == bindparam("b_version"),
        cases.c.history_head == bindparam("b_head"),
    )
    .values(
        history_head=bindparam("b_new_head"),
        state=bindparam("b_state"),
        status=bindparam("b_status"),
        data=bindparam("b_data"),
        version=bindparam("b_new_version"),
        updated_at=bindparam("b_now"),
        state_entered_at=bindparam("b_entered_at"),
        state_entry_seq=bindparam("b_entry_seq"),
    )
)
INSERT_CASE = insert(cases)
INSERT_EVENT = insert(events)
SET_ASSIGNEE = update(cases).where(cases.c.id == bindparam("b_id"))
SET_HEAD = (
    update(cases).where(cases.c.id == bindparam("b_id")).values(history_head=bindparam("b_head"))
)
# The event feed (docs/events.md), as engine/store/event_feed.py takes it: on SQLite each event
# takes "head + its rank" as it is inserted and the commit moves the head; on PostgreSQL one
# statement at the end moves the head and stamps the transaction's events.
_FEED_POSITION = select(feed_head.c.position).where(feed_head.c.id == 1).scalar_subquery()
INSERT_EVENT_RANKED = insert(events).values(position=_FEED_POSITION + bindparam("b_feed_rank"))
ADVANCE_FEED = (
    update(feed_head)
    .where(feed_head.c.id == 1)
    .values(position=feed_head.c.position + bindparam("b_count"))
)
TAKE_AND_STAMP = text(
    """
    WITH head AS (
        UPDATE event_feed_head SET position = position + :b_count WHERE id = 1
        RETURNING position
    )
    UPDATE case_events SET position = head.position - :b_count + ranked.rank
    FROM head, unnest(CAST(:b_ids AS BIGINT[])) WITH ORDINALITY AS ranked(id, rank)
    WHERE case_events.id = ranked.id
    """
)
INSERT_TIMER = insert(timers)
INSERT_SLA = insert(case_slas)
_TIMER_SET = {
    "status": bindparam("b_status"),
    "updated_at": bindparam("b_now"),
    "note": bindparam("b_note"),
}
_ARMED = timers.c.status == TimerStatus.ARMED.value
CANCEL_BY_NAMES = (
    update(timers)
    .where(
        timers.c.case_id == bindparam("b_id"),
        _ARMED,
        timers.c.name.in_(bindparam("b_names", expanding=True)),
    )
    .values(_TIMER_SET)
)
CANCEL_BY_ENTRY = (
    update(timers)
    .where(
        timers.c.case_id == bindparam("b_id"),
        _ARMED,
        timers.c.state_entry_seq == bindparam("b_entry"),
        timers.c.sla.is_(None),
    )
    .values(_TIMER_SET)
)
CANCEL_ALL = update(timers).where(timers.c.case_id == bindparam("b_id"), _ARMED).values(_TIMER_SET)
UPDATE_SLA = update(case_slas).where(
    case_slas.c.case_id == bindparam("b_id"),
    case_slas.c.sla == bindparam("b_sla"),
    case_slas.c.round == bindparam("b_round"),  # one row per round of a repeating SLA
)
ADD_COUNTER = (
    update(counters)
    .where(counters.c.name == bindparam("b_name"), counters.c.key == bindparam("b_key"))
    .values(value=counters.c.value + bindparam("b_by"), updated_at=bindparam("b_now"))
)
INSERT_COUNTER = insert(counters)
DELETE_WAITS = delete(case_waits).where(case_waits.c.case_id == bindparam("b_id"))


class GuardMissed(Exception):
    """The version guard missed: another writer got there first."""


def replay(conn: Connection, step: Step, ticket: Any, now: datetime) -> dict[str, Any]:
    """Make ``step``'s row writes on ``ticket`` (a row of :data:`SELECT_TICKET`, read in this
    transaction) at ``now``; returns the case as written. Raises :class:`GuardMissed` when the
    version guard misses."""
    state = _Ticket(ticket, now, sqlite=conn.dialect.name == "sqlite")
    for i, op in enumerate(step.ops):
        values = {k: decode(v, now) for k, v in op.values.items()}
        if op.kind == "update_case":
            if op.target == "case":
                # The event this UPDATE's new history head is the hash of comes next.
                event_op = next(
                    o
                    for o in step.ops[i + 1 :]
                    if o.kind == "insert_case_events" and o.target == op.target
                )
                event_values = {k: decode(v, now) for k, v in event_op.values.items()}
                state.update(conn, step, values, state.event_row(event_op, event_values))
        elif op.kind == "insert_case":
            values["data"] = {**values["data"], "service_case_id": ticket.id}
            state.ids["child"] = conn.execute(
                INSERT_CASE, {**values, "parent_id": ticket.id}
            ).inserted_primary_key[0]
        elif op.kind in ("insert_case_events", "insert_timers", "insert_case_slas"):
            state.insert(conn, op, values)
        elif op.kind == "update_case_slas":
            conn.execute(
                UPDATE_SLA,
                {**values, "b_id": ticket.id, "b_sla": op.key, "b_round": values.get("round", 1)},
            )
        elif op.kind == "cancel_timers":
            state.cancel(conn, op, values)
        elif op.kind == "add_counter":
            state.count(conn, op, values)
        elif op.kind == "delete_case_waits":
            conn.execute(DELETE_WAITS, {"b_id": ticket.id})
        elif op.kind == "set_assignee":
            conn.execute(SET_ASSIGNEE, {"b_id": state.ids[op.target], **values})
        elif op.kind == "set_head":
            conn.execute(SET_HEAD, {"b_id": state.ids[op.target], "b_head": state.heads[op.target]})
        elif op.kind == "take_feed_positions":
            state.take_feed_positions(conn)
        elif op.kind != "insert_counter":  # written by add_counter when the counter is new
            raise ValueError(op.kind)
    return {"id": ticket.id, "state": state.state, "data": state.data, "version": state.version}


class _Ticket:
    """The ticket as the replay has written it so far."""

    INSERTS: ClassVar[dict[str, Any]] = {
        "insert_case_events": (INSERT_EVENT, "seq"),
        "insert_timers": (INSERT_TIMER, "state_entry_seq"),
        "insert_case_slas": (INSERT_SLA, None),
    }

    def __init__(self, row: Any, now: datetime, *, sqlite: bool) -> None:
        self.row, self.now, self.sqlite = row, now, sqlite
        self.ids = {"case": row.id}
        self.version, self.data, self.state = row.version, dict(row.data), row.state
        self.entered_at, self.entry = row.state_entered_at, row.state_entry_seq
        # The history chain: each target's head, and the hash of the event an UPDATE of the
        # case row announced (the event is inserted right after it).
        self.heads = {"case": row.history_head, "child": GENESIS}
        self.announced: dict[str, str] = {}
        self.event_ids: list[int] = []  # PostgreSQL: stamped with feed positions at the end

    def event_row(self, op: Op, values: dict[str, Any]) -> dict[str, Any]:
        row = {**values, "case_id": self.ids[op.target]}
        if op.target == "case":
            row["seq"] = self.row.version + values["seq"]
        row.setdefault("context", None)
        return row

    def update(
        self, conn: Connection, step: Step, values: dict[str, Any], event: dict[str, Any]
    ) -> None:
        chained = ChainedEvent(**{k: event[k] for k in ChainedEvent.__dataclass_fields__})
        previous = self.heads["case"]
        self.announced["case"] = event_hash(chained, previous)
        new_version = self.row.version + values["new_version"]
        self.data = {**self.data, **_changes(values["new_data"], self.data)}
        if values["moved"]:
            self.entered_at, self.entry = self.now, new_version
        self.state = values["new_state"]
        row = {
            "b_id": self.row.id,
            "b_version": self.version,
            "b_state": self.state,
            "b_status": values["new_status"],
            "b_data": self.data,
            "b_new_version": new_version,
            "b_now": self.now,
            "b_entered_at": self.entered_at,
            "b_entry_seq": self.entry,
            "b_head": previous,
            "b_new_head": self.announced["case"],
        }
        if conn.execute(UPDATE_TICKET, row).rowcount != 1:
            raise GuardMissed(self.row.id)
        self.version = new_version

    def insert(self, conn: Connection, op: Op, values: dict[str, Any]) -> None:
        if op.kind == "insert_case_events":
            self.insert_event(conn, op, values)
            return
        statement, relative = self.INSERTS[op.kind]
        row = {**values, "case_id": self.ids[op.target]}
        if op.target == "case" and relative is not None:
            row[relative] = self.row.version + values[relative]
        conn.execute(statement, row)

    def insert_event(self, conn: Connection, op: Op, values: dict[str, Any]) -> None:
        row = self.event_row(op, values)
        head = self.announced.pop(op.target, None)
        if head is None:  # a new case's first event: its head is set after it
            chained = ChainedEvent(**{k: row[k] for k in ChainedEvent.__dataclass_fields__})
            head = event_hash(chained, self.heads[op.target])
        self.heads[op.target] = row["hash"] = head
        if self.sqlite:
            rank = len(self.event_ids) + 1
            conn.execute(INSERT_EVENT_RANKED, {**row, "b_feed_rank": rank})
            self.event_ids.append(rank)
        else:
            self.event_ids.append(conn.execute(INSERT_EVENT, row).inserted_primary_key[0])

    def take_feed_positions(self, conn: Connection) -> None:
        count = len(self.event_ids)
        if self.sqlite:
            conn.execute(ADVANCE_FEED, {"b_count": count})
        else:
            conn.execute(TAKE_AND_STAMP, {"b_count": count, "b_ids": self.event_ids})

    def cancel(self, conn: Connection, op: Op, values: dict[str, Any]) -> None:
        row = {"b_id": self.row.id, "b_status": values["status"], "b_now": self.now}
        row["b_note"] = values["note"]
        if op.key == "$entry":  # the state entry the fire left
            conn.execute(CANCEL_BY_ENTRY, {**row, "b_entry": self.row.state_entry_seq})
        elif op.key == "$all":
            conn.execute(CANCEL_ALL, row)
        else:
            conn.execute(CANCEL_BY_NAMES, {**row, "b_names": op.key})

    def count(self, conn: Connection, op: Op, values: dict[str, Any]) -> None:
        key = str(self.data.get("device_serial"))
        row = {"b_name": op.key, "b_key": key, "b_by": values["by"], "b_now": self.now}
        if not conn.execute(ADD_COUNTER, row).rowcount:
            new = {"name": op.key, "key": key, "value": values["by"], "updated_at": self.now}
            conn.execute(INSERT_COUNTER, new)


def _changes(engine_data: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the engine's fire set, as it set them (the ticket's own fields stay)."""
    own = {"customer", "device_serial", "device_model", "fault", "priority", "distance_class"}
    return {k: v for k, v in engine_data.items() if k not in own and data.get(k) != v}


# --- tickets whose own timers fall due at a chosen instant --------------------------------------

# Each kind: what falls due at the chosen instant t, and the ticket's past, (trigger, payload,
# minutes after creation) fired at computed instants so that every timer it armed before t was
# cancelled or fired before its own due instant (none is overdue when it is handed to Redis).
# The defaults of the definition's parameters hold: first contact within 1 h (warning at 75%),
# dispatch within 15 min, visit confirmed within 30 min, arrival of a normal fault within 2 h
# (warning at 75%), loaner offered after 8 h of repair, resolution within 24 h.
_TO_DISPATCHED = (
    ("contact", STEPS[0][1], 5),
    ("remote_failed", STEPS[1][1], 10),
    ("dispatch", STEPS[2][1], 20),
    ("confirm_visit", STEPS[3][1], 25),
)
DUE_KINDS: dict[str, tuple[tuple[str, ...], timedelta, tuple[tuple[str, Any, int], ...]]] = {
    # created 45 min before t: the first-contact warning (SLA warning timer)
    "contact_warning": (("sla:first_contact:sla_warning:0.75",), timedelta(minutes=45), ()),
    # created 1 h before t, its warning fired on time: the contact_overdue state timer and the
    # first-contact breach (SLA breach timer, which fires record_breach)
    "contact_overdue": (
        ("contact_overdue", "sla:first_contact:sla_breached:1.0"),
        timedelta(hours=1),
        (),
    ),
    # dispatched 1.5 h before t: the arrival warning (SLA warning timer)
    "arrival_warning": (
        ("sla:arrival:sla_warning:0.75",),
        timedelta(minutes=20) + timedelta(hours=1, minutes=30),
        _TO_DISPATCHED,
    ),
    # repairing since 8 h before t: the loaner_due state timer (spawns a loaner case)
    "loaner_due": (
        ("loaner_due",),
        timedelta(minutes=70) + timedelta(hours=8),
        (
            *_TO_DISPATCHED,
            ("arrive", {}, 50),
            ("diagnose", STEPS[5][1], 60),
            ("consent", STEPS[6][1], 70),
        ),
    ),
}


def ticket_due_at(session: Any, kind: str, due: datetime, serial: int) -> int:
    """Create a ticket (in the caller's transaction) whose ``kind`` timers fall due at ``due``,
    with its past played at computed instants; returns its id. Timers due before ``due`` on the
    way (the first-contact warning of ``contact_overdue``) are fired at their due instant
    through ``timer_firing.fire_due_timer``, as a worker would have."""
    _, back, past = DUE_KINDS[kind]
    created = due - back
    ticket = create_case(session, NAME, ticket_data(serial), actor=ACTOR, now=created).case.id
    for trigger, payload, minutes in past:
        at = created + timedelta(minutes=minutes)
        fire(session, ticket, trigger, payload, actor=ACTOR, now=at)
    if kind == "contact_overdue":
        warning = session.execute(
            select(timers.c.id, timers.c.due_at).where(
                timers.c.case_id == ticket, timers.c.name == DUE_KINDS["contact_warning"][0][0]
            )
        ).one()
        fire_due_timer(session, warning.id, now=warning.due_at)
    return int(ticket)
