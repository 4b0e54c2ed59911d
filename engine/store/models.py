"""SQLAlchemy models: the persisted shape of definitions, cases and their history.

The schema is owned by Alembic migrations (engine/db/migrations); these models mirror it. A test
compares them (autogenerate finds no difference), so the two cannot drift apart.

Time columns hold aware UTC datetimes (:class:`UtcDateTime`): SQLite has no time zone type, so
values are normalised to UTC on the way in and tagged UTC on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names are fixed so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" autoincrements.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("svcflow stores aware datetimes only; got a naive one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)

    if TYPE_CHECKING:
        # Every model here maps one Table; DeclarativeBase types ``__table__`` as the wider
        # FromClause, which Core's insert()/update()/delete() do not accept.
        __table__: ClassVar[Table]


class CaseStatus(str, Enum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class EventType(str, Enum):
    CREATED = "created"
    TRANSITION = "transition"
    CANCELLED = "cancelled"
    SLA_WARNING = "sla_warning"
    SLA_BREACHED = "sla_breached"
    SLA_PAUSED = "sla_paused"
    SLA_RESUMED = "sla_resumed"
    TIMER_FAILED = "timer_failed"
    CHILD_SPAWNED = "child_spawned"
    CHILD_ATTACHED = "child_attached"
    CHILD_UPDATE = "child_update"  # a child's news that did not move the parent (and why)
    FORCED = "forced"  # an administrator put the case in a state, outside the definition
    REASSIGNED = "reassigned"
    TIMER_RETRIED = "timer_retried"
    TIMER_CANCELLED = "timer_cancelled"  # a failed timer dismissed: its case had moved on
    MIGRATED = "migrated"  # moved to another version of its definition (engine/core/migration.py)


class TimerStatus(str, Enum):
    ARMED = "armed"
    FIRED = "fired"
    CANCELLED = "cancelled"
    FAILED = "failed"


FIRST = -1  # the sort_order of a mixin's columns that lead their table


class SourceVersion:
    """The columns of one immutable, numbered version of a YAML document that svcflow parses
    and stores whole (a workflow definition, a service contract): its name and number, its
    titles, the text as given, the document read from it, and the fingerprint that finds an
    identical one.

    They come first in the table, as the migrations created them (``sort_order``)."""

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True, sort_order=FIRST)
    name: Mapped[str] = mapped_column(String(63), nullable=False, sort_order=FIRST)
    version: Mapped[int] = mapped_column(Integer, nullable=False, sort_order=FIRST)
    title_en: Mapped[str] = mapped_column(String(200), nullable=False, sort_order=FIRST)
    title_zh: Mapped[str] = mapped_column(String(200), nullable=False, sort_order=FIRST)
    source: Mapped[str] = mapped_column(Text, nullable=False, sort_order=FIRST)
    # ``json``, not ``jsonb``, on PostgreSQL: the document keeps its keys in the order
    # written, which says the order of a field's choices and of a form's fields.
    document: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, sort_order=FIRST)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False, sort_order=FIRST)


class DefinitionVersion(SourceVersion, Base):
    """One published, immutable version of a workflow definition."""

    __tablename__ = "definition_versions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_definition_versions_name_version"),
        UniqueConstraint("name", "fingerprint", name="uq_definition_versions_name_fingerprint"),
    )

    published_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    published_by: Mapped[str] = mapped_column(String(200), nullable=False)
    # A retired version takes no new cases; its running cases continue (docs/versions.md).
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    retired_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class DefinitionHead(Base):
    """Which version of a definition new cases get, and whether the definition takes new
    cases at all. No row, or ``current_version`` NULL: the latest version not retired."""

    __tablename__ = "definition_heads"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    retired: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_by: Mapped[str] = mapped_column(String(200), nullable=False)


class DefinitionAudit(Base):
    """What a process owner did to a definition's versions (promoted, retired, restored,
    deleted), by whom, when and why. Deleted versions' numbers stay here, so a number is
    never given to another document (processes cache versions by number)."""

    __tablename__ = "definition_audit"
    __table_args__ = (Index("ix_definition_audit_name_at", "name", "at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


class ParameterOverride(Base):
    """A deployment's value for a definition parameter (applies to cases created after it)."""

    __tablename__ = "parameter_overrides"
    __table_args__ = (
        UniqueConstraint("definition_name", "name", name="uq_parameter_overrides_definition_name"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    definition_name: Mapped[str] = mapped_column(String(63), nullable=False)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    value: Mapped[Any] = mapped_column(Json, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_by: Mapped[str] = mapped_column(String(200), nullable=False)


class Case(Base):
    """A running instance: definition name + version, state, data, and an optimistic version."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint(
            "definition_name", "business_key", name="uq_cases_definition_name_business_key"
        ),
        Index("ix_cases_definition_state", "definition_name", "state"),
        Index("ix_cases_status_updated", "status", "updated_at"),
        Index("ix_cases_dwell", "status", "definition_name", "state", "state_entered_at"),
        # The workbench's filters (docs/dashboard.md): open cases of one team, customer or
        # assignee without reading the others.
        Index("ix_cases_status_team", "status", "team"),
        Index("ix_cases_status_customer", "status", "customer"),
        Index("ix_cases_status_assignee", "status", "assignee"),
        # The search box: a business key (T-2026-0001) of whichever workflow.
        Index("ix_cases_business_key", "business_key"),
        Index("ix_cases_contract", "contract_name", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    definition_name: Mapped[str] = mapped_column(String(63), nullable=False)
    definition_version: Mapped[int] = mapped_column(Integer, nullable=False)
    business_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    state: Mapped[str] = mapped_column(String(63), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=CaseStatus.OPEN.value)
    data: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    # Equals the sequence number of the case's latest history event.
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    state_entered_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    # The seq of the event that entered the current state: timers belong to one state entry,
    # and a self-loop transition (same state) keeps the entry and its timers.
    state_entry_seq: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    # The case this one belongs and reports to (a loaner's repair ticket, a ticket's device).
    parent_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("cases.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    # The hash of the latest event (engine/core/history_chain.py): the next event chains to
    # it without reading the history, and the version guard keeps the two in step.
    history_head: Mapped[str] = mapped_column(String(64), nullable=False)
    # What supervisors see of the case, from the data fields its definition names
    # (engine/core/supervision.py), kept by engine/services/case_labels.py.
    customer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    team: Mapped[str | None] = mapped_column(String(200), nullable=True)
    priority: Mapped[str | None] = mapped_column(String(200), nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The contract (and its version) whose terms the case was created under; none: the
    # deployment's parameters. The terms themselves are in ``params``, snapshotted.
    contract_name: Mapped[str | None] = mapped_column(String(63), nullable=True)
    contract_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ContractVersion(SourceVersion, Base):
    """One immutable version of a service contract (engine/core/contracts.py). Loading a
    changed file adds a version; cases keep the version they were created under."""

    __tablename__ = "contracts"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_contracts_name_version"),
        Index("ix_contracts_name_fingerprint", "name", "fingerprint"),
    )

    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    loaded_by: Mapped[str] = mapped_column(String(200), nullable=False)


class CaseEvent(Base):
    """Append-only history. ``seq`` runs 1, 2, 3 ... per case with no gaps."""

    __tablename__ = "case_events"
    __table_args__ = (
        UniqueConstraint("case_id", "seq", name="uq_case_events_case_id_seq"),
        # Rare event types (child_update, sla_breached) are found without scanning history.
        Index("ix_case_events_type", "event_type", "case_id"),
        # The event feed reads in position order (engine/store/event_feed.py).
        Index("ix_case_events_position", "position", unique=True),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(
        Id, ForeignKey("cases.id", ondelete="RESTRICT"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    event_type: Mapped[str] = mapped_column(String(32), nullable=False)
    trigger: Mapped[str | None] = mapped_column(String(63), nullable=True)
    from_state: Mapped[str | None] = mapped_column(String(63), nullable=True)
    to_state: Mapped[str] = mapped_column(String(63), nullable=False)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    # The data fields this event set (the whole initial data for "created"): folding them in
    # order rebuilds the case data, which is how replay works.
    changes: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # What the step read besides data and payload (counter values), so replay is exact.
    context: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    # SHA-256 over this event's content and the previous event's hash (docs/audit.md).
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # The event's place in the global feed, assigned just before its transaction commits
    # (engine/store/event_feed.py): increasing in commit order, never NULL once committed.
    position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class HistoryAnchor(Base):
    """A digest over every case's latest event hash at one moment (docs/audit.md).

    Published outside the system, an anchor fixes the history up to ``through_event_id``: an
    edit that re-hashes a chain, or the removal of a case's last events, no longer matches it.
    Anchors chain to each other like events, so one cannot be dropped or rewritten unseen.
    """

    __tablename__ = "history_anchors"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    anchored_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    anchored_by: Mapped[str] = mapped_column(String(200), nullable=False)
    # Every event with an id up to this one was committed when the anchor was taken.
    through_event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cases: Mapped[int] = mapped_column(BigInteger, nullable=False)
    events: Mapped[int] = mapped_column(BigInteger, nullable=False)
    heads_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    previous_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # SHA-256 over the fields above (docs/audit.md): what is published.
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class EventFeedHead(Base):
    """The last position handed out to a committed event: one row, the feed's counter.

    A transaction takes its events' positions by updating this row just before it commits,
    and holds the row's lock until it has; so positions become visible in order, and a feed
    reader that has seen position N will never later find a committed event below N."""

    __tablename__ = "event_feed_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger, nullable=False)


class WebhookStatus(str, Enum):
    ACTIVE = "active"
    PAUSED = "paused"


class DeliveryStatus(str, Enum):
    PENDING = "pending"  # to be sent (again) at next_attempt_at
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # failed for the whole retry window: waits for a redeliver


class WebhookSubscription(Base):
    """Where to POST which events. ``cursor`` is the feed position up to which deliveries
    were made for it: the feed is the source of truth, and a paused subscription simply
    stops advancing its cursor (engine/services/webhooks.py)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    events: Mapped[list[str]] = mapped_column(Json, nullable=False)
    definition: Mapped[str | None] = mapped_column(String(63), nullable=True)
    # The signing key (whsec_...), kept as given to the subscriber: HMAC needs it in clear.
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    cursor: Mapped[int] = mapped_column(BigInteger, nullable=False)
    owner: Mapped[str] = mapped_column(String(200), nullable=False)  # the actor who made it
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


class WebhookDelivery(Base):
    """One event for one subscription: the outbox row the sender works from."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint(
            "subscription_id", "position", name="uq_webhook_deliveries_subscription_id"
        ),
        # What the sender reads: a subscription's pending rows in feed order.
        Index("ix_webhook_deliveries_pending", "subscription_id", "status", "position"),
        Index("ix_webhook_deliveries_status_updated", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(
        Id, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(BigInteger, nullable=False)
    case_id: Mapped[int] = mapped_column(Id, nullable=False)
    event_type: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    # Retries go on until this plus the retry window; a redeliver starts a new window.
    retry_from: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class IdempotencyRecord(Base):
    """The first outcome of a request that carried an idempotency key.

    ``scope`` separates key spaces (``create:repair_ticket``, ``fire:42``); ``fingerprint`` is a
    hash of the request, so a reused key with another request is refused instead of answered
    with the wrong result.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_records_scope_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(120), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    case_id: Mapped[int | None] = mapped_column(Id, nullable=True)
    event_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


class Timer(Base):
    """A durable timer: the source of truth for what is due. Redis only delivers it.

    State timers belong to one state entry (``state_entry_seq``); SLA timers (``sla`` set) are
    re-planned from the history after every event of the case.
    """

    __tablename__ = "timers"
    __table_args__ = (
        Index("ix_timers_status_due", "status", "due_at"),
        Index("ix_timers_status_deliver", "status", "deliver_at"),
        # A case's armed timers in due order (every case read and fire): equality on both
        # columns and the order from the index, so SQLite prefers it to the status index
        # even before ANALYZE has given it statistics.
        Index("ix_timers_case_status_due", "case_id", "status", "due_at"),
        # Failed timers only, oldest first, with what the timer_failed rule joins on: an
        # index-only scan (the rule reads every failed timer, closed cases' too).
        Index(
            "ix_timers_failed",
            "updated_at",
            "case_id",
            "id",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(
        Id, ForeignKey("cases.id", ondelete="RESTRICT"), nullable=False
    )
    state_entry_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    sla: Mapped[str | None] = mapped_column(String(63), nullable=True)
    trigger: Mapped[str | None] = mapped_column(String(63), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    calendar: Mapped[str | None] = mapped_column(String(63), nullable=True)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    # When the next delivery is expected: the due time, a retry's time after a failed
    # attempt, or when the sweeper last handed the timer over again. An armed timer whose
    # deliver_at is older than the tolerance was lost on the way, whatever Redis says.
    deliver_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    provisional: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # ``last_error`` and a failure's ``note`` as data (engine/services/timer_firing.py
    # record_failure): {"error": an error record, "note": a message}, for readers that word
    # them in another language. None on rows failed before it was kept.
    failure: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Lease(Base):
    """A periodic duty that one process at a time performs (the timer sweep, the dwell
    statistics), and when it last ran. Every worker competes for it; whoever holds an
    unexpired lease does the duty, so it does not depend on any one process staying alive."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_run_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_outcome: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False, default=dict)


class WorkerHeartbeat(Base):
    """A worker process's sign of life, written by its housekeeping thread: readiness and
    monitoring read it even while Redis (RQ's own worker registry) is unreachable."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    redis_ok: Mapped[bool] = mapped_column(Boolean, nullable=False)


class CalendarRecord(Base):
    """A business calendar kept in the database.

    For a built-in base (``cn-workdays``) the row holds only the administrator's overrides, so
    a newer chinesecalendar release still brings its data; a custom calendar holds its whole
    definition (``BusinessCalendar.to_dict()``).
    """

    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("name", name="uq_calendars_name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    base: Mapped[str | None] = mapped_column(String(63), nullable=True)
    spec: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_by: Mapped[str] = mapped_column(String(200), nullable=False)


class ApiToken(Base):
    """A bearer token for the HTTP API. Only a SHA-256 hash is stored: tokens are 256-bit
    random strings, so a fast hash is as safe as a slow one and keeps each request cheap."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        UniqueConstraint("name", name="uq_api_tokens_name"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # When it stops working (None: when revoked); checked on every request (api/auth.py).
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # When a request last authenticated with it, to within the API's token cache period.
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class DefinitionDraft(Base):
    """A process owner's work in progress: validated on demand, published into a version."""

    __tablename__ = "definition_drafts"
    __table_args__ = (UniqueConstraint("name", name="uq_definition_drafts_name"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_by: Mapped[str] = mapped_column(String(200), nullable=False)


class Counter(Base):
    """A count shared across cases, e.g. repairs of one device (R-REP-07)."""

    __tablename__ = "counters"
    __table_args__ = (UniqueConstraint("name", "key", name="uq_counters_name_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(63), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)


class CaseSla(Base):
    """The SLA clocks of each case as of its latest event: a projection of the history.

    Clocks are a fold over the history (engine/core/sla.py); this table keeps each clock's
    state, advanced in the transaction of every event that changes it (engine/services/
    sla_clocks.py), so a fire never re-reads the history and supervisors can ask "which
    cases are breached or past their warning" with an index. A running clock's status
    changes with time alone: queries treat ``running`` with ``due_at`` in the past as
    breached, and ``elapsed_seconds`` is as of ``updated_at``.

    One row per round: a clock that runs once has round 1 only; an SLA with ``rounds:
    repeat`` adds a row each time it starts again, and only its latest round is ever open.
    """

    __tablename__ = "case_slas"
    __table_args__ = (
        UniqueConstraint("case_id", "sla", "round", name="uq_case_slas_case_id_sla_round"),
        Index("ix_case_slas_status_due", "status", "due_at"),
        Index("ix_case_slas_status_warn", "status", "warn_at"),
        # Clocks still open: what the sla_breached rule reads, without the stopped history.
        Index(
            "ix_case_slas_open_due",
            "due_at",
            postgresql_where=text("stopped_at IS NULL"),
            sqlite_where=text("stopped_at IS NULL"),
        ),
        # Clocks an operator paused and nobody resumed: the sla_paused rule, oldest first.
        Index(
            "ix_case_slas_paused",
            "paused_at",
            postgresql_where=text("manual_pause AND stopped_at IS NULL"),
            sqlite_where=text("manual_pause = 1 AND stopped_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(
        Id, ForeignKey("cases.id", ondelete="RESTRICT"), nullable=False
    )
    definition_name: Mapped[str] = mapped_column(String(63), nullable=False)
    sla: Mapped[str] = mapped_column(String(63), nullable=False)
    round: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    target_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    elapsed_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    warn_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    # The clock's state after the case's latest event (engine.core.sla.ClockState), which the
    # next event advances: ``phase`` NULL means not kept (rows from before migration 0007),
    # and the next event recomputes it from the history. ``unit`` and ``calendar`` say how
    # ``banked_seconds`` was measured; a change of either recomputes it too.
    phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    running_since: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    banked_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    manual_pause: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    warned: Mapped[list[float] | None] = mapped_column(Json, nullable=True)
    warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    breach_recorded: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resume_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(8), nullable=True)
    calendar: Mapped[str | None] = mapped_column(String(63), nullable=True)


class CaseWait(Base):
    """Open parents waiting on a child: a projection of the history, kept in the transaction
    of each event (engine/services/links.py).

    ``orphaned_wait``: the parent recorded a ``child_update`` (a child's news it could not
    take); ``event_seq`` is that event's seq. ``waiting_on_cancelled``: a child of the parent
    was cancelled while the parent was open. Rows are written only for open parents and are
    deleted when the parent closes or is forced into a state, so the table is bounded by open
    parents, not by the history: the stuck-case rules read it by ``(reason, since)`` instead
    of joining history to parents. A fire that moves the parent leaves its rows (the rules
    check later transitions and ``state_entered_at``), so the hot path sends nothing more.
    """

    __tablename__ = "case_waits"
    __table_args__ = (
        Index("ix_case_waits_reason_since", "reason", "since"),
        Index("ix_case_waits_case_id", "case_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(
        Id, ForeignKey("cases.id", ondelete="RESTRICT"), nullable=False
    )
    reason: Mapped[str] = mapped_column(String(32), nullable=False)
    child_id: Mapped[int] = mapped_column(Id, nullable=False)
    since: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    event_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(Json, nullable=False)


class DwellStat(Base):
    """How long cases of one definition version stay in each state (from the history),
    refreshed periodically; the stuck-case inspection compares against ``p95_seconds``."""

    __tablename__ = "dwell_stats"
    __table_args__ = (
        UniqueConstraint(
            "definition_name", "definition_version", "state", name="uq_dwell_stats_definition_name"
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    definition_name: Mapped[str] = mapped_column(String(63), nullable=False)
    definition_version: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(String(63), nullable=False)
    samples: Mapped[int] = mapped_column(Integer, nullable=False)
    p50_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    p95_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
