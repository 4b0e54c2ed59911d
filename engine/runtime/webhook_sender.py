"""Sending webhooks: the worker's loop that turns the event feed into signed HTTP POSTs.

One worker at a time sends (the ``webhook-sender`` lease, renewed every round, taken over by
another worker :data:`LEASE_TTL` after its holder stops renewing, e.g. after a kill -9).
A round (:meth:`WebhookSender.run_once`):

1. makes the deliveries of newly committed events (``webhooks.fan_out``, one transaction);
2. takes what is due, per (subscription, case) in feed order (``webhooks.due_batch``);
3. sends the cases' lists side by side on a few threads, each list in order, stopping at a
   case's first failure so that its later events wait;
4. records the outcomes in one transaction.

A sender that dies between 3 and 4 has sent deliveries it did not record: the next sender
sends them again. Delivery is at least once; the ``webhook-id`` header (``evt_<position>``)
is the receiver's key to drop duplicates. Nothing is kept in Redis: it only wakes the loop
when events commit (the feed's doorbell), and a lost wake-up costs at most
:data:`IDLE_SECONDS`.

Each request is signed per the Standard Webhooks specification with the ``standardwebhooks``
package (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256 of
``id.timestamp.body`` with the subscription's ``whsec_`` secret). The timestamp is the wall
clock's (receivers compare it with theirs), while retry times follow the runtime's clock, so
tests skip the retry window instead of waiting it out. Redirects are not followed and the
destination host is checked against the allow-list again at every send (docs/events.md).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import requests
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from engine.errors import WebhookInvalid
from engine.runtime.clock import Clock, SystemClock
from engine.runtime.feed import FeedWaiter
from engine.services import webhooks
from engine.store import leases
from engine.store.database import read_only_session
from engine.store.event_feed import head_position

log = logging.getLogger(__name__)

LEASE = "webhook-sender"
LEASE_TTL = timedelta(seconds=30)
IDLE_SECONDS = 1.0  # a loop with nothing to do looks again this often without a wake-up
SEND_TIMEOUT_SECONDS = 10.0
SEND_THREADS = 8
ALLOWED_HOSTS_VARIABLE = "SVCFLOW_WEBHOOK_ALLOWED_HOSTS"


def allowed_hosts(configured: str | None = None) -> list[str] | None:
    """The destination hosts webhooks may go to: ``configured`` or
    ``SVCFLOW_WEBHOOK_ALLOWED_HOSTS``, comma-separated host names or patterns
    (``*.hospital.example``); None, any host, when neither is set (development only)."""
    text = configured if configured is not None else os.environ.get(ALLOWED_HOSTS_VARIABLE)
    if not text or not text.strip():
        return None
    return [h.strip() for h in text.split(",") if h.strip()]


@dataclass(frozen=True)
class RoundOutcome:
    held: bool  # whether this sender held the lease this round
    made: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.made or self.delivered or self.failed)


@dataclass
class Attempt:
    delivery_id: int
    error: str | None  # None: delivered


@dataclass
class WebhookSender:
    sessions: sessionmaker[Session]
    clock: Clock
    name: str
    hosts: Sequence[str] | None = None
    signing_clock: Clock = field(default_factory=SystemClock)
    timeout: float = SEND_TIMEOUT_SECONDS
    threads: int = SEND_THREADS
    _local: threading.local = field(default_factory=threading.local)

    def run_once(self) -> RoundOutcome:
        now = self.clock.now()
        with self.sessions() as session, session.begin():
            if not leases.take(session, LEASE, self.name, now=now, ttl=LEASE_TTL):
                return RoundOutcome(held=False)
        with self.sessions() as session, session.begin():
            made = webhooks.fan_out(session, now=now)
        with self.sessions() as session, session.begin():
            groups = webhooks.due_batch(session, now=now)
        attempts = self._send_all(groups)
        return self._record(attempts, made)

    def release(self) -> None:
        with self.sessions() as session, session.begin():
            leases.release(session, LEASE, self.name)

    def run(self, stopping: threading.Event, waiter: FeedWaiter) -> None:
        """Rounds until ``stopping`` is set; between idle rounds, wait for the feed's doorbell
        (or :data:`IDLE_SECONDS`). Errors of a round are logged and the loop goes on."""
        while not stopping.is_set():
            try:
                # The head before the round: an event committed during the round, whose
                # doorbell rang before the wait below subscribed, still ends that wait at once.
                seen = self._head()
                outcome = self.run_once()
            except Exception:  # a database outage, a bug: log it, keep the loop alive
                log.warning("webhook sender: round failed", exc_info=True)
                seen, outcome = None, RoundOutcome(held=False)
            if not outcome.busy:
                waiter.wait_for(functools.partial(self._moved, seen, stopping), IDLE_SECONDS)

    def _head(self) -> int:
        with read_only_session(self.sessions) as session:
            return head_position(session.connection())

    def _moved(self, seen: int | None, stopping: threading.Event) -> bool:
        if stopping.is_set():
            return True
        try:
            return seen is None or self._head() > seen
        except SQLAlchemyError:
            return False  # the database is away: wait out the poll, the round will say

    # --- sending ------------------------------------------------------------------------------

    def _send_all(self, groups: list[list[webhooks.Outgoing]]) -> list[Attempt]:
        if not groups:
            return []
        if len(groups) == 1 or self.threads <= 1:
            return [a for group in groups for a in self._send_in_order(group)]
        with ThreadPoolExecutor(min(self.threads, len(groups))) as pool:
            return [a for done in pool.map(self._send_in_order, groups) for a in done]

    def _send_in_order(self, group: list[webhooks.Outgoing]) -> list[Attempt]:
        """One case's deliveries in order, up to and including its first failure."""
        done = []
        for outgoing in group:
            error = self._send(outgoing)
            done.append(Attempt(outgoing.delivery_id, error))
            if error is not None:
                break
        return done

    def _send(self, outgoing: webhooks.Outgoing) -> str | None:
        """Deliver once; None on a 2xx answer, else what went wrong."""
        try:
            webhooks.check_url(outgoing.url, self.hosts)
        except WebhookInvalid as exc:
            return exc.message
        event = outgoing.event
        body = json.dumps(
            {"type": event.event_type, "timestamp": event.at.isoformat(), "data": event.to_dict()},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        sent_at = self.signing_clock.now()
        signature = Webhook(outgoing.secret).sign(event.event_id, sent_at, body)
        headers = {
            "content-type": "application/json",
            "user-agent": "svcflow-webhooks",
            "webhook-id": event.event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
        }
        try:
            response = self._http().post(
                outgoing.url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"

    def _http(self) -> requests.Session:
        """A keep-alive HTTP session per sending thread (requests' sessions are not shared
        across threads)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy from the environment in front of receivers
            self._local.session = session
        return session

    # --- recording ----------------------------------------------------------------------------

    def _record(self, attempts: list[Attempt], made: int) -> RoundOutcome:
        now = self.clock.now()
        delivered = [a.delivery_id for a in attempts if a.error is None]
        failed = [a for a in attempts if a.error is not None]
        dead = 0
        with self.sessions() as session, session.begin():
            webhooks.record_delivered(session, delivered, now=now)
            for attempt in failed:
                assert attempt.error is not None
                status = webhooks.record_failed(
                    session, attempt.delivery_id, attempt.error, now=now
                )
                dead += status == "dead"
        if failed:
            log.warning(
                "webhook sender: %d delivery attempt(s) failed, %d dead-lettered",
                len(failed),
                dead,
            )
        return RoundOutcome(True, made, len(delivered), len(failed), dead)


def drain(sender: WebhookSender, *, rounds: int = 1000) -> int:
    """Run rounds until one does nothing (or ``rounds``); how many were delivered. For the
    CLI's ``svcflow webhooks send`` and for tests."""
    delivered = 0
    for _ in range(rounds):
        outcome = sender.run_once()
        delivered += outcome.delivered
        if not outcome.busy:
            break
    return delivered
