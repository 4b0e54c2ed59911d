"""A database outage as clients and operators see it: 503 for each request, one log line for
the operator.

When the database cannot serve anyone (``engine.store.database.is_outage``: the server is
down, restarting or out of connection slots; the SQLite file cannot be opened), a request that
needs it is answered ``503 database-unavailable`` (problem+json, or the dashboard's error page)
with ``Retry-After``, and the app's :class:`~engine.runtime.outages.OutageLog` logs the outage
once: when the first request fails, then at most once a minute while it lasts, then its
recovery with its length, when a statement reaches the database again. Any other database
error (a violated constraint, a bad statement, a deadlock) is a defect: a 500 whose traceback
is logged, like every unexpected error.

Healing needs no action here. The PostgreSQL pool pings a connection before handing it out
(``pool_pre_ping``), so connections the outage broke are replaced, not used; the server rolls
back a transaction whose connection broke, so a request cut short commits nothing; and a 2xx
is only sent after its transaction committed.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, has_app_context
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from api import problems, state
from engine.errors import DatabaseUnavailable
from engine.store import database

log = logging.getLogger(__name__)
DETAIL = "The database is unavailable, so this request could not be completed."
HINT = (
    "Retry after the number of seconds in Retry-After. Send each POST with an Idempotency-Key "
    "and retry with the same key: then a change the database committed just before it stopped "
    "is answered from its record, never applied twice."
)


def unavailable(error: DBAPIError) -> DatabaseUnavailable | None:
    """The error to answer ``error`` with if it says the database is out, recorded in the
    app's outage log; None if it is any other database error."""
    if not database.is_outage(error):
        return None
    app_state = state.current()
    app_state.database_outages.failed(
        database.driver_reason(error), app_state.runtime.clock.now(), g.get("outage_epoch")
    )
    return DatabaseUnavailable(DETAIL, hint=HINT)


def _database_error(error: DBAPIError) -> Response:
    refused = unavailable(error)
    if refused is None:
        log.exception("unhandled database error")
        return problems.internal_error()
    return problems.from_engine(refused)


def init_app(app: Flask) -> None:
    """Answer outages with 503 and watch the app's engine for the end of one."""
    app_state = state.of(app)
    outages, runtime = app_state.database_outages, app_state.runtime

    @app.before_request
    def _note_epoch() -> None:  # what this request saw first (see OutageLog)
        g.outage_epoch = outages.epoch

    # Building the engine connects to nothing. A statement that completed is the proof that
    # the database is back, and the only one: a request answered without the database (the
    # OpenAPI document, a refused token from the cache) proves nothing.
    @event.listens_for(runtime.engine, "after_cursor_execute")
    def _reached(*_: Any) -> None:
        if outages.since is None:
            return
        epoch = g.get("outage_epoch") if has_app_context() else None
        outages.succeeded(runtime.clock.now(), epoch)

    app.register_error_handler(DBAPIError, _database_error)
