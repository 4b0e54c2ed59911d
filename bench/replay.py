"""What the engine wrote in each step, and a baseline that makes the same writes by hand.

:class:`Recorder` listens to an Engine's cursor executions (``before_cursor_execute`` /
``after_cursor_execute``) while a step runs and keeps every statement with its DBAPI time,
and for the ones that write (INSERT, UPDATE, DELETE) the Core statement, its table and bound
values and the rows it changed. After each step it reads which ids the step's INSERTs were
given, so that the baseline can tell "the 3rd timer of the round" from "timer 4711".

:func:`baseline_plan` turns a recorded round into the baseline: per step, one statement for
each statement of the engine that changed rows, in the engine's order, on the same table,
setting the same columns to the same values and matching the same rows (by the same
predicate or primary key). For each distinct SQL text it holds one Core statement, the
engine's own construct taken once from the recording, so both sides send identical SQL; every
bound value is computed in advance. Ids the database assigns (cases, timers, SLA rows) are
taken from the baseline's own INSERTs as it goes and put where the engine's ids were; counter
keys get a suffix per run (they are unique). Ids inside JSON values (a spawned child's id in
its parent's history, a survey's ``service_case_id``) are written as the engine wrote them.
UPDATEs and DELETEs that changed no row, SAVEPOINTs and reads are the engine's own overhead
and are not replayed. :func:`run_baseline` executes a plan, one ``engine.begin()`` per step,
and checks that each UPDATE changed as many rows as the engine's did.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Connection, Engine, event, func, select
from sqlalchemy.sql import Executable, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from engine.store.database import inserted_id
from engine.store.models import Base

# Tables whose ids the database assigns and later statements refer to.
SLOTTED = ("cases", "timers", "case_slas")
# Every table a fire may write; a write anywhere else stops the bench (it could not say what
# the baseline should do with it).
KNOWN = (*SLOTTED, "case_events", "counters", "case_waits", "event_feed_head")
# Columns whose values are case ids, in any table (child_id has no foreign key, but is one).
CASE_COLUMNS = ("case_id", "parent_id", "child_id")


class BenchFailure(RuntimeError):
    """The bench could not do what it promises (a step failed, a write could not be
    replayed, a side wrote something else than the other): no figure is printed."""


@dataclass(frozen=True)
class Write:
    statement: Executable
    table: str
    verb: str  # insert, update, delete
    params: dict[str, Any]
    columns: dict[
        str, tuple[str, str]
    ]  # bound name -> (table, column) it is written to or matched with


@dataclass(frozen=True)
class Statement:
    sql: str
    seconds: float  # from before to after cursor execute: the DBAPI call with its round trip
    rowcount: int
    write: Write | None

    @property
    def changed_rows(self) -> bool:
        if self.write is None:
            return False
        # An UPDATE ... RETURNING (the feed head's advance at commit) reports no rowcount on
        # SQLite until its rows are fetched: it is replayed rather than taken for a no-op.
        returning = " RETURNING " in self.sql.upper()
        return self.write.verb == "insert" or self.rowcount > 0 or returning


@dataclass
class StepRecord:
    kind: str  # create, fire, timer
    label: str  # e.g. "repair_ticket.dispatch"
    seconds: float = 0.0  # the whole transaction, begin to commit
    commit_seconds: float = 0.0  # from the commit event to the end of the transaction
    statements: list[Statement] = field(default_factory=list)
    inserted: dict[str, list[int]] = field(default_factory=dict)  # table -> ids, in order


class Recorder:
    """Records the statements of the steps run between :meth:`start` and :meth:`stop`."""

    def __init__(self, engine: Engine, *, track_ids: bool = True) -> None:
        self.engine = engine
        self.track_ids = track_ids
        self._step: StepRecord | None = None
        self._started = 0.0
        self._commit_at = 0.0
        self._last_ids = self._max_ids() if track_ids else {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._commit)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        event.remove(self.engine, "commit", self._commit)

    def start(self, kind: str, label: str) -> None:
        self._step = StepRecord(kind, label)

    def stop(self, seconds: float, ended_at: float) -> StepRecord:
        step, self._step = self._step, None
        assert step is not None
        step.seconds = seconds
        step.commit_seconds = ended_at - self._commit_at if self._commit_at else 0.0
        self._commit_at = 0.0
        if self.track_ids:
            step.inserted = self._new_ids()
            _match_inserts(step)
        return step

    def _before(self, *_: Any) -> None:
        if self._step is not None:
            self._started = time.perf_counter()

    def _after(self, *args: Any) -> None:
        # (conn, cursor, statement, parameters, context, executemany), as the event passes them
        if self._step is None:
            return
        seconds = time.perf_counter() - self._started
        _, cursor, sql, _, context, many = args
        write = None
        compiled = getattr(context, "compiled", None)
        if compiled is not None and (context.isinsert or context.isupdate or context.isdelete):
            if many or len(context.compiled_parameters) != 1:
                raise BenchFailure(f"an executemany write the baseline cannot replay: {sql}")
            verb = "insert" if context.isinsert else "update" if context.isupdate else "delete"
            table = compiled.statement.table.name
            params = _unexpanded(compiled, context)
            columns = _bound_columns(compiled, table, params)
            write = Write(compiled.statement, table, verb, params, columns)
        self._step.statements.append(Statement(sql, seconds, cursor.rowcount, write))

    def _commit(self, conn: Any) -> None:
        if self._step is not None:
            self._commit_at = time.perf_counter()

    def _max_ids(self) -> dict[str, int]:
        tables = Base.metadata.tables
        with self.engine.connect() as conn:
            return {
                name: conn.execute(
                    select(func.coalesce(func.max(tables[name].c.id), 0))
                ).scalar_one()
                for name in SLOTTED
            }

    def _new_ids(self) -> dict[str, list[int]]:
        tables = Base.metadata.tables
        found = {}
        with self.engine.connect() as conn:
            for name in SLOTTED:
                column = tables[name].c.id
                ids = list(
                    conn.execute(
                        select(column).where(column > self._last_ids[name]).order_by(column)
                    ).scalars()
                )
                if ids:
                    self._last_ids[name] = ids[-1]
                found[name] = ids
        return found


def _unexpanded(compiled: Any, context: Any) -> dict[str, Any]:
    """The bound values as the statement takes them: by the time the cursor runs, an
    expanding ``IN`` parameter ``id_1`` has become ``id_1_1``, ``id_1_2``, ..."""
    params = dict(context.compiled_parameters[0])
    for bind, name in compiled.bind_names.items():
        if bind.expanding and name not in params:
            prefix = f"{name}_"
            keys = [k for k in params if k.startswith(prefix) and k[len(prefix) :].isdigit()]
            keys.sort(key=lambda k: int(k[len(prefix) :]))
            params[name] = [params.pop(k) for k in keys]
    return params


def _bound_columns(
    compiled: Any, table: str, params: Mapping[str, Any]
) -> dict[str, tuple[str, str]]:
    """Which column each bound value goes to (VALUES, SET) or is compared with (WHERE), so
    that ids are recognised by their column, whatever the statement named its parameters."""
    columns = Base.metadata.tables[table].c
    out = {name: (table, name) for name in params if name in columns}
    where = getattr(compiled.statement, "whereclause", None)
    for element in visitors.iterate(where) if where is not None else ():
        if (
            isinstance(element, BinaryExpression)
            and isinstance(element.left, Column)
            and isinstance(element.right, BindParameter)
            and element.right in compiled.bind_names
        ):
            out[compiled.bind_names[element.right]] = (element.left.table.name, element.left.name)
    return out


def _match_inserts(step: StepRecord) -> None:
    """Each INSERT into a slotted table must have left exactly one new row, in order."""
    for name in SLOTTED:
        inserts = [
            s
            for s in step.statements
            if s.write and s.write.table == name and s.write.verb == "insert"
        ]
        if len(inserts) != len(step.inserted[name]):
            raise BenchFailure(
                f"{step.label}: {len(inserts)} INSERTs into {name} but "
                f"{len(step.inserted[name])} new rows (a rolled-back savepoint?)"
            )
    if any(s.sql.upper().startswith("ROLLBACK TO") for s in step.statements):
        raise BenchFailure(f"{step.label}: a savepoint was rolled back; its writes did not stay")


# --- the baseline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """A bound value known only when the baseline runs: ids its own INSERTs were given."""

    param: str
    kind: str  # a slotted table, or "counter_key"
    index: int | tuple[int, ...] | str  # slot(s) in that table; for counter keys the key


@dataclass(frozen=True)
class Op:
    statement: Executable
    params: Mapping[str, Any]
    refs: tuple[Ref, ...]
    yields: str | None  # the slotted table whose next slot this INSERT fills
    rowcount: int | None  # rows an UPDATE / DELETE must change (as the engine's did)


@dataclass(frozen=True)
class PlanStep:
    kind: str
    label: str
    ops: tuple[Op, ...]


@dataclass(frozen=True)
class Plan:
    steps: tuple[PlanStep, ...]
    slots: Mapping[str, int]  # rows per slotted table a run of the plan inserts
    skipped: Mapping[str, int]  # engine statements not replayed, by reason


def baseline_plan(steps: Sequence[StepRecord]) -> Plan:
    """The baseline for a recorded round (see the module docstring)."""
    slot_of: dict[str, dict[int, int]] = {name: {} for name in SLOTTED}
    shapes: dict[str, Executable] = {}  # one statement per SQL shape, as if built once
    skipped = {"reads": 0, "writes that changed no row": 0, "savepoints": 0}
    plan = []
    for step in steps:
        ops = []
        fresh = {name: iter(step.inserted[name]) for name in SLOTTED}
        for statement in step.statements:
            write = statement.write
            if write is None:
                sql = statement.sql.upper()
                if not sql.startswith("BEGIN"):  # the baseline's engine.begin() issues its own
                    skipped["savepoints" if "SAVEPOINT" in sql else "reads"] += 1
                continue
            if not statement.changed_rows:
                skipped["writes that changed no row"] += 1
                continue
            if write.table not in KNOWN:
                raise BenchFailure(
                    f"{step.label}: the engine wrote to {write.table}: {statement.sql}"
                )
            params, refs = _unbind(write, slot_of, step.label)
            yields = None
            if write.verb == "insert" and write.table in SLOTTED:
                engine_id = next(fresh[write.table])
                slot_of[write.table][engine_id] = len(slot_of[write.table])
                yields = write.table
            ops.append(
                Op(
                    shapes.setdefault(statement.sql, write.statement),
                    params,
                    refs,
                    yields,
                    None if write.verb == "insert" else statement.rowcount,
                )
            )
        plan.append(PlanStep(step.kind, step.label, tuple(ops)))
    return Plan(tuple(plan), {name: len(slot_of[name]) for name in SLOTTED}, skipped)


def _unbind(
    write: Write, slot_of: Mapping[str, Mapping[int, int]], where: str
) -> tuple[dict[str, Any], tuple[Ref, ...]]:
    """The write's bound values, with the engine's ids turned into references to slots."""
    refs = []
    for name, value in write.params.items():
        table, column = write.columns.get(name, ("", ""))
        if value is None or not column:
            continue
        if column in CASE_COLUMNS:
            refs.append(Ref(name, "cases", _slots(slot_of["cases"], value, where)))
        elif column == "id" and table in SLOTTED:
            refs.append(Ref(name, table, _slots(slot_of[table], value, where)))
        elif (table, column) == ("counters", "key"):
            refs.append(Ref(name, "counter_key", str(value)))
    return dict(write.params), tuple(refs)


def _slots(slots: Mapping[int, int], value: Any, where: str) -> int | tuple[int, ...]:
    try:
        if isinstance(value, list | tuple):
            return tuple(slots[v] for v in value)
        return slots[value]
    except KeyError as exc:
        raise BenchFailure(
            f"{where}: the engine wrote to a row not made in this round ({exc})"
        ) from exc


def _resolve(op: Op, ids: Mapping[str, list[int]], suffix: str) -> Mapping[str, Any]:
    if not op.refs:
        return op.params
    params = dict(op.params)
    for ref in op.refs:
        if ref.kind == "counter_key":
            params[ref.param] = f"{ref.index}{suffix}"
        elif isinstance(ref.index, tuple):
            params[ref.param] = [ids[ref.kind][i] for i in ref.index]
        else:
            params[ref.param] = ids[ref.kind][ref.index]  # type: ignore[index]
    return params


@dataclass
class BaselineRun:
    seconds: list[float]  # per step
    ids: dict[str, list[int]]  # what each slot became


def run_baseline(engine: Engine, plan: Plan, suffix: str) -> BaselineRun:
    """Execute the plan once, one transaction per step; ``suffix`` keeps counter keys apart
    from other runs'."""
    ids: dict[str, list[int]] = {name: [] for name in SLOTTED}
    seconds = []
    perf_counter = time.perf_counter
    for step in plan.steps:
        started = perf_counter()
        with engine.begin() as conn:
            _run_ops(conn, step, ids, suffix)
        seconds.append(perf_counter() - started)
    return BaselineRun(seconds, ids)


def _run_ops(conn: Connection, step: PlanStep, ids: dict[str, list[int]], suffix: str) -> None:
    for op in step.ops:
        result = conn.execute(op.statement, _resolve(op, ids, suffix))
        if op.yields is not None:
            ids[op.yields].append(inserted_id(result))
        elif op.rowcount is not None and result.rowcount != op.rowcount:
            raise BenchFailure(
                f"baseline {step.label}: changed {result.rowcount} rows where the engine "
                f"changed {op.rowcount}"
            )


def count_ops(plan: Plan) -> dict[str, int]:
    """Statements the baseline issues, by verb and table."""
    out: dict[str, int] = {}
    for step in plan.steps:
        for op in step.ops:
            table = op.statement.table.name  # type: ignore[attr-defined]
            verb = type(op.statement).__name__.upper()
            out[f"{verb} {table}"] = out.get(f"{verb} {table}", 0) + 1
    return out
