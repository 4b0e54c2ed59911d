"""The one error tree of svcflow.

Every error svcflow raises derives from :class:`SvcflowError` and carries structured fields
(case id, state, trigger, definition element path, ...) besides a message that tells the reader
what is wrong and what to do. Nothing in svcflow raises a bare ``Exception``.

Each error sits under exactly one *kind*, which says what the reader can do about it:

- :class:`NotFound`: the thing named does not exist; check the name or id.
- :class:`Forbidden`: the actor's roles do not allow it; ask someone who may.
- :class:`Conflict`: the request is well formed, but the current state of what it acts on
  refuses it; read that state again and decide.
- :class:`Invalid`: what was given (a request's data, a definition, a file, a parameter) is
  wrong and fails the same way until it is changed.
- :class:`Unavailable`: something svcflow needs (the database, its schema, Redis) is not
  ready; the same request can succeed later, once an operator fixes that.

The kinds are never raised themselves, and neither is the base: a raised error is a leaf with
its own ``code``. The HTTP layer maps the kinds to status codes in one place
(``api/problems.py``); the CLI prints ``message`` and ``hint`` whatever the kind.

Messages quote what people gave as they wrote it (:func:`written`), never as Python shows it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from enum import Enum
from typing import Any


class SvcflowError(Exception):
    """Base of every svcflow error.

    ``code`` is a stable machine-readable identifier (used as the problem type in the API);
    ``hint`` says what the reader can do about it.
    """

    code = "svcflow-error"

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fields: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        out.update(self.fields)
        return out


# --- kinds ------------------------------------------------------------------------------------


class NotFound(SvcflowError):
    """The case, definition, timer, ... that the caller named does not exist."""


class Forbidden(SvcflowError):
    """The actor is known, but none of its roles allows what it asked for."""


class Conflict(SvcflowError):
    """The request is well formed, but the current state of what it acts on refuses it (the
    case moved on, is closed, or does not take that trigger now; the key is taken). Asking
    again unchanged can only succeed once that state changes."""


class Invalid(SvcflowError):
    """What the caller gave is wrong: request data, a definition, a calendar, a file, a
    parameter. It fails the same way until it is changed."""


class Unavailable(SvcflowError):
    """Something svcflow depends on (the database, its schema, Redis) is not ready. Nothing is
    wrong with the request: it can succeed later, once an operator fixes the dependency."""


#: The kinds, each a direct child of the base; every other error derives from one of them.
KINDS: tuple[type[SvcflowError], ...] = (NotFound, Forbidden, Conflict, Invalid, Unavailable)


# --- definitions ------------------------------------------------------------------------------


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding of the validator, addressed by its element path (``transitions[4].guard``)
    and, when it was read from text, by the line and column where that element is written."""

    severity: Severity
    path: str
    code: str
    message: str
    hint: str = ""
    line: int | None = None
    column: int | None = None

    @property
    def where(self) -> str:
        """``line 12, column 5, transitions[4].guard``: the position (if known) and the path."""
        at = f"line {self.line}, column {self.column}, " if self.line is not None else ""
        return f"{at}{self.path or '<root>'}"

    def __str__(self) -> str:
        text = f"{self.severity.value}: {self.where}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity.value,
            "path": self.path,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }
        if self.line is not None:
            out["line"], out["column"] = self.line, self.column
        return out


class DefinitionInvalid(Invalid):
    """A workflow definition failed validation; ``problems`` lists every error found at once."""

    code = "definition-invalid"

    def __init__(self, name: str | None, problems: Sequence[Problem]) -> None:
        errors = [p for p in problems if p.severity is Severity.ERROR]
        first = f" First: {errors[0].where}: {errors[0].message}" if errors else ""
        super().__init__(
            f"Workflow definition {name or '<unnamed>'!r} has {len(errors)} error(s).{first}",
            hint="Run `svcflow validate FILE` to see every problem with its element path.",
            definition=name,
        )
        self.problems = list(problems)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["problems"] = [p.to_dict() for p in self.problems]
        return out


