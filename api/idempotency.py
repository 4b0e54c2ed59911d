"""``Idempotency-Key`` on every POST.

Integrators retry on every network hiccup. A POST carrying an ``Idempotency-Key`` runs in one
transaction together with the record of its response; a retry with the same key and the same
request (method, path, query and body bytes) gets that stored response back, marked
``Idempotent-Replayed: true``, and changes nothing. The same key with a different request is
refused with 422. Keys are scoped to the API token, so clients cannot collide.

Only successful responses are stored: a request that failed changed nothing, so retrying it
runs it again.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, g, json, request
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from api import db
from api.problems import problem
from engine.store.models import IdempotencyRecord

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "Idempotency-Key"
# Leaves room in the engine's 200-character key column for the token qualifier (see below).
MAX_KEY_LENGTH = 160
KEPT_HEADERS = ("ETag", "Location", "Content-Type")
records = IdempotencyRecord.__table__

IDEMPOTENCY_KEY = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
    "description": "Retry-safe key: a retry with the same key and body returns the first "
    "response; the same key with another body is refused (422).",
}


class _Discard(Exception):
    """Carries an error response out of the transaction, so nothing of it is committed."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1")):
        digest.update(part.encode("utf-8") + b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(stored: dict[str, Any]) -> Response:
    response = Response(
        json.dumps(stored["body"], ensure_ascii=False),
        status=stored["status"],
        mimetype="application/json",
    )
    for key, value in stored.get("headers", {}).items():
        response.headers[key] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def idempotent(func: F) -> F:
    """Wrap a POST view (outermost decorator, so it sees the final response)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return func(*args, **kwargs)
        if not key.strip() or len(key) > MAX_KEY_LENGTH or "\x00" in key:  # NUL: PostgreSQL
            return problem(
                400,
                "Bad Request",
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters, without NUL.",
                "bad-idempotency-key",
            )
        scope = f"http:{g.identity.id}"
        fingerprint = _fingerprint()
        session = db.session()
        try:
            with session.begin():
                row = session.execute(
                    select(records.c.fingerprint, records.c.response).where(
                        records.c.scope == scope, records.c.key == key
                    )
                ).one_or_none()
                if row is not None:
                    if row.fingerprint != fingerprint:
                        return problem(
                            422,
                            "Idempotency key reused",
                            f"{HEADER} {key!r} was first used with a different request.",
                            "idempotency-key-reused",
                            hint="Use a new key for a new request; reuse a key only to retry.",
                        )
                    return _replay(row.response)
                # The engine keeps its own record of the key (and writes it on the event), in key
                # spaces per case or definition, not per token: qualified by the token, two
                # clients' keys never meet there either.
                g.idempotency_key = f"{g.identity.id}:{key}"
                response = func(*args, **kwargs)
                if isinstance(response, Response) and response.status_code < 400:
                    stored = {
                        "status": response.status_code,
                        "body": response.get_json(silent=True),
                        "headers": {
                            h: response.headers[h] for h in KEPT_HEADERS if h in response.headers
                        },
                    }
                    session.execute(
                        insert(records).values(
                            scope=scope,
                            key=key,
                            fingerprint=fingerprint,
                            response=stored,
                            created_at=g.now,
                        )
                    )
                elif isinstance(response, Response):
                    raise _Discard(response)  # leave the transaction by rolling it back
                return response
        except _Discard as discarded:
            return discarded.response
        except IntegrityError:
            # The same key arrived twice at once and the other request won the insert.
            return problem(
                409,
                "Conflict",
                f"A request with {HEADER} {key!r} was being handled at the same time.",
                "idempotency-in-progress",
                hint="Retry with the same key: it will return the first response.",
            )

    return wrapper  # type: ignore[return-value]
