"""What a running process uses: the database engine, sessions that hand armed timers to RQ
and ring the event feed's doorbell after commit, the Redis connection, the queue, and the
clock. Built from ``SVCFLOW_*`` environment variables unless given explicitly.

A :class:`Runtime` is a plain value that its owner keeps: the web app in ``app.extensions``,
an RQ worker process in :mod:`workers.jobs`, a CLI command for its own duration. Nothing
here is a process global, so two apps on two databases can live in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from redis import Redis
from rq import Queue
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.clock import Clock, SystemClock
from engine.runtime.delivery import RqDelivery
from engine.runtime.feed import FeedWaiter, RedisFeedNotifier
from engine.services.scheduling import DELIVERY_KEY
from engine.store.database import create_db_engine, session_factory
from engine.store.event_feed import NOTIFIER_KEY

QUEUE_NAME = "svcflow"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("SVCFLOW_REDIS_URL") or DEFAULT_REDIS_URL


@dataclass
class Runtime:
    database_url: str | None = None
    redis_url: str | None = None
    clock: Clock = field(default_factory=SystemClock)

    @cached_property
    def engine(self) -> Engine:
        return create_db_engine(self.database_url)

    @cached_property
    def redis(self) -> Redis:
        return Redis.from_url(redis_url(self.redis_url))

    @cached_property
    def queue(self) -> Queue:
        return Queue(QUEUE_NAME, connection=self.redis)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        factory = session_factory(self.engine)
        factory.configure(
            info={
                DELIVERY_KEY: RqDelivery(self.queue, self._now),
                NOTIFIER_KEY: RedisFeedNotifier(self.redis),
            }
        )
        return factory

    @cached_property
    def feed_waiter(self) -> FeedWaiter:
        """How this process's feed readers wait for new events (Redis wake-ups, polling)."""
        return FeedWaiter(self.redis)

    def _now(self) -> datetime:
        # Read through the runtime, not bound once: tests and benchmarks swap ``clock``.
        return self.clock.now()

    def close(self) -> None:
        """Release the pooled connections this runtime opened (nothing if none were)."""
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()