class DefinitionSourceError(Invalid):
    """The definition text could not be read as YAML/JSON at all."""

    code = "definition-unreadable"


class DefinitionTooLarge(DefinitionSourceError):
    """The definition text exceeds a safety limit (size, nesting, aliases or the values they
    expand to; engine/core/limits.py). Refused while it is read, before it costs more."""

    code = "definition-too-large"


class DefinitionNotFound(NotFound):
    """No definition (or no such version, or no draft) under the name asked for."""

    code = "definition-not-found"


class DefinitionRetired(Conflict):
    """The definition, or the version asked for, is retired: it takes no new cases (its
    running cases continue)."""

    code = "definition-retired"


class DefinitionInUse(Conflict):
    """A definition version cannot be deleted while cases use it."""

    code = "definition-in-use"


class MigrationInvalid(Invalid):
    """A plan to move running cases to another version is wrong whatever the case: an unknown
    version or state, a field the new version does not declare, CEL that does not compile."""

    code = "migration-invalid"
    #: The plan's problems as sentences with codes and values (engine/core/messages.py), for
    #: a reader in another language; the ``problems`` field holds their English.
    messages: tuple[Any, ...] = ()


class ParameterInvalid(Invalid):
    """A deployment override of a definition parameter has the wrong name or type."""

    code = "parameter-invalid"


class ContractInvalid(Invalid):
    """A service contract failed validation; ``problems`` lists every error with its element
    path and, read from a file, its line."""

    code = "contract-invalid"

    def __init__(self, name: str | None, problems: Sequence[Problem], origin: str = "") -> None:
        errors = [p for p in problems if p.severity is Severity.ERROR]
        first = f" First: {errors[0].where}: {errors[0].message}" if errors else ""
        where = f" ({origin})" if origin else ""
        super().__init__(
            f"Contract {name or '<unnamed>'!r}{where} has {len(errors)} error(s).{first}",
            hint="Fix every problem listed (docs/contracts.md has the format), then load again.",
            contract=name,
        )
        self.problems = list(problems)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["problems"] = [p.to_dict() for p in self.problems]
        return out


class ContractNotFound(NotFound):
    """No contract (or no such version of it) under the id asked for."""

    code = "contract-not-found"


class ContractNotInForce(Invalid):
    """A case was asked to start under a contract whose period does not cover its creation."""

    code = "contract-not-in-force"


# --- expressions, durations, calendars, timer plans ---------------------------------------------


class ExpressionError(Invalid):
    """A CEL expression failed to compile or to evaluate.

    ``path`` is the definition element that holds the expression.
    """

    code = "expression-error"


class ExpressionTooCostly(ExpressionError):
    """A CEL expression exceeds the cost budget checked before it is compiled: too long, too
    many comprehensions, or comprehensions nested too deep (engine/core/limits.py)."""

    code = "expression-too-costly"


class DecisionError(ExpressionError):
    """A decision table could not choose a value: no rule matched the inputs (and it has no
    default), several matched under hit policy unique, or a parameter it gives is not of the
    table's output type. ``path`` is the table (``decisions.arrival_target``)."""

    code = "decision-error"


class DurationInvalid(Invalid):
    """A duration (``2h``, ``3d``, ...) in a definition or a scenario cannot be read."""

    code = "duration-invalid"


class CalendarError(Invalid):
    """A calendar is malformed, or a calendar computation was asked something it cannot answer."""

    code = "calendar-error"


class TimerPlanError(Invalid):
    """A timer's due time cannot be computed (bad expression result, unknown calendar)."""

    code = "timer-plan-error"


# --- cases ------------------------------------------------------------------------------------


class CaseNotFound(NotFound):
    """No case with that id (or business key)."""

    code = "case-not-found"


class CaseClosed(Conflict):
    """The case is in a final state or cancelled: it takes no more triggers."""

    code = "case-closed"


