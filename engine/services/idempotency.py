"""Idempotency keys for creating cases and firing triggers.

A retried request with the same key and the same content is answered with the first
request's result (its case and event), and nothing changes; the same key with other content is
refused. The record is written in the transaction of the change it answers, so a crash
between the two cannot leave one without the other.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import ConcurrencyConflict, IdempotencyKeyReused
from engine.store.models import IdempotencyRecord

records = IdempotencyRecord.__table__


def fingerprint(*parts: Any) -> str:
    """A digest of the request's content, to tell a retry from another request."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def recall(session: Session, scope: str, key: str, digest: str) -> Row[Any] | None:
    """The earlier request's record for this key, or None; raises if the content differs."""
    row = session.execute(
        select(records).where(records.c.scope == scope, records.c.key == key)
    ).one_or_none()
    if row is not None and row.fingerprint != digest:
        raise IdempotencyKeyReused(
            f"Idempotency key {key!r} was first used with a different request.",
            hint="Use a new key for a new request; reuse a key only to retry the same one.",
            idempotency_key=key,
        )
    return row


def remember(
    session: Session,
    scope: str,
    key: str,
    digest: str,
    *,
    case_id: int,
    seq: int,
    now: datetime,
) -> None:
    try:
        session.execute(
            insert(records).values(
                scope=scope,
                key=key,
                fingerprint=digest,
                case_id=case_id,
                event_seq=seq,
                created_at=now,
            )
        )
    except IntegrityError as exc:
        # Two retries of one request raced past recall (PostgreSQL runs them side by side);
        # the other one's record won. A retry now is answered from that record.
        raise ConcurrencyConflict(
            f"A request with idempotency key {key!r} was being handled at the same time.",
            hint="Retry with the same key; it will return the first request's result.",
            idempotency_key=key,
            case_id=case_id,
        ) from exc
