"""Moving running cases from one version of their definition to another: the pure part.

A migration plan names the two versions, how each state of the old version in use maps to a
state of the new one (a state kept under the same name maps to itself), data fields to set
(CEL over the case as it was) or drop, and whether the case keeps its parameter snapshot or
takes the new version's. :func:`check_plan` refuses a plan that cannot be right for any case
(an unknown state, a field the new version does not declare, CEL that does not compile);
what stops one case (its state has no counterpart, its data would not fit) is said per case
by the service (engine/services/case_migration.py).

A case's history is never rewritten: the ``migrated`` event records the mapping, and
:func:`as_current` reads the events before it with the states renamed, so SLA clocks derived
from the history under the new version see the case's past in the new version's words
(engine/core/sla.py ``walk``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from engine.core.definition import WorkflowDefinition
from engine.core.expressions import compiled
from engine.core.messages import (
    PLAN_EXPRESSION,
    PLAN_MAPS_TO_FINAL,
    PLAN_REASON_REQUIRED,
    PLAN_SAME_VERSION,
    PLAN_SET_AND_DROPPED,
    PLAN_UNDECLARED_FIELD,
    PLAN_UNKNOWN_SOURCE,
    PLAN_UNKNOWN_TARGET,
    Message,
    error_record,
)
from engine.core.records import EventRecord
from engine.errors import ExpressionError, MigrationInvalid

MIGRATED = "migrated"
# The keys of a migrated event's payload that later readers rely on.
STATE_MAP_KEY = "state_map"
DROPPED_KEY = "dropped"


class ParamsChoice(str, Enum):
    """What becomes of the case's parameter snapshot: there is no default, the process owner
    says which (a parameter is a promise made when the case started)."""

    KEEP = "keep"  # the values the case started with (parameters new in B take B's current)
    SNAPSHOT = "snapshot"  # the values B would give a case created now


@dataclass(frozen=True)
class MigrationPlan:
    definition: str
    from_version: int
    to_version: int
    params: ParamsChoice
    state_map: Mapping[str, str] = field(default_factory=dict)
    sets: Mapping[str, str] = field(default_factory=dict)  # field -> CEL
    drops: tuple[str, ...] = ()
    where: str | None = None
    reason: str = ""

    def target_state(self, state: str) -> str:
        return self.state_map.get(state, state)

    def to_dict(self) -> dict[str, Any]:
        return {
            "definition": self.definition,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "params": self.params.value,
            "state_map": dict(self.state_map),
            "set": dict(self.sets),
            "drop": list(self.drops),
            "where": self.where,
            "reason": self.reason,
        }


def parse_pairs(items: Sequence[str], option: str) -> dict[str, str]:
    """``OLD=NEW`` / ``FIELD=CEL`` texts as a mapping; a malformed or repeated one is refused."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise MigrationInvalid(
                f"{option} {item!r} is not of the form NAME=VALUE.",
                hint=f"Write e.g. {option} old_state=new_state, or {option} field=data.x.",
            )
        if key in out:
            raise MigrationInvalid(
                f"{option} names {key!r} twice.", hint="Give each name once.", field=key
            )
        out[key] = value
    return out


def check_plan(plan: MigrationPlan, old: WorkflowDefinition, new: WorkflowDefinition) -> None:
    """Refuse a plan that is wrong whatever the case: every problem at once."""
    found: list[Message] = []
    if plan.from_version == plan.to_version:
        found.append(Message(PLAN_SAME_VERSION, {"version": plan.from_version}))
    if not plan.reason.strip():
        found.append(Message(PLAN_REASON_REQUIRED))
    for source, target in plan.state_map.items():
        if source not in old.state_names:
            found.append(
                Message(PLAN_UNKNOWN_SOURCE, {"version": plan.from_version, "source": source})
            )
        if target not in new.state_names:
            states = list(new.state_names)
            found.append(
                Message(
                    PLAN_UNKNOWN_TARGET,
                    {"version": plan.to_version, "target": target, "states": states},
                )
            )
        elif target in new.final_states and source not in old.final_states:
            found.append(Message(PLAN_MAPS_TO_FINAL, {"source": source, "target": target}))
    declared = _declared_fields(new)
    for name in plan.sets:
        if declared is not None and name not in declared:
            found.append(
                Message(PLAN_UNDECLARED_FIELD, {"version": plan.to_version, "field": name})
            )
    for name in sorted(set(plan.sets) & set(plan.drops)):
        found.append(Message(PLAN_SET_AND_DROPPED, {"field": name}))
    for name, source in plan.sets.items():
        found += _compile_problem(source, f"--set {name}")
    if plan.where:
        found += _compile_problem(plan.where, "--where")
    if found:
        problems = [str(m) for m in found]
        error = MigrationInvalid(
            f"The migration of {plan.definition!r} from version {plan.from_version} to "
            f"{plan.to_version} cannot run: " + "; ".join(problems) + ".",
            hint="Fix the plan; `svcflow definitions diff` shows what changed between them.",
            definition=plan.definition,
            problems=problems,
        )
        error.messages = tuple(found)
        raise error


