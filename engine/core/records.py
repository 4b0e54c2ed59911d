"""Plain value records of persisted cases and history events.

Services return these instead of ORM objects: they are immutable, cheap to build from a Core
row, and safe to hand to the CLI, the API and replay without a live session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CaseRecord:
    id: int
    definition_name: str
    definition_version: int
    business_key: str | None
    state: str
    status: str
    data: Mapping[str, Any]
    params: Mapping[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    state_entered_at: datetime
    state_entry_seq: int = 1
    parent_id: int | None = None
    # The hash of the case's latest event (engine/core/history_chain.py); None until read.
    history_head: str | None = None
    contract_name: str | None = None  # the contract whose terms ``params`` took, if any
    contract_version: int | None = None


@dataclass(frozen=True)
class EventRecord:
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
    idempotency_key: str | None = None
    context: Mapping[str, Any] | None = None
    # The event's link in its case's hash chain (docs/audit.md); None until it is stored.
    hash: str | None = None


@dataclass(frozen=True)
class FireOutcome:
    """The result of a fire. ``replayed`` is True when an idempotency key matched an earlier
    request: nothing changed now, and ``event`` is the event that request produced."""

    case: CaseRecord
    event: EventRecord
    replayed: bool = False
    allowed_triggers: tuple[str, ...] = field(default=())
