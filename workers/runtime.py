"""Process-wide wiring for workers and the web app: database engine, sessions that hand armed
timers to RQ after commit, the Redis connection and the queue. Built once per process from
``SVCFLOW_*`` environment variables."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property

from redis import Redis
from rq import Queue
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import Clock, SystemClock
from engine.db.session import create_db_engine, session_factory
from engine.services.scheduling import DELIVERY_KEY
from workers import telemetry

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
        from workers.timers import RqDelivery  # noqa: PLC0415 - workers.timers imports this module

        factory = session_factory(self.engine)
        factory.configure(info={DELIVERY_KEY: RqDelivery(self.queue)})
        return factory


_current: Runtime | None = None
_lock = threading.Lock()


def current() -> Runtime:
    """The process's runtime, built from the environment on first use (in an RQ worker, the
    first job builds it: metrics and JSON logs are installed then)."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                telemetry.install()
                _current = Runtime()
    return _current


def install(runtime: Runtime) -> None:
    """Use ``runtime`` for this process (tests, the bench, an app factory with config)."""
    global _current
    _current = runtime
