"""The one error tree of svcflow.

Every error the engine raises derives from :class:`SvcflowError` and carries structured fields
(case id, state, trigger, definition element path, ...) besides a message that tells the reader
what is wrong and what to do. The HTTP layer maps these classes to status codes in one place;
the CLI prints ``message`` and ``hint``. Nothing in svcflow raises a bare ``Exception``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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


# --- definitions ------------------------------------------------------------------------------


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding of the validator, addressed by its element path (``transitions[4].guard``)."""

    severity: Severity
    path: str
    code: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.severity.value}: {self.path or '<root>'}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text

    def to_dict(self) -> dict[str, str]:
        return {
            "severity": self.severity.value,
            "path": self.path,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


class DefinitionInvalid(SvcflowError):
    """A workflow definition failed validation; ``problems`` lists every error found at once."""

    code = "definition-invalid"

    def __init__(self, name: str | None, problems: Sequence[Problem]) -> None:
        errors = [p for p in problems if p.severity is Severity.ERROR]
        first = f" First: {errors[0].path}: {errors[0].message}" if errors else ""
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


class DefinitionSourceError(SvcflowError):
    """The definition text could not be read as YAML/JSON at all."""

    code = "definition-unreadable"


class DefinitionNotFound(SvcflowError):
    code = "definition-not-found"


class ParameterInvalid(SvcflowError):
    """A deployment override of a definition parameter has the wrong name or type."""

    code = "parameter-invalid"


# --- expressions ------------------------------------------------------------------------------


class ExpressionError(SvcflowError):
    """A CEL expression failed to compile or to evaluate.

    ``path`` is the definition element that holds the expression.
    """

    code = "expression-error"


# --- cases ------------------------------------------------------------------------------------


class CaseNotFound(SvcflowError):
    code = "case-not-found"


class CaseClosed(SvcflowError):
    """The case is in a final state or cancelled: it takes no more triggers."""

    code = "case-closed"


class InvalidTrigger(SvcflowError):
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


class GuardRejected(SvcflowError):
    """Every transition for the trigger has a guard, and none of them held."""

    code = "guard-rejected"


class TriggerNotPermitted(SvcflowError):
    """The actor's roles do not include any role the transition allows."""

    code = "trigger-not-permitted"


class PayloadInvalid(SvcflowError):
    """A trigger payload does not match the transition's ``payload_schema``."""

    code = "payload-invalid"


class DataInvalid(SvcflowError):
    """Case data does not match the definition's ``data_schema`` (on create or after actions)."""

    code = "data-invalid"


class ActionFailed(SvcflowError):
    """An action of a transition failed; nothing of the transition was applied."""

    code = "action-failed"


class ConcurrencyConflict(SvcflowError):
    """Another change to the case won the race (optimistic locking)."""

    code = "concurrency-conflict"


class VersionMismatch(SvcflowError):
    """The caller expected a case version that is no longer current."""

    code = "version-mismatch"


class IdempotencyKeyReused(SvcflowError):
    """An idempotency key came back with a different request than the one it first carried."""

    code = "idempotency-key-reused"


class BusinessKeyTaken(SvcflowError):
    code = "business-key-taken"


class OperationInvalid(SvcflowError):
    """An operator action that cannot apply to this case (or a bulk action without a filter)."""

    code = "operation-invalid"


class CaseChainTooDeep(SvcflowError):
    """Cases spawned or notified each other deeper than a definition can mean to."""

    code = "case-chain-too-deep"


class TimerNotFound(SvcflowError):
    code = "timer-not-found"


class DatabaseNotReady(SvcflowError):
    """The database schema is missing or older than this svcflow (migrations not applied)."""

    code = "database-not-ready"


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
