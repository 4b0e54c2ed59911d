"""Following the event feed: Redis wake-ups after commit, and long-polling readers.

A commit that added events publishes the new head on :data:`CHANNEL`
(:class:`RedisFeedNotifier`, installed on every runtime session). A reader waiting for events
past its cursor (:func:`read_waiting`) holds no database connection while it waits: it reads
a page in a short read-only session, and when the page is empty it blocks on the Redis
subscription (or, with Redis unreachable, on a plain timeout) for at most
:data:`POLL_SECONDS` before reading again, until the reader's ``wait`` runs out. Redis is only
the doorbell; the database decides what is there, so a lost message costs at most one poll.

The wait is measured on the monotonic clock: it is how long an HTTP request is held, real
time by nature, and unaffected by the virtual clocks that tests and the simulator inject.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from redis import Redis
from redis.client import PubSub
from redis.exceptions import RedisError
from sqlalchemy.orm import Session, sessionmaker

from engine.store.database import read_only_session
from engine.store.event_feed import FeedPage, read_after

log = logging.getLogger(__name__)

CHANNEL = "svcflow:feed"
POLL_SECONDS = 1.0  # how often a waiting reader looks again without a wake-up
MAX_WAIT_SECONDS = 30  # longest long-poll (documented in docs/events.md)


class RedisFeedNotifier:
    """The FeedNotifier runtime sessions use: PUBLISH the head after each commit."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def notify(self, position: int) -> None:
        self.redis.publish(CHANNEL, str(position))


class FeedWaiter:
    """Blocks until told to look again: a Redis message, or ``poll_seconds`` passing."""

    def __init__(
        self,
        redis: Redis | None,
        *,
        poll_seconds: float = POLL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.poll_seconds = poll_seconds
        self.monotonic = monotonic

    def wait_for(self, has_news: Callable[[], bool], seconds: float) -> bool:
        """Call ``has_news`` until it answers True or ``seconds`` have passed; its answer.

        Subscribes before the first look, so a commit between the look and the wait still
        rings the bell."""
        deadline = self.monotonic() + max(0.0, seconds)
        pubsub = self._subscribe()
        idle = threading.Event()  # never set: a timeout to block on without Redis
        try:
            while True:
                if has_news():
                    return True
                remaining = deadline - self.monotonic()
                if remaining <= 0:
                    return False
                step = min(remaining, self.poll_seconds)
                if pubsub is None:
                    idle.wait(step)
                    continue
                try:
                    pubsub.get_message(timeout=step)
                except RedisError:
                    pubsub = self._close(pubsub)
        finally:
            self._close(pubsub)

    def _subscribe(self) -> PubSub | None:
        if self.redis is None:
            return None
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(CHANNEL)
        except RedisError as exc:
            log.debug("feed wake-ups unavailable, polling (%s)", exc)
            return self._close(pubsub)
        return pubsub

    @staticmethod
    def _close(pubsub: PubSub | None) -> None:
        if pubsub is not None:
            with contextlib.suppress(RedisError):
                pubsub.close()


def read_page(
    sessions: sessionmaker[Session],
    after: int,
    *,
    limit: int,
    definition: str | None = None,
    types: Sequence[str] = (),
    case_id: int | None = None,
) -> FeedPage:
    """One page of the feed, read in a read-only session of its own (released at once)."""
    with read_only_session(sessions) as session:
        return read_after(
            session.connection(),
            after,
            limit=limit,
            definition=definition,
            types=types,
            case_id=case_id,
        )


def read_waiting(
    sessions: sessionmaker[Session],
    waiter: FeedWaiter,
    after: int,
    *,
    limit: int,
    wait_seconds: float,
    definition: str | None = None,
    types: Sequence[str] = (),
) -> FeedPage:
    """A page after ``after``; when there is none yet, waits up to ``wait_seconds`` for one.

    An empty page after the wait still advances the cursor past events that did not match
    the filters (:func:`engine.store.event_feed.read_after`)."""
    latest: list[FeedPage] = []  # the last page read

    def has_news() -> bool:
        latest[:] = [read_page(sessions, after, limit=limit, definition=definition, types=types)]
        return bool(latest[0].items)

    waiter.wait_for(has_news, wait_seconds)
    return latest[0]
