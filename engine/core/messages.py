"""Sentences the engine writes for people, as a stable code and its parameters.

The API, the CLI and the logs read the English sentence (:func:`english`, ``str(message)``);
the dashboard words the same code and parameters in the page's language from its own table
(api/dashboard/message_words.py, which a test holds to every code here). Rows written before
a sentence had a code keep only its text, and readers fall back to it.

An error inside a sentence (a refusing guard, invalid data, a Python exception a timer hit) is
a parameter of its own, an *error record* (:func:`error_record`): svcflow's error code, its
English message and, where the definition gave them, its own words in both languages
(``guard_message``). A reader in another language says what the code means and quotes the
message; it cannot translate the text of an arbitrary exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import SvcflowError

ERROR_MAX_CHARS = 2000  # what a stored error keeps of its message
# The key under which an event's payload keeps, for each sentence the engine wrote into it,
# that sentence's code and values: ``{"reason": {"code": ..., "params": {...}}}``.
PAYLOAD_KEY = "messages"

# --- the codes ---------------------------------------------------------------------------------

# What is wrong with a migration plan whatever the case (engine/core/migration.py).
PLAN_SAME_VERSION = "migration.plan.same-version"
PLAN_REASON_REQUIRED = "migration.plan.reason-required"
PLAN_UNKNOWN_SOURCE = "migration.plan.unknown-source"
PLAN_UNKNOWN_TARGET = "migration.plan.unknown-target"
PLAN_MAPS_TO_FINAL = "migration.plan.maps-to-final"
PLAN_UNDECLARED_FIELD = "migration.plan.undeclared-field"
PLAN_SET_AND_DROPPED = "migration.plan.set-and-dropped"
PLAN_EXPRESSION = "migration.plan.expression"
# Why one case did not move in a migration (engine/services/case_migration.py).
MIGRATION_OTHER_VERSION = "migration.other-version"
MIGRATION_CASE_CLOSED = "migration.case-closed"
MIGRATION_WHERE_ERROR = "migration.where-error"
MIGRATION_WHERE_NOT_BOOLEAN = "migration.where-not-boolean"
MIGRATION_WHERE_FALSE = "migration.where-false"
MIGRATION_STATE_UNMAPPED = "migration.state-unmapped"
MIGRATION_SET_ERROR = "migration.set-error"
MIGRATION_DATA_INVALID = "migration.data-invalid"
MIGRATION_KEPT_PARAMETER = "migration.kept-parameter"
MIGRATION_PARENT_UNNAMED = "migration.parent-unnamed"
MIGRATION_CHILD_NEWS = "migration.child-news"
MIGRATION_UNPLANNABLE = "migration.unplannable"
MIGRATION_WRITE_ERROR = "migration.write-error"
MIGRATION_KEPT_CHANGING = "migration.kept-changing"
# A scenario's step (engine/simulation.py): what it did, or how the case differs.
SIM_CREATED = "simulation.created"
SIM_CREATED_UNDER = "simulation.created-under"
SIM_FIRED = "simulation.fired"
SIM_CANCELLED = "simulation.cancelled"
SIM_ADVANCED = "simulation.advanced"
SIM_ADVANCED_TO = "simulation.advanced-to"
SIM_WRONG_ERROR = "simulation.wrong-error"
SIM_FAILED_AS_EXPECTED = "simulation.failed-as-expected"
SIM_NO_ERROR = "simulation.no-error"
SIM_NO_ERROR_ANY = "simulation.no-error-any"
SIM_AS_EXPECTED = "simulation.as-expected"
SIM_STEP_ERROR = "simulation.step-error"
SIM_DIFFERS = "simulation.differs"
SIM_ABSENT = "simulation.absent"
SIM_TRIGGERS = "simulation.triggers"
SIM_EVENTS_MISSING = "simulation.events-missing"
SIM_SLA_MISSING = "simulation.sla-missing"
SIM_SLA_ROUNDS = "simulation.sla-rounds"
SIM_SLA_STATUS = "simulation.sla-status"
# A timer (engine/services/timer_firing.py, operations.py).
TIMER_PERMANENT_ERROR = "timer.permanent-error"
TIMER_GAVE_UP = "timer.gave-up"
TIMER_CASE_CLOSED = "timer.case-closed"
TIMER_STATE_LEFT = "timer.state-left"
SLA_RESUME_TIME_REACHED = "sla.resume-time-reached"
# A parent that could not take a child's news (engine/services/cases.py).
CHILD_NEWS_REFUSED = "links.news-refused"

ENGLISH: dict[str, str] = {
    PLAN_SAME_VERSION: "the case would stay on version {version}",
    PLAN_REASON_REQUIRED: "a reason is required (it is kept in each case's history)",
    PLAN_UNKNOWN_SOURCE: "version {version} has no state {source!r} to map",
    PLAN_UNKNOWN_TARGET: "version {version} has no state {target!r} (its states: {states})",
    PLAN_MAPS_TO_FINAL: "{source!r} would map to final state {target!r}: a running case would "
    "end without a transition (fire the trigger that ends it instead)",
    PLAN_UNDECLARED_FIELD: "version {version} declares no data field {field!r}",
    PLAN_SET_AND_DROPPED: "field {field!r} is both set and dropped",
    PLAN_EXPRESSION: "{error}",
    MIGRATION_OTHER_VERSION: "the case is on {definition} v{version}",
    MIGRATION_CASE_CLOSED: "the case is {status}",
    MIGRATION_WHERE_ERROR: "--where: {error}",
    MIGRATION_WHERE_NOT_BOOLEAN: "--where gave {value}, not true or false",
    MIGRATION_WHERE_FALSE: "--where is false for this case",
    MIGRATION_STATE_UNMAPPED: "state {state!r} has no counterpart in version {version}: add "
    "--map-state {state}=<one of {states}>",
    MIGRATION_SET_ERROR: "--set {field}: {error}",
    MIGRATION_DATA_INVALID: "{error}",
    MIGRATION_KEPT_PARAMETER: "kept parameter {parameter!r}: {error} (use --params snapshot)",
    MIGRATION_PARENT_UNNAMED: "the case is a child of case {parent} ({parent_definition}), and "
    "version {version} does not name that parent",
    MIGRATION_CHILD_NEWS: "running child case {child} ({child_definition}) sends {triggers}, "
    "which version {version} does not take",
    MIGRATION_UNPLANNABLE: "its timers or SLA clocks cannot be planned under version "
    "{version}: {error}",
    MIGRATION_WRITE_ERROR: "{error}",
    MIGRATION_KEPT_CHANGING: "the case changed {attempts} times while it was being moved; run "
    "again",
    SIM_CREATED: "created case {case_id} in {state!r}",
    SIM_CREATED_UNDER: "created case {case_id} in {state!r} under contract {contract!r}",
    SIM_FIRED: "{trigger}: {from_state} -> {state}",
    SIM_CANCELLED: "cancelled case {case_id}",
    SIM_ADVANCED: "advanced {duration}; {fired} timer(s) fired",
    SIM_ADVANCED_TO: "advanced to {instant}; {fired} timer(s) fired",
    SIM_WRONG_ERROR: "expected error {expected}, got {code}: {error}",
    SIM_FAILED_AS_EXPECTED: "failed as expected: {code}",
    SIM_NO_ERROR: "expected error {expected}, but the step succeeded",
    SIM_NO_ERROR_ANY: "expected error (any), but the step succeeded",
    SIM_AS_EXPECTED: "case {case_id} as expected",
    SIM_STEP_ERROR: "{code}: {error}",
    # ``actual`` and ``expected`` are values as the scenario spells them (JSON), or absent.
    SIM_DIFFERS: "{what} is {actual}, expected {expected}",
    SIM_ABSENT: "{what} is absent, expected {expected}",
    SIM_TRIGGERS: "triggers fired {actual}, expected {expected}",
    SIM_EVENTS_MISSING: "history lacks event(s) {missing}; it has {actual}",
    SIM_SLA_MISSING: "SLA {sla} does not exist in the definition; expected {expected}",
    SIM_SLA_ROUNDS: "SLA {sla}'s rounds are {actual}, expected {expected}",
    SIM_SLA_STATUS: "SLA {sla} is {actual}, expected {expected}",
    TIMER_PERMANENT_ERROR: "permanent error",
    TIMER_GAVE_UP: "gave up after {attempts} attempts",
    TIMER_CASE_CLOSED: "case {case_id} is {status}",
    TIMER_STATE_LEFT: "case {case_id} has left the state this timer belonged to (now {state!r})",
    SLA_RESUME_TIME_REACHED: "the pause's resume time was reached",
    CHILD_NEWS_REFUSED: "{error}",
}


@dataclass(frozen=True)
class Message:
    """One sentence: its code (a key of :data:`ENGLISH`) and the values it names. Parameters
    are JSON values; an error is an error record (a mapping with ``message``)."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in ENGLISH:
            raise KeyError(f"no message has the code {self.code!r}")

    def __str__(self) -> str:
        return english(self)

    def to_dict(self) -> dict[str, Any]:
        """What a payload or a JSON column stores (:func:`from_stored` reads it back)."""
        return {"code": self.code, "params": dict(self.params)}


