"""The compiled state machine of one definition version, and the pure transition step.

One ``transitions.Machine`` is built per (definition, version) and cached: building it compiles
every guard and action expression and every JSON Schema once. Cases never get a machine of
their own. To fire a trigger, the step hands the machine a short-lived :class:`_CaseView`
holding the case's state and data; ``transitions`` picks the first transition whose guard
holds, runs its actions and moves the view. The caller persists the outcome.

The step is pure: it reads no clock (``now`` is passed in) and touches no database, and it
never mutates its inputs, so a failure anywhere leaves the case exactly as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, cast

import jsonschema
from cachetools import LRUCache
from transitions import EventData, Machine

from engine.core.calendar import BusinessCalendar
from engine.core.decisions import Decisions
from engine.core.definition import SYSTEM_ROLE, ActionKind, TransitionSpec, WorkflowDefinition
from engine.core.expressions import Expression, make_context, to_json_value
from engine.core.limits import (
    VALUE_MAX_CHARS,
    VALUE_MAX_DEPTH,
    VALUE_MAX_ITEMS,
    VALUE_MAX_VALUES,
    value_excess,
)
from engine.core.reported_time import OccurredAt
from engine.core.schemas import SchemaCheck, error_text
from engine.errors import (
    ActionFailed,
    CaseClosed,
    DataInvalid,
    ExpressionError,
    GuardRejected,
    InvalidTrigger,
    PayloadInvalid,
    TriggerNotPermitted,
    UnknownTrigger,
    written,
)

ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Actor:
    """Who fires a trigger. ``admin`` may fire any transition open to a person; ``system`` is
    the engine's own role (timers, SLA breaches, a child case's news)."""

    name: str
    roles: frozenset[str] = frozenset()

    @classmethod
    def system(cls, name: str = SYSTEM_ROLE) -> Actor:
        return cls(name, frozenset({SYSTEM_ROLE}))

    def may_fire(self, allowed: Sequence[str]) -> bool:
        """Whether this actor may fire a transition open to ``allowed`` (empty: anyone). The
        engine fires only what its definition names for it (a timer, a breach, a related
        case's news), whatever roles the transition opens it to as well."""
        if not allowed or SYSTEM_ROLE in self.roles or self.roles & set(allowed):
            return True
        return ADMIN_ROLE in self.roles and tuple(allowed) != (SYSTEM_ROLE,)


@dataclass(frozen=True)
class SpawnRequest:
    """A child case the transition asks for; the service creates it in the same transaction."""

    definition: str
    data: dict[str, Any]
    business_key: str | None
    path: str


@dataclass(frozen=True)
class StepResult:
    """The outcome of firing a trigger: what the caller persists in one transaction."""

    trigger: str
    from_state: str
    to_state: str
    data: dict[str, Any]
    changes: dict[str, Any]
    transition_index: int
    counter_deltas: dict[str, int] = field(default_factory=dict)
    spawns: tuple[SpawnRequest, ...] = ()
    # The case stayed in its state but left and re-entered it (``reenter: true``).
    reentered: bool = False

    @property
    def entered(self) -> bool:
        """Whether the case (re-)entered a state: its state timers start from this step."""
        return self.reentered or self.to_state != self.from_state


@dataclass
class _CaseView:
    """What ``transitions`` moves: a throwaway model carrying one step's inputs and outputs."""

    state: str
    data: dict[str, Any]
    payload: Mapping[str, Any]
    params: Mapping[str, Any]
    now: datetime
    actor: Actor
    counters: dict[str, int] = field(default_factory=dict)
    case: Mapping[str, Any] = field(default_factory=dict)
    decisions: Decisions = field(default_factory=Decisions)
    changes: dict[str, Any] = field(default_factory=dict)
    counter_deltas: dict[str, int] = field(default_factory=dict)
    spawns: list[SpawnRequest] = field(default_factory=list)
    chosen: int | None = None
    calendars: Mapping[str, BusinessCalendar] | None = None

    def context(self, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return make_context(
            self.data if data is None else data,
            self.payload,
            self.params,
            self.now,
            counters=self.counters,
            case=self.case,
            decisions=self.decisions,
            calendars=self.calendars,
        )


# JSON Schema keywords that constrain each property independently of the others; a data
# schema using only these can be checked field by field.
_PER_FIELD_KEYWORDS = frozenset(
    {
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "properties",
        "required",
        "additionalProperties",
    }
)


def _declared(schema: Mapping[str, Any]) -> set[str] | None:
    """The fields an object schema declares, or None when it says nothing of which (no
    ``properties``) or keeps its own rule for the others (``additionalProperties`` set)."""
    if "additionalProperties" in schema or not isinstance(schema.get("properties"), dict):
        return None
    return set(schema["properties"])


def _names(fields: Sequence[str]) -> str:
    return ", ".join(fields)


def _field_validators(schema: Mapping[str, Any]) -> dict[str, SchemaCheck] | None:
    """One validator per declared field, or None when the schema has cross-field rules
    (allOf, if/then, dependentRequired, $defs references, ...)."""
    if not set(schema) <= _PER_FIELD_KEYWORDS or not isinstance(schema.get("properties"), dict):
        return None
    if any("$ref" in str(sub) for sub in schema["properties"].values()):
        return None
    return {name: SchemaCheck(sub) for name, sub in schema["properties"].items()}


def _refuse_excess(
    value: Any, what: str, error: type[PayloadInvalid | DataInvalid], **fields: Any
) -> None:
    """Refuse a payload or case data beyond the limits of :mod:`engine.core.limits`: guards
    and actions read them inside the write transaction, and the CEL evaluator cannot be
    interrupted, so their size is what bounds an evaluation's time."""
    excess = value_excess(value)
    if excess is None:
        return
    raise error(
        f"{excess.describe(what)}.",
        hint=f"A payload or case data holds at most {VALUE_MAX_ITEMS} items per list or "
        f"mapping, {VALUE_MAX_VALUES:,} values in all, strings of {VALUE_MAX_CHARS:,} "
        f"characters, nested {VALUE_MAX_DEPTH} deep (docs/definitions.md, Limits). Keep large "
        "documents elsewhere and send a reference.",
        limit=excess.limit,
        at=excess.where or None,
        **fields,
    )


def _schema_error_text(error: jsonschema.ValidationError, prefix: str = "") -> str:
    where = "/".join(
        [prefix, *map(str, error.absolute_path)] if prefix else map(str, error.absolute_path)
    )
    return f"{where or '<root>'}: {error_text(error)}"


class CompiledWorkflow:
    """A definition version ready to run: machine, compiled expressions, schema validators."""

    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self._transitions = {t.index: t for t in definition.transitions}
        self._guards = {
            t.index: Expression(t.guard, f"{t.path}.guard")
            for t in definition.transitions
            if t.guard
        }
        self._action_exprs = {
            a.path: Expression(a.expr, a.path)
            for t in definition.transitions
            for a in t.actions
            if a.expr is not None
        }
        self._spawn_exprs = {
            f"{a.path}.{key}": Expression(src, f"{a.path}.{key}")
            for t in definition.transitions
            for a in t.actions
            if a.spawn is not None
            for key, src in [
                *((f"data.{k}", v) for k, v in a.spawn.data.items()),
                *((("business_key", a.spawn.business_key),) if a.spawn.business_key else ()),
            ]
        }
        self._counter_keys = {
            name: Expression(c.key, f"counters.{name}.key")
            for name, c in definition.counters.items()
        }
        self._payload_validators = {
            t.index: SchemaCheck(t.payload_schema)
            for t in definition.transitions
            if t.payload_schema is not None
        }
        self._reads_counters: dict[tuple[str, str], bool] = {}
        self._data_validator = SchemaCheck(definition.data_schema)
        self._field_validators = _field_validators(definition.data_schema)
        self._allowed: dict[str, list[str]] = {}
        # (state, trigger) -> who may fire it from there: the roles of each of its transitions
        self._roles: dict[tuple[str, str], list[tuple[str, ...]]] = {}
        for t in definition.transitions:
            for source in t.sources:
                self._allowed.setdefault(source, [])
                if t.trigger not in self._allowed[source]:
                    self._allowed[source].append(t.trigger)
                self._roles.setdefault((source, t.trigger), []).append(definition.roles_of(t))
        self.machine = Machine(
            model=None,
            states=[{"name": s.name, "final": s.final} for s in definition.states],
            initial=definition.initial,
            transitions=[self._machine_transition(t) for t in definition.transitions],
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
            model_attribute="state",
        )

    def _machine_transition(self, t: TransitionSpec) -> dict[str, Any]:
        return {
            "trigger": t.trigger,
            "source": list(t.sources),
            "dest": t.dest,
            "conditions": [partial(self._condition, t.index)],
            "before": [partial(self._before, t.index)],
        }

    # --- callbacks run by transitions ----------------------------------------------------------

    def _condition(self, index: int, event: EventData) -> bool:
        view = cast(_CaseView, event.model)  # the model step() hands the machine
        validator = self._payload_validators.get(index)
        if validator is not None:
            errors = sorted(validator.errors(dict(view.payload)), key=str)
            if errors:
                t = self._transitions[index]
                raise PayloadInvalid(
                    f"Payload for trigger {t.trigger!r} is invalid: "
                    + "; ".join(_schema_error_text(e) for e in errors),
                    hint=f"The payload must match {t.path}.payload_schema.",
                    trigger=t.trigger,
                    path=f"{t.path}.payload_schema",
                    errors=[_schema_error_text(e) for e in errors],
                )
        if SYSTEM_ROLE not in view.actor.roles:  # what the engine sends is the definition's own
            self._refuse_unknown_payload(index, view.payload)
        guard = self._guards.get(index)
        if guard is None:
            return True
        result = guard.evaluate(view.context())
        if not isinstance(result, bool):
            raise ExpressionError(
                f"Guard at {guard.path} gave {result!r}, not true or false.",
                hint="A guard must be a boolean expression.",
                path=guard.path,
            )
        return result

    def _before(self, index: int, event: EventData) -> None:
        view = cast(_CaseView, event.model)  # the model step() hands the machine
        t = self._transitions[index]
        if not view.actor.may_fire(self.definition.roles_of(t)):
            raise _not_permitted(view.actor, t, self.definition.roles_of(t))
        view.chosen = index
        data = dict(view.data)
        for action in t.actions:
            context = view.context(data)
            if action.kind is ActionKind.COUNT:
                view.counters[action.field] = view.counters.get(action.field, 0) + action.by
                view.counter_deltas[action.field] = (
                    view.counter_deltas.get(action.field, 0) + action.by
                )
                continue
            if action.kind is ActionKind.SPAWN:
                view.spawns.append(self._spawn_request(action.path, action, context))
                continue
            if action.kind is ActionKind.SET:
                value = to_json_value(
                    self._action_exprs[action.path].evaluate(context), action.path
                )
            else:
                current = data.get(action.field, 0)
                if not isinstance(current, int | float) or isinstance(current, bool):
                    raise ActionFailed(
                        f"Action at {action.path} increments data.{action.field}, which holds "
                        f"{written(current)}.",
                        hint="Counters must hold numbers.",
                        path=action.path,
                    )
                value = current + action.by
            data[action.field] = value
            view.changes[action.field] = value
        if view.changes:
            _refuse_excess(data, f"Case data after {t.path}", DataInvalid, trigger=t.trigger)
        self._check_changes(data, view.changes, f"after {t.path}", t.trigger)
        view.data = data

    def _spawn_request(self, path: str, action: Any, context: Mapping[str, Any]) -> SpawnRequest:
        spec = action.spawn
        data = {
            name: to_json_value(self._spawn_exprs[f"{path}.data.{name}"].evaluate(context), path)
            for name in spec.data
        }
        key = None
        if spec.business_key:
            raw = self._spawn_exprs[f"{path}.business_key"].evaluate(context)
            key = str(to_json_value(raw, path))
        return SpawnRequest(spec.definition, data, key, path)

    def reads_counters(self, trigger: str, state: str) -> bool:
        """Whether firing ``trigger`` from ``state`` can read a counter's value: some
        transition it may take has a guard or an action whose expression reads ``counters``.
        (A ``count`` action only adds to a counter; it needs no value read.)"""
        key = (trigger, state)
        found = self._reads_counters.get(key)
        if found is None:
            found = any(
                "counters" in self.definition.decisions.variables_read(expression)
                for t in self._transitions_by_trigger(trigger, state)
                for expression in self._expressions_of(t)
            )
            self._reads_counters[key] = found
        return found

    def _expressions_of(self, t: TransitionSpec) -> list[Expression]:
        out = [self._guards[t.index]] if t.index in self._guards else []
        for a in t.actions:
            if a.path in self._action_exprs:
                out.append(self._action_exprs[a.path])
            out += [e for k, e in self._spawn_exprs.items() if k.startswith(f"{a.path}.")]
        return out

    def counter_keys(
        self,
        data: Mapping[str, Any],
        params: Mapping[str, Any],
        now: datetime,
        calendars: Mapping[str, BusinessCalendar] | None = None,
    ) -> dict[str, str]:
        """Which counter of each declared name this case's data points at."""
        context = make_context(
            data,
            {},
            params,
            now,
            decisions=self.definition.decisions,
            calendars=calendars,
        )
        return {
            name: str(to_json_value(expr.evaluate(context), expr.path))
            for name, expr in self._counter_keys.items()
        }

    def _check_changes(
        self, data: Mapping[str, Any], changes: Mapping[str, Any], where: str, trigger: str
    ) -> None:
        """Check data after actions. Data was valid before, so when the schema constrains each
        field on its own (the usual shape), checking the changed fields is exact and much
        cheaper than validating the whole document on every fire."""
        if self._field_validators is None:
            self._check_data(data, where, trigger)
            return
        texts = [
            _schema_error_text(error, prefix=name)
            for name in changes
            if name in self._field_validators
            for error in self._field_validators[name].errors(changes[name])
        ]
        unknown = [n for n in changes if n not in self._field_validators]
        if unknown and self.definition.data_schema.get("additionalProperties") is False:
            self._check_data(data, where, trigger)
        if texts:
            self._raise_data_invalid(texts, where, trigger)

    def _check_data(self, data: Mapping[str, Any], where: str, trigger: str | None) -> None:
        texts = [_schema_error_text(e) for e in self._data_validator.errors(dict(data))]
        if texts:
            self._raise_data_invalid(texts, where, trigger)

    def _raise_data_invalid(self, texts: list[str], where: str, trigger: str | None) -> None:
        texts = sorted(texts)
        raise DataInvalid(
            f"Case data is invalid {where}: " + "; ".join(texts),
            hint="Case data must match the definition's data_schema.",
            trigger=trigger,
            errors=texts,
        )

    # --- public API ----------------------------------------------------------------------------

    def allowed_triggers(self, state: str, actor: Actor | None = None) -> list[str]:
        """Triggers with a transition out of ``state``, guards not evaluated; with ``actor``,
        only those it may fire (its roles)."""
        triggers = self._allowed.get(state, [])
        if actor is None:
            return list(triggers)
        return [t for t in triggers if self._may_fire(actor, state, t)]

    def _may_fire(self, actor: Actor, state: str, trigger: str) -> bool:
        return any(actor.may_fire(roles) for roles in self._roles.get((state, trigger), []))

    def occurred_at(self, trigger: str) -> OccurredAt | None:
        """The payload field that says when ``trigger``'s fact happened, if it declares one
        (the validator makes every transition of a trigger agree)."""
        return next(
            (t.occurred_at for t in self.definition.transitions if t.trigger == trigger), None
        )

    def check_initial_data(self, data: Mapping[str, Any]) -> None:
        _refuse_excess(data, "The case data", DataInvalid)
        self._refuse_unknown_data(data)
        self._check_data(data, "on creation", None)

    def check_data_changes(self, data: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
        """Fields a caller sets on a case (an operator's reassignment): known, and valid."""
        _refuse_excess(data, "The case data", DataInvalid)
        self._refuse_unknown_data(changes)
        self._check_data(data, "after the change", None)

    def check_migrated_data(self, data: Mapping[str, Any]) -> None:
        """A running case's whole data as it would be on this version (a migration): no field
        this version does not declare, and valid against its data_schema."""
        _refuse_excess(data, "The case data", DataInvalid)
        self._refuse_unknown_data(data)
        self._check_data(data, f"under version {self.definition.version}", None)

    # --- unknown fields (docs/definitions.md, unknown_fields) ----------------------------------

    def _refuse_unknown_data(self, data: Mapping[str, Any]) -> None:
        declared = _declared(self.definition.data_schema)
        if self.definition.unknown_fields != "refuse" or declared is None:
            return
        unknown = sorted(set(data) - declared)
        if unknown:
            raise DataInvalid(
                f"Data field{'s' if len(unknown) > 1 else ''} {_names(unknown)} "
                f"{'are' if len(unknown) > 1 else 'is'} not declared by "
                f"{self.definition.name!r}. Declared: {_names(sorted(declared))}.",
                hint="Check the spelling; a new field belongs in the definition's data_schema "
                "first.",
                unexpected=unknown,
                expected=sorted(declared),
            )

    def _refuse_unknown_payload(self, index: int, payload: Mapping[str, Any]) -> None:
        t = self._transitions[index]
        declared = _declared(t.payload_schema) if t.payload_schema is not None else None
        if self.definition.unknown_fields != "refuse" or declared is None:
            return
        unknown = sorted(set(payload) - declared)
        if unknown:
            raise PayloadInvalid(
                f"Payload field{'s' if len(unknown) > 1 else ''} {_names(unknown)} "
                f"{'are' if len(unknown) > 1 else 'is'} not expected by trigger {t.trigger!r}. "
                f"Expected: {_names(sorted(declared)) or 'no fields'}.",
                hint="Check the spelling against the trigger's payload_schema (the API's "
                "OpenAPI document and docs/workflows.md list them).",
                trigger=t.trigger,
                path=f"{t.path}.payload_schema",
                unexpected=unknown,
                expected=sorted(declared),
            )

    def step(
        self,
        *,
        state: str,
        data: Mapping[str, Any],
        trigger: str,
        payload: Mapping[str, Any],
        params: Mapping[str, Any],
        now: datetime,
        actor: Actor,
        case_id: int | None = None,
        counters: Mapping[str, int] | None = None,
        calendars: Mapping[str, BusinessCalendar] | None = None,
        created_at: datetime | None = None,
    ) -> StepResult:
        """Fire ``trigger`` from ``state``; raise a domain error and change nothing on failure.

        ``counters`` are the current values of the definition's counters for this case; the
        result's ``counter_deltas`` and ``spawns`` are effects the caller applies.
        ``calendars`` are those guards and actions may compute business time on (None: the
        built-in ones; the services hand the database's). ``created_at``: the case's creation,
        read as ``case.created_at`` (None: ``now``, a case being created)."""
        if state in self.definition.final_states:
            raise CaseClosed(
                f"Case is in final state {state!r} and takes no more triggers.",
                case_id=case_id,
                state=state,
                trigger=trigger,
            )
        event = self.machine.events.get(trigger)
        if event is None:
            raise UnknownTrigger(
                case_id=case_id,
                state=state,
                trigger=trigger,
                allowed=self.allowed_triggers(state, actor),
                defined=sorted({t.trigger for t in self.definition.transitions}),
            )
        if state not in event.transitions:
            raise InvalidTrigger(
                case_id=case_id,
                state=state,
                trigger=trigger,
                allowed=self.allowed_triggers(state, actor),
            )
        if not self._may_fire(actor, state, trigger):
            t = next(
                t
                for t in self.definition.transitions
                if t.trigger == trigger and state in t.sources
            )
            raise _not_permitted(actor, t, self.definition.roles_of(t))
        view = _CaseView(
            state,
            dict(data),
            dict(payload),
            params,
            now,
            actor,
            counters=dict(counters or {}),
            case={
                "id": case_id or 0,
                "definition": self.definition.name,
                "state": state,
                "created_at": created_at or now,
            },
            decisions=self.definition.decisions,
            calendars=calendars,
        )
        # Before any guard reads it: what an evaluation may cost grows with what it is given.
        _refuse_excess(payload, f"The payload of {trigger!r}", PayloadInvalid, trigger=trigger)
        moved = event.trigger(view)
        if not moved or view.chosen is None:
            raise self._refusal(trigger, state, case_id)
        return StepResult(
            trigger=trigger,
            from_state=state,
            to_state=view.state,
            data=view.data,
            changes=view.changes,
            transition_index=view.chosen,
            counter_deltas=view.counter_deltas,
            spawns=tuple(view.spawns),
            reentered=view.state == state and self._transitions[view.chosen].reenter,
        )

    def _transitions_by_trigger(self, trigger: str, state: str) -> list[TransitionSpec]:
        return [
            t for t in self.definition.transitions if t.trigger == trigger and state in t.sources
        ]

    def _refusal(self, trigger: str, state: str, case_id: int | None) -> GuardRejected:
        """Why no transition took the trigger: in the definition's own words where it gives
        them (``guard_message``), with the raw guard expressions kept as detail."""
        tried = [t for t in self._transitions_by_trigger(trigger, state) if t.guard]
        guards = [f"{t.path}.guard = {t.guard}" for t in tried]
        reasons = [t.guard_message for t in tried if t.guard_message is not None]
        if reasons:
            missing = "; ".join(r.en for r in reasons)
            return GuardRejected(
                f"{trigger!r} cannot be fired in {state!r} yet: {missing}",
                hint="Do what is missing, then fire it again.",
                case_id=case_id,
                state=state,
                trigger=trigger,
                reasons=[{"en": r.en, "zh": r.zh} for r in reasons],
                guards=guards,
            )
        return GuardRejected(
            f"No transition for {trigger!r} from {state!r} has a guard that holds.",
            hint="Guards tried: " + "; ".join(guards),
            case_id=case_id,
            state=state,
            trigger=trigger,
            guards=guards,
        )


# One compiled machine per definition version in use; bounded, least recently used first out.
_CACHE: LRUCache[tuple[str, int | None, str], CompiledWorkflow] = LRUCache(maxsize=512)
_CACHE_LOCK = threading.Lock()


def compile_workflow(definition: WorkflowDefinition) -> CompiledWorkflow:
    """The cached compiled machine for a definition version (built once per process)."""
    # Keyed by content as well as name + version: two databases in one process (tests, a
    # migration) may hold different documents under the same name and version.
    key = (definition.name, definition.version, definition.fingerprint)
    with _CACHE_LOCK:
        compiled = _CACHE.get(key)
    if compiled is None:
        compiled = CompiledWorkflow(definition)  # outside the lock: two builds are harmless
        with _CACHE_LOCK:
            compiled = _CACHE.setdefault(key, compiled)
    return compiled


def _not_permitted(actor: Actor, t: TransitionSpec, roles: Sequence[str]) -> TriggerNotPermitted:
    if tuple(roles) == (SYSTEM_ROLE,):
        return TriggerNotPermitted(
            f"{actor.name!r} may not fire {t.trigger!r}: svcflow fires it itself (a timer, an "
            "SLA breach or a related case's news), and what it records cannot be sent by a "
            "caller.",
            hint="To act on the case by hand, use an operator action (force the state, retry "
            "or cancel a timer): they are audited. A definition may open the trigger to a role "
            "with `roles:`.",
            trigger=t.trigger,
            path=f"{t.path}.roles",
        )
    return TriggerNotPermitted(
        f"{actor.name!r} may not fire {t.trigger!r}: it needs one of the roles {', '.join(roles)}.",
        hint="Use a token with one of those roles.",
        trigger=t.trigger,
        path=f"{t.path}.roles",
    )
