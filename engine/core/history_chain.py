"""The hash chain over a case's history: what makes an edited or deleted event detectable.

Every event's ``hash`` is SHA-256 over the canonical form of its content and the hash of the
case's previous event (64 zeros before the first), so changing any stored field, deleting an
event or reordering events breaks the chain from that event on. docs/audit.md documents the
canonical form so that a hospital or a supplier can check a history without svcflow.

The canonical form is JSON with sorted keys, no whitespace and ASCII-only escapes. Numbers are
written so that they read back the same from every database: PostgreSQL's ``jsonb`` keeps
numbers as exact decimals and returns ``1e300`` as a 301-digit integer and ``1.0`` as ``1.0``,
so a whole number is written as an integer whatever its type (``1.0`` and ``1`` hash alike),
and any other float as Python's shortest round-trip form. RFC 8785 (JCS) libraries refuse
integers beyond 2**53, which case data may hold, hence this small encoder of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# The version of the canonical form; part of every hashed document, so a later form can
# coexist with chains written under this one.
CHAIN_FORMAT = 1
GENESIS = "0" * 64


class NotCanonical(ValueError):
    """A value has no canonical JSON form (NaN, infinity, a non-JSON type)."""


def _whole(value: float) -> int | float:
    if not math.isfinite(value):
        raise NotCanonical(f"{value!r} has no JSON form")
    exact = Decimal(repr(value))
    return int(exact) if exact == exact.to_integral_value() else value


def _has_float(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return True
    if kind is dict:
        for item in value.values():
            if _has_float(item):
                return True
    elif kind is list or kind is tuple:
        for item in value:
            if _has_float(item):
                return True
    return False


def _normalized(value: Any) -> Any:
    """``value`` as plain dicts and lists with every whole float as an int; the value itself
    when it holds no float and no other mapping type (the common case copies nothing)."""
    if isinstance(value, float):
        return _whole(value)
    if isinstance(value, Mapping):
        if type(value) is dict and not _has_float(value):
            return value
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if type(value) is list and not _has_float(value):
            return value
        return [_normalized(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """``value`` in the canonical form described in the module docstring.

    The writing is the json module's (in C: hashing is on every fire's path), once whole
    floats are ints; its ``sort_keys`` orders keys by code point, ``ensure_ascii`` escapes
    the rest, and any other float is written as its shortest round-trip repr."""
    try:
        return json.dumps(
            _normalized(value),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        )
    except (TypeError, ValueError) as exc:
        raise NotCanonical(str(exc)) from exc


def instant(value: datetime) -> str:
    """An event's time in the chain: UTC, microseconds, ``Z`` (what both databases keep)."""
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


@dataclass(frozen=True)
class ChainedEvent:
    """The content of a case event that its hash covers (every column but the row id)."""

    case_id: int
    seq: int
    event_type: str
    trigger: str | None
    from_state: str | None
    to_state: str
    actor: str
    payload: Mapping[str, Any]
    changes: Mapping[str, Any]
    at: datetime
    idempotency_key: str | None
    context: Mapping[str, Any] | None

    def document(self, previous_hash: str) -> dict[str, Any]:
        return {
            "format": CHAIN_FORMAT,
            "case_id": self.case_id,
            "seq": self.seq,
            "event_type": self.event_type,
            "trigger": self.trigger,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "actor": self.actor,
            "payload": self.payload,
            "changes": self.changes,
            "at": instant(self.at),
            "idempotency_key": self.idempotency_key,
            "context": self.context,
            "previous_hash": previous_hash,
        }


def event_hash(event: ChainedEvent, previous_hash: str) -> str:
    text = canonical_json(event.document(previous_hash))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class StoredEvent:
    """An event as read back for verification: its content and the hash stored with it."""

    event: ChainedEvent
    stored_hash: str | None


@dataclass(frozen=True)
class ChainBreak:
    """The first event of a case whose stored history does not hold together."""

    case_id: int
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"case {self.case_id}, event seq {self.seq}: {self.problem}"


def check_chain(
    case_id: int, events: Iterable[StoredEvent], *, head_seq: int, head_hash: str | None
) -> ChainBreak | None:
    """The first break in one case's chain, or None if it is intact.

    ``events`` in seq order; ``head_seq`` and ``head_hash`` are what the case row says its
    latest event is (its version and history head), so a deleted last event is caught too.
    """
    previous = GENESIS
    expected_seq = 1
    for stored in events:
        event = stored.event
        if event.seq != expected_seq:
            missing = (
                f"seq {expected_seq} is"
                if event.seq == expected_seq + 1
                else f"seqs {expected_seq}..{event.seq - 1} are"
            )
            return ChainBreak(
                case_id, expected_seq, f"{missing} missing (the history jumps to seq {event.seq})"
            )
        computed = event_hash(event, previous)
        if stored.stored_hash != computed:
            return ChainBreak(
                case_id,
                event.seq,
                f"its content and the previous event's hash give {computed}, but "
                f"{stored.stored_hash} is stored: this event was changed, or the one before it "
                "was changed or removed "
                "and re-hashed",
            )
        previous = computed
        expected_seq += 1
    last_seq = expected_seq - 1
    if last_seq != head_seq:
        if last_seq < head_seq:
            return ChainBreak(
                case_id,
                last_seq + 1,
                f"missing: the case is at version {head_seq} but its history ends at seq "
                f"{last_seq}",
            )
        return ChainBreak(
            case_id,
            head_seq + 1,
            f"unexpected: the case is at version {head_seq} but its history goes on to seq "
            f"{last_seq}",
        )
    if head_hash != previous:
        return ChainBreak(
            case_id,
            last_seq,
            f"the case row's history head {head_hash} is not this event's hash {previous}",
        )
    return None


def heads_digest(heads: Iterable[tuple[int, int, str]]) -> str:
    """SHA-256 over ``case_id:seq:hash`` lines of every case's latest event, by case id.

    What an anchor publishes: the whole history as of one moment in 64 hex digits."""
    digest = hashlib.sha256()
    for case_id, seq, hash_ in sorted(heads):
        digest.update(f"{case_id}:{seq}:{hash_}\n".encode("ascii"))
    return digest.hexdigest()