def _declared_fields(definition: WorkflowDefinition) -> set[str] | None:
    properties = definition.data_schema.get("properties")
    return set(properties) if isinstance(properties, Mapping) else None


def _compile_problem(source: str, where: str) -> list[Message]:
    try:
        compiled(source, where)
    except ExpressionError as exc:  # its budget error too: said in the plan's terms
        return [Message(PLAN_EXPRESSION, {"error": error_record(exc)})]
    return []


def unmapped_states(
    plan: MigrationPlan, in_use: Sequence[str], new: WorkflowDefinition
) -> list[str]:
    """States cases are in that have no counterpart in the new version."""
    return [s for s in in_use if plan.target_state(s) not in new.state_names]


def as_current(events: Sequence[EventRecord]) -> Sequence[EventRecord]:
    """The history with the states of events before each ``migrated`` event renamed as that
    migration (and every later one) mapped them: the case's past in the words of the version
    it is on now. A history without migrations is returned as it is."""
    if not any(e.event_type == MIGRATED for e in events):
        return events
    out: list[EventRecord] = []
    mapping: dict[str, str] = {}  # a name at this point of the history -> its name now
    for event in reversed(events):
        if event.event_type == MIGRATED:
            out.append(event)
            step = event.payload.get(STATE_MAP_KEY) or {}
            mapping = {
                name: mapping.get(step.get(name, name), step.get(name, name))
                for name in {*step, *mapping}
            }
            continue
        out.append(_renamed(event, mapping) if mapping else event)
    out.reverse()
    return out


def _renamed(event: EventRecord, mapping: Mapping[str, str]) -> EventRecord:
    source = event.from_state
    return dataclasses.replace(
        event,
        from_state=mapping.get(source, source) if source is not None else None,
        to_state=mapping.get(event.to_state, event.to_state),
    )


PAST_SHOWN = 5  # transitions of a case's past said per case


@dataclass(frozen=True)
class PastMove:
    """A transition of a case's past that the plan's new version has no transition for."""

    seq: int
    trigger: str
    source: str
    dest: str
    to_version: int

    def __str__(self) -> str:
        return (
            f"event {self.seq}: {self.trigger!r} from {self.source!r} to {self.dest!r} is not a "
            f"transition of version {self.to_version}"
        )


def past_moves_not_allowed(
    events: Sequence[EventRecord], plan: MigrationPlan, new: WorkflowDefinition
) -> list[PastMove]:
    """The transitions of a case's past the new version has no transition for (its states
    renamed as the plan maps them), at most :data:`PAST_SHOWN`: not a reason to refuse the
    move, which changes no past, but what a process owner should know about cases whose
    history the new version would not have allowed. Guards are not evaluated: they read data
    as it was then. A transition without ``dest`` is a stay: the history records it with the
    same ``from`` and ``to`` state, so it is matched by the state it keeps, with ``reenter``
    or not (re-entering changes which timers run, not which moves are allowed)."""
    moves = {(source, t.trigger, t.target(source)) for t in new.transitions for source in t.sources}
    found: list[PastMove] = []
    for event in as_current(events):
        if event.event_type != "transition" or event.trigger is None:
            continue
        source = plan.target_state(event.from_state or "")
        dest = plan.target_state(event.to_state)
        if (source, event.trigger, dest) not in moves:
            found.append(PastMove(event.seq, event.trigger, source, dest, plan.to_version))
            if len(found) == PAST_SHOWN:
                break
    return found
