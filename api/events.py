"""The event feed: every committed case event in commit order, by cursor, long-polled or as
Server-Sent Events (docs/events.md).

Neither form holds a database connection while it waits: pages are read in short read-only
sessions and the wait is on Redis (engine/runtime/feed.py). Both wait at most
``MAX_WAIT_SECONDS`` per request; an SSE client reconnects by itself with ``Last-Event-ID``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import marshmallow as ma
from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from api import state
from api.auth import INTEGRATOR, SUPERVISOR, roles
from api.inputs import INT64_MAX
from api.problems import ProblemSchema, problem
from engine.runtime.feed import MAX_WAIT_SECONDS, read_page, read_waiting
from engine.runtime.resources import Runtime
from engine.store.models import EventType

blp = Blueprint("events", __name__, url_prefix="/api/v1/events", description="Event feed")
READERS = (INTEGRATOR, SUPERVISOR)
EVENT_TYPES = [t.value for t in EventType]
SSE_RETRY_MS = 1000  # how soon an EventSource reconnects when a stream ends
HEARTBEAT_SECONDS = 15.0  # an idle stream sends a comment line this often


class FeedQuerySchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    after = ma.fields.Integer(
        load_default=0,
        validate=ma.validate.Range(0, INT64_MAX),
        metadata={"description": "The cursor: events after this position (0: from the start)"},
    )
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(1, 1000))
    wait = ma.fields.Float(
        load_default=0,
        validate=ma.validate.Range(0, MAX_WAIT_SECONDS),
        metadata={"description": "Seconds to wait for an event when there is none yet"},
    )
    definition = ma.fields.String(validate=ma.validate.Length(1, 63))
    type = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(EVENT_TYPES)),
        load_default=list,
        metadata={"description": "Only these event types (repeat the parameter for several)"},
    )


class FeedEventSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "evt_<position>: stable, for deduplication"})
    position = ma.fields.Integer()
    case_id = ma.fields.Integer()
    seq = ma.fields.Integer(metadata={"description": "The event's place in its case's history"})
    definition = ma.fields.String()
    definition_version = ma.fields.Integer()
    business_key = ma.fields.String(allow_none=True)
    type = ma.fields.String(metadata={"enum": EVENT_TYPES})
    trigger = ma.fields.String(allow_none=True)
    from_state = ma.fields.String(allow_none=True)
    to_state = ma.fields.String()
    actor = ma.fields.String()
    at = ma.fields.String(metadata={"format": "date-time"})
    payload = ma.fields.Dict()
    changes = ma.fields.Dict()


class FeedPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(FeedEventSchema))
    next = ma.fields.Integer(metadata={"description": "Pass as `after` to read on"})


@blp.route("")
class Events(MethodView):
    @roles(blp, *READERS)
    @blp.arguments(FeedQuerySchema, location="query")
    @blp.response(200, FeedPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Events after a cursor, in commit order; with `wait`, waits for the first one.

        Returns at once when there are events; otherwise after at most `wait` seconds, with
        whatever arrived (possibly nothing). `next` is the cursor to read on from; it is a
        position, stable across restarts."""
        runtime = state.runtime()
        page = read_waiting(
            runtime.sessions,
            runtime.feed_waiter,
            query["after"],
            limit=query["limit"],
            wait_seconds=min(query["wait"], _max_wait()),
            definition=query.get("definition"),
            types=query["type"],
        )
        return {"items": [e.to_dict() for e in page.items], "next": page.next}


@blp.route("/stream")
class EventStream(MethodView):
    @roles(blp, *READERS)
    @blp.arguments(FeedQuerySchema, location="query")
    @blp.response(200, description="text/event-stream: one SSE event per case event")
    @blp.alt_response(400, schema=ProblemSchema, description="Last-Event-ID is not a position")
    def get(self, query: dict[str, Any]) -> Any:
        """The feed as Server-Sent Events: `id` is the position, `event` the type.

        The stream stays open for `wait` seconds (default and most: 30), sending events as
        they commit and a comment line as a heartbeat, then ends; EventSource reconnects with
        `Last-Event-ID`, which takes precedence over `after`."""
        after = query["after"]
        last_id = request.headers.get("Last-Event-ID")
        if last_id is not None:
            if not last_id.strip().isdigit() or int(last_id) > INT64_MAX:
                return problem(
                    400,
                    "Bad Request",
                    f"Last-Event-ID {last_id!r} is not a feed position.",
                    "bad-last-event-id",
                    hint="Send back the id of the last event received, as the stream gave it.",
                )
            after = int(last_id)
        seconds = min(query["wait"] or MAX_WAIT_SECONDS, _max_wait())
        # The generator gets the runtime itself, not the request context: it runs after the
        # view has returned, and may be closed unread.
        body = _stream(state.runtime(), after, query, seconds)
        return Response(
            body,
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


def _max_wait() -> float:
    """The longest a request may be held: ``SVCFLOW_FEED_MAX_WAIT`` seconds (at most 30), for
    a proxy in front that cuts idle requests sooner."""
    return min(float(current_app.config.get("FEED_MAX_WAIT", MAX_WAIT_SECONDS)), MAX_WAIT_SECONDS)


def _stream(runtime: Runtime, after: int, query: dict[str, Any], seconds: float) -> Iterator[str]:
    waiter = runtime.feed_waiter
    deadline = waiter.monotonic() + seconds
    yield f"retry: {SSE_RETRY_MS}\n\n"
    while True:
        page = read_page(
            runtime.sessions,
            after,
            limit=query["limit"],
            definition=query.get("definition"),
            types=query["type"],
        )
        for item in page.items:
            yield (
                f"id: {item.position}\nevent: {item.event_type}\n"
                f"data: {json.dumps(item.to_dict(), ensure_ascii=False)}\n\n"
            )
        after = page.next
        remaining = deadline - waiter.monotonic()
        if remaining <= 0:
            return
        if not page.items:
            yield ": waiting\n\n"  # a heartbeat: proxies keep an idle connection open
            moved = functools.partial(_head_moved, runtime, after)
            waiter.wait_for(moved, min(remaining, HEARTBEAT_SECONDS))


def _head_moved(runtime: Runtime, after: int) -> bool:
    """Whether any event committed after ``after`` (matching the filters or not)."""
    return read_page(runtime.sessions, after, limit=1).next > after
