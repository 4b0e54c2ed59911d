"""Workflow definitions: immutable, versioned values.

A definition is what a process owner writes (YAML under ``workflows/``); a *case* refers to
one by name and version and stores only its state and data. This module turns validated
definition documents into frozen dataclasses and reads YAML/JSON source text. It decides
nothing about persistence: publishing (which assigns the version) lives in
:mod:`engine.services.definitions`.

Format reference: docs/definitions.md. Structure: engine/core/schemas/definition.schema.json.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Any, NoReturn

import yaml

from engine.core.compact import expand
from engine.core.decisions import Decisions, build_decisions
from engine.core.durations import parse_duration
from engine.core.labels import FieldLabel, Label
from engine.core.limits import (
    SOURCE_MAX_CHARS,
    YAML_MAX_ALIASES,
    YAML_MAX_DEPTH,
    YAML_MAX_VALUES,
)
from engine.core.reported_time import DEFAULT_WITHIN, OccurredAt
from engine.errors import DefinitionSourceError, DefinitionTooLarge

ANY_SOURCE = "*"


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any
    description: str = ""
    alternatives: str = ""
    requirements: tuple[str, ...] = ()


class TimerKind(str, Enum):
    AFTER = "after"
    AT = "at"
    EVERY = "every"


@dataclass(frozen=True)
class DurationValue:
    """A duration written literally (``2h``), from a parameter, or as a CEL expression."""

    literal: str | None = None
    param: str | None = None
    expr: str | None = None


@dataclass(frozen=True)
class CalendarValue:
    """A calendar named literally (``cn-workdays``) or by a parameter of type calendar."""

    literal: str | None = None
    param: str | None = None

    def name(self, params: Mapping[str, Any]) -> str | None:
        """The calendar's name for a case with ``params`` (None: not given, the wall clock).

        A case created under a service contract that names its customers' working-day
        calendar (``SITE_CALENDAR`` in its parameters) counts every business clock on that
        calendar; a clock on the wall clock stays there."""
        if self.param is not None:
            value = params.get(self.param)
            name = value if isinstance(value, str) else None
        else:
            name = self.literal
        site = params.get(SITE_CALENDAR)
        if name not in (None, "24x7") and isinstance(site, str):
            return site
        return name


# Where a case's parameters keep its contract's working-day calendar: not an identifier, so no
# definition can declare a parameter of that name, nor an expression read it.
SITE_CALENDAR = "@calendar"


# The engine's own role: timers, SLA breaches and a child case's news fire as it. A transition
# whose roles are exactly [system] is refused to every token, an admin's included: what the
# engine records (a breach, the ground for a deposit deduction) cannot be forged over HTTP.
SYSTEM_ROLE = "system"
# Every role a transition may name: the token roles (engine/services/tokens.py) and the engine's.
KNOWN_ROLES = frozenset({"process_owner", "integrator", "supervisor", "admin", SYSTEM_ROLE})


@dataclass(frozen=True)
class TimerSpec:
    path: str
    kind: TimerKind
    trigger: str
    name: str
    after: DurationValue | None = None
    at: str | None = None
    every: str | None = None
    calendar: str | None = None  # written literally; see calendar_param
    payload: Mapping[str, Any] = field(default_factory=dict)
    requirements: tuple[str, ...] = ()
    calendar_param: str | None = None  # the parameter naming the calendar
    # An ``after`` timer counted from this instant (CEL timestamp) instead of the state entry.
    counted_from: str | None = None

    def calendar_for(self, params: Mapping[str, Any]) -> str | None:
        """The calendar this timer counts on for a case with ``params`` (None: wall clock)."""
        return CalendarValue(self.calendar, self.calendar_param).name(params)


@dataclass(frozen=True)
class StateSpec:
    name: str
    title: Label
    final: bool = False
    description: str = ""
    timers: tuple[TimerSpec, ...] = ()
    requirements: tuple[str, ...] = ()


class ActionKind(str, Enum):
    SET = "set"
    INCREMENT = "increment"
    COUNT = "count"
    SPAWN = "spawn"


@dataclass(frozen=True)
class SpawnSpec:
    """Create a child case of ``definition``; ``data`` maps child fields to CEL expressions
    evaluated in the parent's context."""

    definition: str
    data: Mapping[str, str] = field(default_factory=dict)
    business_key: str | None = None


