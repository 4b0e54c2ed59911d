"""Webhook subscriptions and their deliveries, on a session the caller owns.

The event feed is the source of truth (engine/store/event_feed.py). Each active subscription
follows it with a cursor: :func:`fan_out` turns the committed events past the cursor that the
subscription wants into ``webhook_deliveries`` rows and moves the cursor, in one transaction.
So a delivery exists only for a committed event, and nothing depends on Redis or on a process
staying alive: a sender that dies leaves the rows pending, and whoever sends next finds them.

Order per case: :func:`due_batch` hands the sender, per case, the pending deliveries in feed
order, and only when the earliest of them is due: a case whose earliest delivery is waiting
for a retry holds its later ones back. A dead-lettered delivery no longer holds its case back
(it waits for an operator's redeliver, which then arrives out of order; the receiver orders by
``seq`` within a case if it must).

Retries: exponential backoff (:func:`retry_delay`) for at least :data:`RETRY_WINDOW` from the
first attempt (or from a redeliver); a delivery that fails after that is dead-lettered.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from engine.core.machine import ADMIN_ROLE, Actor
from engine.errors import DeliveryNotDead, DeliveryNotFound, WebhookInvalid, WebhookNotFound
from engine.store.event_feed import FeedEvent, events_at, head_position, read_after
from engine.store.models import (
    DefinitionVersion,
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookStatus,
    WebhookSubscription,
)

subscriptions = WebhookSubscription.__table__
deliveries = WebhookDelivery.__table__

ALL_EVENTS = "*"
EVENT_TYPES = frozenset(t.value for t in EventType)
RETRY_WINDOW = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=10)
LONGEST_RETRY = timedelta(hours=2)
FAN_OUT_BATCH = 1000  # feed events read per subscription per round
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class Subscription:
    id: int
    url: str
    events: list[str]
    definition: str | None
    status: str
    cursor: int
    owner: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "definition": self.definition,
            "status": self.status,
            "cursor": self.cursor,
            "owner": self.owner,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Delivery:
    id: int
    subscription_id: int
    position: int
    case_id: int
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Outgoing:
    """A delivery to attempt now: where, with which key, and the event itself."""

    delivery_id: int
    subscription_id: int
    url: str
    secret: str
    event: FeedEvent


# --- subscriptions -----------------------------------------------------------------------------


def check_url(url: str, allowed_hosts: Sequence[str] | None) -> str:
    """``url`` if it is an http(s) URL whose host the allow-list admits; else WebhookInvalid.

    ``allowed_hosts`` None admits any host (development); otherwise each entry is a host name
    or a pattern such as ``*.hospital.example`` (docs/events.md, on SSRF)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookInvalid(
            f"The webhook URL {url!r} is not an http(s) URL with a host.",
            hint="Give a URL such as https://erp.hospital.example/svcflow/events.",
            url=url,
        )
    host = parts.hostname.lower()
    if allowed_hosts is not None and not any(fnmatchcase(host, p.lower()) for p in allowed_hosts):
        raise WebhookInvalid(
            f"Webhooks may not be sent to {host!r}: it is not in the allow-list of "
            "destination hosts.",
            hint="An administrator adds the host to SVCFLOW_WEBHOOK_ALLOWED_HOSTS.",
            url=url,
            allowed_hosts=list(allowed_hosts),
        )
    return url.strip()


def _check_events(events: Sequence[str]) -> list[str]:
    if not events:
        raise WebhookInvalid(
            "A webhook needs at least one event type, or '*' for all.",
            hint=f"Event types: {', '.join(sorted(EVENT_TYPES))}.",
        )
    unknown = sorted(set(events) - EVENT_TYPES - {ALL_EVENTS})
    if unknown:
        raise WebhookInvalid(
            f"Unknown event type(s): {', '.join(unknown)}.",
            hint=f"Event types: {', '.join(sorted(EVENT_TYPES))}, or '*' for all.",
            events=unknown,
        )
    return [ALL_EVENTS] if ALL_EVENTS in events else sorted(set(events))