class InvalidTrigger(Conflict):
    """The trigger is not defined for the case's current state."""

    code = "invalid-trigger"

    def __init__(
        self, *, case_id: int | None, state: str, trigger: str, allowed: Sequence[str]
    ) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"Trigger {trigger!r} cannot fire in state {state!r}.",
            hint=f"Triggers allowed in {state!r}: {allowed_text}.",
            case_id=case_id,
            state=state,
            trigger=trigger,
            allowed=list(allowed),
        )
        self.allowed = list(allowed)


class UnknownTrigger(InvalidTrigger):
    """The definition has no trigger of that name in any state: the request is wrong, not the
    moment (``invalid-trigger`` is a trigger that exists but cannot fire now)."""

    code = "unknown-trigger"

    def __init__(
        self,
        *,
        case_id: int | None,
        state: str,
        trigger: str,
        allowed: Sequence[str],
        defined: Sequence[str],
    ) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        Conflict.__init__(
            self,
            f"The definition has no trigger {trigger!r}.",
            hint=f"Triggers it defines: {', '.join(defined)}; allowed in {state!r} now: "
            f"{allowed_text}. GET /api/v1/definitions/{{name}}/versions/{{version}}/triggers "
            "lists them with their payloads and roles.",
            case_id=case_id,
            state=state,
            trigger=trigger,
            allowed=list(allowed),
        )
        self.allowed = list(allowed)


class GuardRejected(Conflict):
    """Every transition for the trigger has a guard, and none of them held."""

    code = "guard-rejected"


class TriggerNotPermitted(Forbidden):
    """The actor's roles do not include any role the transition allows."""

    code = "trigger-not-permitted"


class PayloadInvalid(Invalid):
    """A trigger payload does not match the transition's ``payload_schema``."""

    code = "payload-invalid"


class DataInvalid(Invalid):
    """Case data does not match the definition's ``data_schema`` (on create or after actions)."""

    code = "data-invalid"


class ActionFailed(Invalid):
    """An action of a transition failed; nothing of the transition was applied."""

    code = "action-failed"


class ConcurrencyConflict(Conflict):
    """Another change to the case won the race (optimistic locking)."""

    code = "concurrency-conflict"


class VersionMismatch(Conflict):
    """The caller expected a case version that is no longer current.

    A conflict that the caller stated as a precondition (``If-Match``, ``--expect-version``),
    which is why the API answers it with 412 instead of 409.
    """

    code = "version-mismatch"


class IdempotencyKeyReused(Invalid):
    """An idempotency key came back with a different request than the one it first carried.

    The request is wrong, not the state: the key belongs to another request for good.
    """

    code = "idempotency-key-reused"


class BusinessKeyTaken(Conflict):
    """Another case of the definition already has this business key."""

    code = "business-key-taken"


class CaseChainTooDeep(Invalid):
    """Spawns and notifications between cases went deeper than the engine allows: the
    definitions loop. Retrying cannot help; the definitions must change."""

    code = "case-chain-too-deep"


class ReplayError(Invalid):
    """A case history handed to replay cannot be replayed: it does not start with the creation
    event, or its sequence numbers have gaps."""

    code = "replay-error"


class TimerNotFound(NotFound):
    """No timer with that id."""

    code = "timer-not-found"


# --- webhooks ----------------------------------------------------------------------------------


class WebhookNotFound(NotFound):
    """No webhook subscription with that id (or none the caller may see)."""

    code = "webhook-not-found"


class WebhookInvalid(Invalid):
    """A webhook subscription cannot be made as asked: a URL that is not http(s), a host
    outside the allow-list, an unknown event type."""

    code = "webhook-invalid"


class DeliveryNotFound(NotFound):
    """No webhook delivery with that id (or none the caller may see)."""

    code = "delivery-not-found"


class DeliveryNotDead(Conflict):
    """Only a dead-lettered delivery can be redelivered; this one is still on its way."""

    code = "delivery-not-dead"


# --- operations, tokens, KPIs, scenarios, dashboard forms -------------------------------------


class OperationInvalid(Invalid):
    """An operator action (retry, move, pause an SLA, reassign, ...) was asked without a
    reason or for something the case does not have or cannot do."""

    code = "operation-invalid"