@dataclass(frozen=True)
class ActionSpec:
    """One action. ``field`` is the data field (set, increment) or the counter (count)."""

    path: str
    kind: ActionKind
    field: str = ""
    expr: str | None = None
    by: int = 1
    spawn: SpawnSpec | None = None


@dataclass(frozen=True)
class CounterSpec:
    name: str
    key: str  # CEL over data: which counter of this name (e.g. the device serial)
    description: str = ""


@dataclass(frozen=True)
class ParentSpec:
    """How cases of this definition belong and report to a parent case."""

    definition: str
    attach_by_key: str | None = None
    on_created: str | None = None
    on_states: Mapping[str, str] = field(default_factory=dict)
    on_final: str | None = None

    def trigger_for(self, event_type: str, entered: str | None, final: bool) -> str | None:
        """The parent trigger this child event should fire, if any."""
        if event_type == "created":
            return self.on_created
        if entered is None:
            return None
        if entered in self.on_states:
            return self.on_states[entered]
        return self.on_final if final else None


@dataclass(frozen=True)
class TransitionSpec:
    index: int
    trigger: str
    sources: tuple[str, ...]
    dest: str | None  # None: the case stays in whichever source state it is in
    guard: str | None = None
    actions: tuple[ActionSpec, ...] = ()
    payload_schema: Mapping[str, Any] | None = None
    roles: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    title: Label | None = None
    guard_message: Label | None = None  # what the guard requires, for a person
    occurred_at: OccurredAt | None = None  # the payload field saying when it happened
    reenter: bool = False  # staying, the case leaves and re-enters: its state timers restart

    @property
    def path(self) -> str:
        return f"transitions[{self.index}]"

    def target(self, source: str) -> str:
        """The state a case in ``source`` is in after this transition."""
        return source if self.dest is None else self.dest

    def stays(self, source: str) -> bool:
        return self.target(source) == source

    @property
    def dest_text(self) -> str:
        """The destination as people read it in listings, diffs and traceability."""
        if self.dest is not None:
            return self.dest
        return "(re-enters)" if self.reenter else "(stays)"


@dataclass(frozen=True)
class SlaCondition:
    states: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()


class SlaRounds(str, Enum):
    """How often an SLA's promise is made in one case (``rounds`` in the definition)."""

    ONCE = "once"  # the clock runs once: after it stops it stays stopped
    REPEAT = "repeat"  # each time its start condition happens after it stopped: a new round


@dataclass(frozen=True)
class SlaSpec:
    path: str
    name: str
    target: DurationValue
    start: SlaCondition
    stop: SlaCondition
    pause: SlaCondition = SlaCondition()
    calendar: str = "24x7"  # written literally; see calendar_param
    warn_at: tuple[float, ...] = ()
    breach_trigger: str | None = None
    escalate: bool = True
    title: Label | None = None
    requirements: tuple[str, ...] = ()
    rounds: SlaRounds = SlaRounds.ONCE
    # CEL over the case as each event leaves it: the round applies while it is true.
    when: str | None = None
    # CEL timestamp: the instant a round counts from, read when its start condition happens.
    counted_from: str | None = None

    @property
    def repeats(self) -> bool:
        return self.rounds is SlaRounds.REPEAT

    @property
    def reads_case(self) -> bool:
        """Whether its clock reads the case's data (``when``, ``counted_from``)."""
        return self.when is not None or self.counted_from is not None

    calendar_param: str | None = None  # the parameter naming the calendar

    def calendar_for(self, params: Mapping[str, Any]) -> str:
        """The calendar this SLA is measured on for a case with ``params``."""
        return CalendarValue(self.calendar, self.calendar_param).name(params) or "24x7"