def create_subscription(
    session: Session,
    *,
    url: str,
    events: Sequence[str],
    definition: str | None,
    owner: str,
    now: datetime,
    allowed_hosts: Sequence[str] | None,
) -> tuple[Subscription, str]:
    """A new active subscription, and its signing secret (shown to its owner this once).

    It receives the events that commit from now on: its cursor starts at the feed's head."""
    checked_url = check_url(url, allowed_hosts)
    wanted = _check_events(events)
    if definition is not None and not _published(session, definition):
        raise WebhookInvalid(
            f"No definition named {definition!r} is published: the webhook would never fire.",
            hint="Check the name (GET /api/v1/definitions lists them), or leave definition out.",
            definition=definition,
        )
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
    conn = session.connection()
    new_id = conn.execute(
        insert(subscriptions)
        .values(
            url=checked_url,
            events=wanted,
            definition=definition,
            secret=secret,
            status=WebhookStatus.ACTIVE.value,
            cursor=head_position(conn),
            owner=owner,
            created_at=now,
        )
        .returning(subscriptions.c.id)
    ).scalar_one()
    return get_subscription(session, int(new_id), actor=None), secret


def _published(session: Session, name: str) -> bool:
    found = session.execute(
        select(DefinitionVersion.id).where(DefinitionVersion.name == name).limit(1)
    ).first()
    return found is not None


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        url=row.url,
        events=list(row.events),
        definition=row.definition,
        status=row.status,
        cursor=int(row.cursor),
        owner=row.owner,
        created_at=row.created_at,
    )


def _visible(actor: Actor | None) -> Any:
    """Admins see every subscription; anyone else only their own."""
    if actor is None or ADMIN_ROLE in actor.roles:
        return True
    return subscriptions.c.owner == actor.name


def get_subscription(
    session: Session, subscription_id: int, *, actor: Actor | None
) -> Subscription:
    row = session.execute(
        select(subscriptions).where(subscriptions.c.id == subscription_id, _visible(actor))
    ).one_or_none()
    if row is None:
        raise WebhookNotFound(
            f"No webhook subscription {subscription_id}"
            + ("." if actor is None or ADMIN_ROLE in actor.roles else " of yours."),
            hint="List them: GET /api/v1/webhooks or `svcflow webhooks list`.",
            subscription_id=subscription_id,
        )
    return _subscription(row)


def list_subscriptions(session: Session, *, actor: Actor | None) -> list[Subscription]:
    rows = session.execute(
        select(subscriptions).where(_visible(actor)).order_by(subscriptions.c.id)
    )
    return [_subscription(r) for r in rows]


def set_status(
    session: Session, subscription_id: int, status: WebhookStatus, *, actor: Actor | None
) -> Subscription:
    """Pause (nothing is made or sent; the cursor waits) or resume (it catches up)."""
    get_subscription(session, subscription_id, actor=actor)
    session.execute(
        update(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .values(status=status.value)
    )
    return get_subscription(session, subscription_id, actor=actor)


def delete_subscription(session: Session, subscription_id: int, *, actor: Actor | None) -> None:
    """Remove the subscription and its deliveries, sent or not."""
    get_subscription(session, subscription_id, actor=actor)
    session.execute(delete(deliveries).where(deliveries.c.subscription_id == subscription_id))
    session.execute(delete(subscriptions).where(subscriptions.c.id == subscription_id))


# --- making deliveries from the feed -----------------------------------------------------------


def fan_out(session: Session, *, now: datetime, batch: int = FAN_OUT_BATCH) -> int:
    """For each active subscription, a delivery row per wanted event past its cursor, and the
    cursor moved on; returns how many rows were made. Safe to run concurrently: the cursor
    only moves from the value it was read at, so a second runner makes nothing twice."""
    conn = session.connection()
    made = 0
    active = session.execute(
        select(subscriptions).where(subscriptions.c.status == WebhookStatus.ACTIVE.value)
    ).all()
    for sub in active:
        types = [] if ALL_EVENTS in sub.events else list(sub.events)
        page = read_after(
            conn, int(sub.cursor), limit=batch, definition=sub.definition, types=types
        )
        if page.next == sub.cursor:
            continue
        moved = conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == sub.id, subscriptions.c.cursor == sub.cursor)
            .values(cursor=page.next)
        )
        if moved.rowcount != 1:
            continue  # another runner got here first
        if page.items:
            conn.execute(
                insert(deliveries),
                [
                    {
                        "subscription_id": sub.id,
                        "position": e.position,
                        "case_id": e.case_id,
                        "event_type": e.event_type,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "retry_from": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for e in page.items
                ],
            )
            made += len(page.items)
    return made


# --- sending -----------------------------------------------------------------------------------


def due_batch(session: Session, *, now: datetime, limit: int = 500) -> list[list[Outgoing]]:
    """What to send now, as one list per (subscription, case), each in feed order.

    Per active subscription, its oldest pending deliveries (up to ``limit``); a case whose
    earliest pending delivery is not due yet is left out entirely, so its later events wait
    for it."""
    conn = session.connection()
    groups: dict[tuple[int, int], list[Any]] = {}
    active = session.execute(
        select(subscriptions).where(subscriptions.c.status == WebhookStatus.ACTIVE.value)
    ).all()
    for sub in active:
        rows = conn.execute(
            select(deliveries)
            .where(
                deliveries.c.subscription_id == sub.id,
                deliveries.c.status == DeliveryStatus.PENDING.value,
            )
            .order_by(deliveries.c.position)
            .limit(limit)
        ).all()
        for row in rows:
            groups.setdefault((sub.id, row.case_id), []).append((sub, row))
    due = {k: v for k, v in groups.items() if v[0][1].next_attempt_at <= now}
    if not due:
        return []
    events = _events_at(session, {row.position for group in due.values() for _, row in group})
    return [
        [
            Outgoing(row.id, sub.id, sub.url, sub.secret, events[row.position])
            for sub, row in group
            if row.position in events
        ]
        for group in due.values()
    ]


def _events_at(session: Session, positions: Iterable[int]) -> dict[int, FeedEvent]:
    return events_at(session.connection(), sorted(positions))


def retry_delay(attempts: int) -> timedelta:
    """How long after failed attempt number ``attempts`` (1, 2, ...) to try again:
    10 s, 20 s, 40 s, ... doubling, at most 2 hours."""
    doublings = min(max(attempts - 1, 0), 20)  # 2**20 x 10 s is far past the cap already
    return min(FIRST_RETRY * (1 << doublings), LONGEST_RETRY)


def record_delivered(session: Session, delivery_ids: Sequence[int], *, now: datetime) -> None:
    if delivery_ids:
        session.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(list(delivery_ids)))
            .values(
                status=DeliveryStatus.DELIVERED.value,
                attempts=deliveries.c.attempts + 1,
                delivered_at=now,
                updated_at=now,
                last_error=None,
            )
        )