class TokenError(Invalid):
    """An API token cannot be created or revoked as asked (unknown role, name taken, no such
    token)."""

    code = "token-error"


class TokenNotFound(NotFound):
    """No API token has that name."""

    code = "token-not-found"


class KpiError(Invalid):
    """A KPI report was asked for a malformed period or an unknown grouping."""

    code = "kpi-invalid"


class ScenarioError(Invalid):
    """The scenario file itself is wrong (not a failed expectation)."""

    code = "scenario-invalid"


class WorkbenchQueryInvalid(Invalid):
    """A workbench filter, sort or page cursor that cannot be read (an unknown sort, a data
    field the definition does not offer as a filter, a cursor from another sort)."""

    code = "workbench-query-invalid"


class FormError(Invalid):
    """A form field the engine is not asked about: a blank reason, broken JSON, text the
    databases cannot store. Reported like an engine refusal."""

    code = "dashboard-form-invalid"


# --- what svcflow runs on ---------------------------------------------------------------------


class DatabaseNotReady(Unavailable):
    """The database schema is missing or older than this svcflow (migrations not applied)."""

    code = "database-not-ready"


class DatabaseUnavailable(Unavailable):
    """The database cannot be reached or opened (the server is down or refuses the user; the
    SQLite file is not a database, or cannot be created where the URL points), or the
    connection to it broke under a command."""

    code = "database-unavailable"


class DatabaseUrlInvalid(Invalid):
    """The database URL cannot be read, or names a database svcflow has no driver for."""

    code = "database-url-invalid"


class RedisUnavailable(Unavailable):
    """The embedded redis-server cannot be started (no free port, or it did not come up)."""

    code = "redis-unavailable"


class DiagramUnavailable(Unavailable):
    """graphviz-pure, which lays diagrams out as SVG, could not be run."""

    code = "diagram-unavailable"


class PortInUse(Unavailable):
    """A port the local run was told to use (the web port, the embedded Redis's) is taken;
    the message names what holds it (``port``, ``occupant``)."""

    code = "port-in-use"


class ProcfileInvalid(Invalid):
    """The Procfile cannot describe the processes to run: a line that is not ``name:
    command``, a name given twice, or no process at all (``path``, ``line``)."""

    code = "procfile-invalid"


class SettingInvalid(Invalid):
    """A setting (an ``SVCFLOW_*`` variable) has a value svcflow cannot use (``setting``)."""

    code = "setting-invalid"


class SecretKeyInvalid(Invalid):
    """The file that should hold the session secret is missing, unreadable or too short to
    sign sessions with (``path``)."""

    code = "secret-key-invalid"


@dataclass
class ProblemList:
    """Accumulates problems; used by the validator to report everything at once."""

    items: list[Problem] = field(default_factory=list)

    def error(self, path: str, code: str, message: str, hint: str = "") -> None:
        self.items.append(Problem(Severity.ERROR, path, code, message, hint))

    def warning(self, path: str, code: str, message: str, hint: str = "") -> None:
        self.items.append(Problem(Severity.WARNING, path, code, message, hint))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.WARNING]


# --- values in messages --------------------------------------------------------------------------


WRITTEN_MAX = 200  # characters of a value quoted in a message


def written(value: Any) -> str:
    """``value`` as the person who gave it wrote it, for a message: JSON, which YAML reads too.

    Python's own spelling (``None``, ``True``, ``{'a': 1}``,
    ``datetime.datetime(2026, 2, 24, 10, 0)``) means nothing to someone who wrote ``null``,
    ``true``, ``{"a": 1}`` or ``2026-02-24T10:00:00`` in a request, a definition or a scenario.
    Instants and dates are ISO 8601; text keeps its Chinese. A long value is cut (a message
    quotes enough to find it, not a caller's 500 kB back at them)."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=_json_default)
    except (TypeError, ValueError):  # a mapping with keys JSON cannot have
        text = str(value)
    return text if len(text) <= WRITTEN_MAX else f"{text[: WRITTEN_MAX - 1]}…"


def _json_default(value: Any) -> Any:
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)