@dataclass(frozen=True)
class Supervision:
    """What supervisors see of a case (docs/definitions.md, "Supervision").

    ``customer``, ``team`` and ``priority`` are data paths (``customer``, ``team.regional_lead``);
    ``expected_waits`` maps each state where waiting is normal to why, so the stuck-case rules
    leave it alone."""

    customer: str | None = None
    team: str | None = None
    priority: str | None = None
    filters: tuple[str, ...] = ()
    expected_waits: Mapping[str, Label] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkflowDefinition:
    """A validated definition. ``version`` is None until published."""

    name: str
    title: Label
    initial: str
    states: tuple[StateSpec, ...]
    transitions: tuple[TransitionSpec, ...]
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    data_schema: Mapping[str, Any] = field(default_factory=dict)
    slas: tuple[SlaSpec, ...] = ()
    counters: Mapping[str, CounterSpec] = field(default_factory=dict)
    parent: ParentSpec | None = None
    assignee: str | None = None
    supervision: Supervision = Supervision()
    # The glossary of field names: each payload or data field's label and its values' labels.
    fields: Mapping[str, FieldLabel] = field(default_factory=dict)
    description: str = ""
    requirements: tuple[str, ...] = ()
    # "refuse" (default): a caller's data or payload field the schema does not declare is an
    # error naming it; "keep": stored or passed on as sent (docs/definitions.md).
    unknown_fields: str = "refuse"
    decisions: Decisions = field(default_factory=Decisions)
    version: int | None = None
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def state(self, name: str) -> StateSpec:
        for spec in self.states:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def final_states(self) -> frozenset[str]:
        return frozenset(s.name for s in self.states if s.final)

    @cached_property
    def engine_triggers(self) -> frozenset[str]:
        """Triggers the engine fires for this definition's own deadlines: its timers' and its
        SLA breaches'. Their transitions are system-only unless they name roles
        (docs/definitions.md, "Who may fire a trigger")."""
        timers = {t.trigger for s in self.states for t in s.timers}
        return frozenset(timers | {s.breach_trigger for s in self.slas if s.breach_trigger})

    def roles_of(self, transition: TransitionSpec) -> tuple[str, ...]:
        """Who may fire ``transition``: the roles it names, else only the engine for a trigger
        the engine fires, else anyone (an empty tuple)."""
        if transition.roles:
            return transition.roles
        return (SYSTEM_ROLE,) if transition.trigger in self.engine_triggers else ()

    @cached_property
    def timed_states(self) -> frozenset[str]:
        """States with timers; entering or leaving any other state arms and cancels nothing."""
        return frozenset(s.name for s in self.states if s.timers)

    def default_params(self) -> dict[str, Any]:
        return {name: p.default for name, p in self.parameters.items()}

    @cached_property
    def fingerprint(self) -> str:
        """A checksum of the normalised document: equal documents publish as one version."""
        canonical = json.dumps(self.document, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- reading source text -----------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, and documents beyond the limits of
    :mod:`engine.core.limits`.

    Duplicate keys: PyYAML silently keeps the last one, which would hide a process owner's
    copy-paste mistake (two ``guard:`` lines, two equal state keys).

    Limits: an alias repeats the node it names without copying it, so ten aliases of ten
    aliases of ... cost nothing to compose and explode only later, in every walk over the
    plain values (validation, the checksum, storage): a 990-byte "billion laughs" document
    grew a web worker to 2.2 GB. So the composer counts what each node *expands* to as it
    goes (an anchored node remembers its expanded size and height) and refuses the document
    at the first alias or node past a limit, before anything is expanded. Nesting is limited
    while composing too, since PyYAML composes by recursion."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._values = 0  # values composed so far, aliases counted expanded
        self._aliases = 0
        self._depth = 0
        self._deepest = 0  # deepest level reached, aliases counted expanded
        self._expanded: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (values, height)
        self._path: list[Any] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        part = index.value if isinstance(index, yaml.ScalarNode) else index
        self._path.append(part)
        try:
            return self._compose_counted(parent, index)
        finally:
            self._path.pop()

    def _compose_counted(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)  # the anchored node, or undefined alias
            self._aliases += 1
            if self._aliases > YAML_MAX_ALIASES:
                self._refuse(event, f"uses more than {YAML_MAX_ALIASES} aliases")
            values, height = self._expanded.get(id(node), (1, 0))
            self._count(event, values, self._depth + height)
            return node
        if isinstance(event, yaml.CollectionStartEvent) and self._depth >= YAML_MAX_DEPTH:
            self._refuse(event, f"nests mappings and lists more than {YAML_MAX_DEPTH} deep")
        before, outer_deepest = self._values, self._deepest
        self._deepest = self._depth
        self._count(event, 1, self._depth)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if getattr(event, "anchor", None) is not None:  # NodeEvents have one
            self._expanded[id(node)] = (self._values - before, self._deepest - self._depth)
        self._deepest = max(self._deepest, outer_deepest)
        return node

    def _count(self, event: yaml.Event, values: int, depth: int) -> None:
        self._values += values
        self._deepest = max(self._deepest, depth)
        if self._values > YAML_MAX_VALUES:
            self._refuse(
                event,
                f"holds more than {YAML_MAX_VALUES:,} values once its aliases are expanded",
            )
        if depth > YAML_MAX_DEPTH:
            self._refuse(event, f"nests mappings and lists more than {YAML_MAX_DEPTH} deep")

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A scalar PyYAML cannot convert (``!!int abc``, an empty ``!!float``, a 5,000-digit
        integer, a date with month 13) or a list used as a key raises a builtin error from
        deep inside PyYAML; say where it is instead."""
        try:
            return super().construct_object(node, deep)
        except _UNCONVERTIBLE as exc:
            mark = node.start_mark
            raise DefinitionSourceError(
                f"The value at line {mark.line + 1}, column {mark.column + 1} cannot be read: "
                f"{_first_line(exc)}.",
                hint="Quote it to make it text ('...'), or correct it; keys must be text.",
                line=mark.line + 1,
                column=mark.column + 1,
            ) from exc

    def _refuse(self, event: yaml.Event, what: str) -> NoReturn:
        mark = event.start_mark
        assert mark is not None  # the parser marks every event it makes
        path = format_path(self._path[1:])
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        shown = path if len(path) <= 120 else f"…{path[-119:]}"
        raise DefinitionTooLarge(
            f"The definition {what}: refused at {where}" + (f" ({shown})." if path else "."),
            hint="Write the definition out plainly: repeated parts without chains of aliases, "
            "nested structures flatter. docs/definitions.md (Limits) lists every limit.",
            line=mark.line + 1,
            column=mark.column + 1,
            path=path or None,
        )


# What PyYAML's constructors raise for values they cannot convert (found by the hypothesis
# test in tests/unit/test_limits.py): int() and float() of bad text, an empty scalar indexed,
# unhashable keys, datetime() of month 13, a timestamp regex that did not match.
_UNCONVERTIBLE = (ValueError, TypeError, LookupError, ArithmeticError, AttributeError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def format_path(parts: Iterable[Any]) -> str:
    """``['transitions', 4, 'guard']`` -> ``transitions[4].guard``: an element path as every
    message spells it (a ``None`` part, a mapping key being composed, has no place of its own
    and is left out)."""
    out = ""
    for part in parts:
        if part is None:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise DefinitionSourceError(
                f"Duplicate key {key!r} at line {mark.line + 1}, column {mark.column + 1} "
                f"(first at line {seen[key].start_mark.line + 1}).",
                hint="Remove or rename one of them; YAML would otherwise keep only the last.",
                line=mark.line + 1,
            )
        seen[key] = key_node
    return dict(loader.construct_pairs(node))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_source(text: str, origin: str = "<definition>") -> Any:
    """Read definition text (YAML, of which JSON is a subset) into plain Python values.

    Raises :class:`DefinitionSourceError` for text that is not YAML, and its subclass
    :class:`DefinitionTooLarge` for text beyond the limits of :mod:`engine.core.limits`."""
    if len(text) > SOURCE_MAX_CHARS:
        raise DefinitionTooLarge(
            f"{origin} has {len(text):,} characters; a definition may have at most "
            f"{SOURCE_MAX_CHARS:,}.",
            hint="Split it into several definitions (a parent and child cases), or shorten "
            "descriptions. docs/definitions.md (Limits) lists every limit.",
            chars=len(text),
            limit=SOURCE_MAX_CHARS,
        )
    try:
        return yaml.load(text, Loader=_StrictLoader)  # SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DefinitionSourceError(
            f"{origin} is not valid YAML{where}: {exc.problem}.",
            hint="Check indentation and quoting near that line.",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except yaml.YAMLError as exc:
        raise DefinitionSourceError(f"{origin} is not valid YAML: {exc}.") from exc
    except _UNCONVERTIBLE as exc:  # anything construct_object did not see
        raise DefinitionSourceError(
            f"{origin} has a value that cannot be read: {_first_line(exc)}.",
            hint="Quote values that are text ('...'); keys must be text.",
        ) from exc
    except RecursionError as exc:  # flatten_mapping recurses through chains of merge keys
        raise DefinitionTooLarge(
            f"{origin} nests or merges (<<) too deeply to be read.",
            hint="Write the definition out plainly. docs/definitions.md (Limits).",
        ) from exc


# --- building the model from a (structurally valid) document -----------------------------------


def _label(raw: Mapping[str, Any] | None) -> Label | None:
    return Label(en=raw["en"], zh=raw["zh"]) if raw else None


def _duration_value(raw: Any) -> DurationValue:
    if isinstance(raw, str):
        return DurationValue(literal=raw)
    if "param" in raw:
        return DurationValue(param=raw["param"])
    return DurationValue(expr=raw["expr"])


def _calendar_value(raw: Any) -> CalendarValue:
    if isinstance(raw, Mapping):
        return CalendarValue(param=raw["param"])
    return CalendarValue(literal=raw)


def _timer(raw: Mapping[str, Any], path: str, index: int) -> TimerSpec:
    kind = next(k for k in TimerKind if k.value in raw)
    calendar = _calendar_value(raw.get("calendar"))
    return TimerSpec(
        path=path,
        kind=kind,
        trigger=raw["trigger"],
        name=raw.get("name") or f"{raw['trigger']}_{index}",
        after=_duration_value(raw["after"]) if "after" in raw else None,
        at=raw.get("at"),
        every=raw.get("every"),
        calendar=calendar.literal,
        payload=raw.get("payload", {}),
        requirements=tuple(raw.get("requirements", ())),
        calendar_param=calendar.param,
        counted_from=raw.get("counted_from"),
    )


def _state(raw: Mapping[str, Any], index: int) -> StateSpec:
    base = f"states[{index}]"
    return StateSpec(
        name=raw["name"],
        title=Label(**raw["title"]),
        final=bool(raw.get("final", False)),
        description=raw.get("description", ""),
        timers=tuple(
            _timer(t, f"{base}.timers[{i}]", i) for i, t in enumerate(raw.get("timers", ()))
        ),
        requirements=tuple(raw.get("requirements", ())),
    )


def _actions(
    raw: list[Mapping[str, Any]], base: str, written: Callable[[str], str]
) -> tuple[ActionSpec, ...]:
    """The actions, each with its path as written (``transitions[3].set.visits`` where the
    transition records fields with the compact ``set``)."""
    actions: list[ActionSpec] = []
    for i, item in enumerate(raw):
        path = f"{base}.actions[{i}]"
        if "set" in item:
            actions.extend(
                ActionSpec(written(f"{path}.set.{name}"), ActionKind.SET, name, expr=expr)
                for name, expr in item["set"].items()
            )
        elif "increment" in item:
            inc = item["increment"]
            spec: Mapping[str, Any] = {"field": inc} if isinstance(inc, str) else inc
            actions.append(
                ActionSpec(
                    written(f"{path}.increment"),
                    ActionKind.INCREMENT,
                    spec["field"],
                    by=spec.get("by", 1),
                )
            )
        elif "count" in item:
            cnt = item["count"]
            spec = {"counter": cnt} if isinstance(cnt, str) else cnt
            actions.append(
                ActionSpec(
                    written(f"{path}.count"),
                    ActionKind.COUNT,
                    spec["counter"],
                    by=spec.get("by", 1),
                )
            )
        else:
            spawn = item["spawn"]
            actions.append(
                ActionSpec(
                    written(f"{path}.spawn"),
                    ActionKind.SPAWN,
                    spawn=SpawnSpec(
                        spawn["definition"], dict(spawn.get("data", {})), spawn.get("business_key")
                    ),
                )
            )
    return tuple(actions)


def _transition(
    raw: Mapping[str, Any],
    index: int,
    all_states: tuple[str, ...],
    finals: frozenset[str],
    written: Callable[[str], str],
) -> TransitionSpec:
    source = raw["source"]
    if source == ANY_SOURCE:
        # '*' means every state that can still move: final states never take triggers.
        sources = tuple(s for s in all_states if s not in finals)
    elif isinstance(source, str):
        sources = (source,)
    else:
        sources = tuple(source)
    return TransitionSpec(
        index=index,
        trigger=raw["trigger"],
        sources=sources,
        dest=raw.get("dest"),
        guard=raw.get("guard"),
        actions=_actions(raw.get("actions", []), f"transitions[{index}]", written),
        payload_schema=raw.get("payload_schema"),
        roles=tuple(raw.get("roles", ())),
        requirements=tuple(raw.get("requirements", ())),
        title=_label(raw.get("title")),
        guard_message=_label(raw.get("guard_message")),
        occurred_at=_occurred_at(raw.get("occurred_at")),
        reenter=bool(raw.get("reenter", False)),
    )


def _occurred_at(raw: Mapping[str, Any] | None) -> OccurredAt | None:
    if raw is None:
        return None
    within = parse_duration(raw.get("within", DEFAULT_WITHIN)).timedelta
    return OccurredAt(field=str(raw["field"]), within=within)


def _condition(raw: Mapping[str, Any] | None) -> SlaCondition:
    raw = raw or {}
    return SlaCondition(
        states=tuple(raw.get("states", ())), triggers=tuple(raw.get("triggers", ()))
    )


def _sla(raw: Mapping[str, Any], index: int) -> SlaSpec:
    breach = raw.get("on_breach", {})
    calendar = _calendar_value(raw.get("calendar", "24x7"))
    return SlaSpec(
        path=f"slas[{index}]",
        name=raw["name"],
        target=_duration_value(raw["target"]),
        start=_condition(raw["start"]),
        stop=_condition(raw["stop"]),
        pause=_condition(raw.get("pause")),
        calendar=calendar.literal or "24x7",
        calendar_param=calendar.param,
        warn_at=tuple(sorted(raw.get("warn_at", ()))),
        breach_trigger=breach.get("trigger"),
        escalate=bool(breach.get("escalate", True)),
        title=_label(raw.get("title")),
        requirements=tuple(raw.get("requirements", ())),
        rounds=SlaRounds(raw.get("rounds", SlaRounds.ONCE.value)),
        when=raw.get("when"),
        counted_from=raw.get("counted_from"),
    )


def _supervision(raw: Mapping[str, Any] | None) -> Supervision:
    raw = raw or {}
    return Supervision(
        customer=raw.get("customer"),
        team=raw.get("team"),
        priority=raw.get("priority"),
        filters=tuple(raw.get("filters", ())),
        expected_waits={w["state"]: Label(**w["reason"]) for w in raw.get("expected_waits", ())},
    )


def _fields(raw: Mapping[str, Any] | None) -> dict[str, FieldLabel]:
    return {
        name: FieldLabel(
            title=Label(en=entry["en"], zh=entry["zh"]),
            values={value: Label(**text) for value, text in entry.get("values", {}).items()},
        )
        for name, entry in (raw or {}).items()
    }


def build_definition(document: Mapping[str, Any], version: int | None = None) -> WorkflowDefinition:
    """Build the model from a document that passed :func:`engine.core.validation.validate`.

    Its compact forms are written out first (:mod:`engine.core.compact`): the definition's
    ``document`` and fingerprint are those of the full form, so a rewrite into compact forms
    that means the same publishes as the same version."""
    expansion = expand(document)
    document = expansion.document
    states = tuple(_state(s, i) for i, s in enumerate(document["states"]))
    names = tuple(s.name for s in states)
    finals = frozenset(s.name for s in states if s.final)
    params = {
        name: Parameter(
            name=name,
            type=p["type"],
            default=p["default"],
            description=p.get("description", ""),
            alternatives=p.get("alternatives", ""),
            requirements=tuple(p.get("requirements", ())),
        )
        for name, p in document.get("parameters", {}).items()
    }
    parent_raw = document.get("parent")
    notify = (parent_raw or {}).get("notify", {})
    parent = (
        ParentSpec(
            definition=parent_raw["definition"],
            attach_by_key=parent_raw.get("attach_by_key"),
            on_created=notify.get("created"),
            on_states=dict(notify.get("states", {})),
            on_final=notify.get("final"),
        )
        if parent_raw
        else None
    )
    return WorkflowDefinition(
        name=document["name"],
        title=Label(**document["title"]),
        initial=document["initial"],
        states=states,
        transitions=tuple(
            _transition(t, i, names, finals, expansion.written_path)
            for i, t in enumerate(document["transitions"])
        ),
        parameters=params,
        data_schema=document.get("data_schema", {"type": "object"}),
        slas=tuple(_sla(s, i) for i, s in enumerate(document.get("slas", ()))),
        counters={
            name: CounterSpec(name, c["key"], c.get("description", ""))
            for name, c in document.get("counters", {}).items()
        },
        parent=parent,
        assignee=document.get("assignee"),
        supervision=_supervision(document.get("supervision")),
        fields=_fields(document.get("fields")),
        description=document.get("description", ""),
        requirements=tuple(document.get("requirements", ())),
        unknown_fields=document.get("unknown_fields", "refuse"),
        decisions=build_decisions(document.get("decisions")),
        version=version,
        document=document,
    )