def record_failed(session: Session, delivery_id: int, error: str, *, now: datetime) -> str:
    """Note a failed attempt: retry later, or dead-letter once the retry window is over.
    Returns the delivery's new status."""
    row = session.execute(
        select(deliveries.c.attempts, deliveries.c.retry_from).where(deliveries.c.id == delivery_id)
    ).one_or_none()
    if row is None:  # its subscription was deleted meanwhile
        return DeliveryStatus.DEAD.value
    attempts = row.attempts + 1
    dead = now - row.retry_from >= RETRY_WINDOW
    status = DeliveryStatus.DEAD if dead else DeliveryStatus.PENDING
    session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=status.value,
            attempts=attempts,
            next_attempt_at=now if dead else now + retry_delay(attempts),
            last_error=error[:2000],
            updated_at=now,
        )
    )
    return status.value


# --- reading and redelivering ------------------------------------------------------------------


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        subscription_id=row.subscription_id,
        position=int(row.position),
        case_id=row.case_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def list_deliveries(
    session: Session,
    *,
    actor: Actor | None,
    status: DeliveryStatus | None = None,
    subscription_id: int | None = None,
    limit: int = 100,
) -> list[Delivery]:
    """Deliveries, most recently changed first (the dead letters with ``status=dead``)."""
    query = (
        select(deliveries)
        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
        .where(_visible(actor))
        .order_by(deliveries.c.updated_at.desc(), deliveries.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(deliveries.c.status == status.value)
    if subscription_id is not None:
        query = query.where(deliveries.c.subscription_id == subscription_id)
    return [_delivery(r) for r in session.execute(query)]


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
    ).all()
    return {status: int(n) for status, n in rows}


def redeliver(
    session: Session, delivery_id: int, *, actor: Actor | None, now: datetime
) -> Delivery:
    """Send a dead-lettered delivery again, with a fresh retry window."""
    row = session.execute(
        select(deliveries)
        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
        .where(deliveries.c.id == delivery_id, _visible(actor))
    ).one_or_none()
    if row is None:
        raise DeliveryNotFound(
            f"No webhook delivery {delivery_id}.",
            hint="List dead letters: GET /api/v1/webhooks/deliveries?status=dead.",
            delivery_id=delivery_id,
        )
    if row.status != DeliveryStatus.DEAD.value:
        raise DeliveryNotDead(
            f"Delivery {delivery_id} is {row.status}, not dead-lettered.",
            hint="Only dead letters are redelivered; a pending one is retried by itself.",
            delivery_id=delivery_id,
            delivery_status=row.status,
        )
    session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=now,
            retry_from=now,
            updated_at=now,
        )
    )
    return _delivery(
        session.execute(select(deliveries).where(deliveries.c.id == delivery_id)).one()
    )
