"""What one Flask app owns, kept in ``app.extensions`` (as flask-smorest keeps its own): its
runtime (database engine, Redis, clock), its bounded caches, and the log of its database's
outages. Nothing of it is a process global, so two apps on two databases in one process
answer each from its own."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from cachetools import TTLCache
from flask import Flask, current_app

from engine.core.local_time import display_zone
from engine.runtime.outages import OutageLog
from engine.runtime.resources import Runtime

EXTENSION = "svcflow"
TOKEN_CACHE_SECONDS = 10.0  # a revoked token stops working within this time
TOKEN_CACHE_SIZE = 4096  # distinct tokens remembered (SVCFLOW_TOKEN_CACHE_SIZE); bounded
SCRAPE_CACHE_SECONDS = 30.0  # the stuck-case gauges are a few COUNT queries per scrape
DELIVERY_CACHE_SECONDS = 5.0  # the delivery gauges feed alerts: kept fresher


@dataclass
class AppState:
    runtime: Runtime
    # token -> identity (None for an unknown token, so a flood of bad tokens is bounded too)
    tokens: TTLCache[str, Any] = field(
        default_factory=lambda: TTLCache(maxsize=TOKEN_CACHE_SIZE, ttl=TOKEN_CACHE_SECONDS)
    )
    scrapes: TTLCache[str, Any] = field(
        default_factory=lambda: TTLCache(maxsize=8, ttl=SCRAPE_CACHE_SECONDS)
    )
    deliveries: TTLCache[str, Any] = field(
        default_factory=lambda: TTLCache(maxsize=1, ttl=DELIVERY_CACHE_SECONDS)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Whether the database is out, since when; logs once per outage (api/outages.py feeds it).
    database_outages: OutageLog = field(default_factory=lambda: OutageLog("database"))
    # The zone people read times in (SVCFLOW_TIMEZONE; engine/core/local_time.py).
    zone: ZoneInfo = field(default_factory=lambda: display_zone(None))


def install(app: Flask, runtime: Runtime) -> AppState:
    size = int(app.config.get("TOKEN_CACHE_SIZE", TOKEN_CACHE_SIZE))
    state = AppState(
        runtime,
        tokens=TTLCache(maxsize=size, ttl=TOKEN_CACHE_SECONDS),
        zone=display_zone(str(app.config.get("TIMEZONE") or "")),
    )
    app.extensions[EXTENSION] = state
    return state


def of(app: Flask) -> AppState:
    found: AppState = app.extensions[EXTENSION]
    return found


def current() -> AppState:
    """The state of the app handling this request."""
    return of(current_app)


def runtime() -> Runtime:
    return current().runtime