def from_stored(value: Any) -> Message | None:
    """A stored message, or None for anything else (a row written by an older release, or
    a code this release no longer has): the reader then shows the stored text."""
    if not isinstance(value, Mapping):
        return None
    code, params = value.get("code"), value.get("params")
    if not isinstance(code, str) or code not in ENGLISH or not isinstance(params, Mapping):
        return None
    return Message(code, params)


def english(message: Message) -> str:
    """The sentence the API, the CLI and the logs show."""
    return ENGLISH[message.code].format(
        **{name: _english_value(value) for name, value in message.params.items()}
    )


def _english_value(value: Any) -> Any:
    if is_error_record(value):
        return error_text(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return value


# --- errors inside sentences ---------------------------------------------------------------------


def error_record(error: BaseException, *, with_hint: bool = False) -> dict[str, Any]:
    """An error as JSON data: svcflow's ``code`` (None for any other exception, whose Python
    ``type`` is kept instead), its English ``message`` (and ``hint``, when the sentence
    showed it), and ``reasons``, the definition's own words in ``en`` and ``zh`` where it
    gave them (a refusing guard's ``guard_message``)."""
    if not isinstance(error, SvcflowError):
        return {"code": None, "type": type(error).__name__, "message": _cut(str(error))}
    record: dict[str, Any] = {"code": error.code, "message": _cut(error.message)}
    if with_hint and error.hint:
        record["hint"] = error.hint
    reasons = error.fields.get("reasons")
    if isinstance(reasons, list) and all(isinstance(r, Mapping) for r in reasons):
        record["reasons"] = [{"en": str(r.get("en")), "zh": str(r.get("zh"))} for r in reasons]
    return record


def is_error_record(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("message"), str) and "code" in value


def error_text(record: Mapping[str, Any]) -> str:
    """An error record in English, as the sentence that holds it always showed it."""
    text = str(record.get("message", ""))
    return f"{text} ({record['hint']})" if record.get("hint") else text


def _cut(text: str) -> str:
    return text[:ERROR_MAX_CHARS]
