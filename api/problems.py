"""Errors as RFC 9457 problem details (``application/problem+json``), mapped in one place.

Every response for a failed request has ``type``, ``title``, ``status`` and ``detail``, plus
what the client needs to fix it: the engine error's ``code`` and ``hint``, and structured
fields (the definition element path, the offending field, the triggers allowed now, the
case's current state and version).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import marshmallow as ma
from apispec import BasePlugin
from flask import Response, json
from werkzeug.exceptions import HTTPException

from engine.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    SvcflowError,
    Unavailable,
    UnknownTrigger,
    VersionMismatch,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
# Sent as Retry-After with every 503 (an Unavailable error: the database or Redis is out), so
# that clients back off instead of hammering a recovering server. A database restart takes
# seconds; a client that comes back too early is only told to wait again.
RETRY_AFTER_SECONDS = 5

# The kinds of engine error, each with its status; an entry for a single error only where it
# must differ from its kind. A class is mapped by the nearest entry up its MRO, and
# tests/api/test_error_tree.py checks that every error has one: there is no default.
STATUS: dict[type[SvcflowError], int] = {
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    # A conflict the client stated as a precondition (If-Match): RFC 9110 says 412.
    VersionMismatch: 412,
    # A trigger the definition does not have: the request is wrong whatever the case's state.
    UnknownTrigger: 422,
    Invalid: 422,
    Unavailable: 503,
}


def status_of(error: type[SvcflowError]) -> int | None:
    """The HTTP status of an engine error class, or None if the table has no entry for it."""
    return next((STATUS[cls] for cls in error.__mro__ if cls in STATUS), None)


class ProblemSchema(ma.Schema):
    """Documents the problem+json body (RFC 9457) in the OpenAPI spec."""

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(metadata={"description": "A URN naming the kind of problem"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    code = ma.fields.String(metadata={"description": "Stable svcflow error code"})
    hint = ma.fields.String(metadata={"description": "What to do about it"})
    errors = ma.fields.Raw(metadata={"description": "Field-level errors, by location and field"})
    problems = ma.fields.List(ma.fields.Dict(), metadata={"description": "Definition problems"})
    allowed = ma.fields.List(ma.fields.String(), metadata={"description": "Triggers allowed now"})
    reasons = ma.fields.List(
        ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String()),
        metadata={
            "description": "Why a guard refused, in the definition's own words: {en, zh} each "
            "(guard-rejected, where the definition gives a guard_message)"
        },
    )
    guards = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "The guard expressions tried (guard-rejected), as detail"},
    )


class ProblemPlugin(BasePlugin):
    """Documents problem bodies under ``application/problem+json``, the media type they are
    sent with (flask-smorest would list them as ``application/json``), and the 503 that any
    operation answers while the database is out. Runs after the marshmallow plugin, so the
    schema is already a reference."""

    REF: ClassVar[dict[str, str]] = {"$ref": "#/components/schemas/Problem"}
    UNAVAILABLE: ClassVar[dict[str, Any]] = {
        "description": "The database (or another dependency) is out: retry later",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "schema": {"type": "integer"},
            }
        },
        "content": {PROBLEM_JSON: {"schema": REF}},
    }

    def _retype(self, response: Any) -> None:
        content = response.get("content") if isinstance(response, dict) else None
        if content and content.get("application/json", {}).get("schema") == self.REF:
            content[PROBLEM_JSON] = content.pop("application/json")

    def response_helper(self, response: dict[str, Any], **_: Any) -> None:
        self._retype(response)

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **_: Any
    ) -> None:
        for operation in (operations or {}).values():
            for response in operation.get("responses", {}).values():
                self._retype(response)
            if path == "/healthz":
                continue  # liveness reads no database: it answers while the process does
            responses = operation.setdefault("responses", {})
            if not {503, "503"} & responses.keys():  # keep an operation's own (/readyz)
                responses["503"] = self.UNAVAILABLE


def problem(status: int, title: str, detail: str, code: str, **extra: Any) -> Response:
    body = {
        "type": f"urn:svcflow:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **{k: v for k, v in extra.items() if v is not None},
    }
    headers = extra.pop("headers", None) if "headers" in extra else None
    body.pop("headers", None)
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def from_engine(error: SvcflowError) -> Response:
    status = status_of(type(error))
    if status is None:  # a bug: tests/api/test_error_tree.py should have caught it
        log.error("no HTTP status for %s", type(error).__qualname__, exc_info=error)
        return internal_error()
    fields = error.to_dict()
    fields.pop("message", None)
    code = fields.pop("code")
    title = code.replace("-", " ").capitalize()
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if isinstance(error, Unavailable) else None
    return problem(status, title, error.message, code, headers=headers, **fields)


def internal_error() -> Response:
    return problem(
        500,
        "Internal Server Error",
        "An unexpected error happened; it has been logged.",
        "internal-error",
    )


def from_http(error: HTTPException) -> Response:
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    status = error.code or 500
    detail = data.get("message") or error.description or error.name
    if status == 422 and errors:
        detail = "The request does not match the schema: see errors for each field."
    if status == 400 and errors and "Invalid JSON body." in str(errors):
        detail = "The request body is not valid JSON."
    if status == 413:
        detail = "The request body is larger than the 1 MiB limit."
    if status == 500:
        detail = "An unexpected error happened; it has been logged."
    headers = dict(data.get("headers") or {})
    valid = getattr(error, "valid_methods", None)
    if status == 405 and valid:  # RFC 9110: a 405 lists the methods the resource has
        headers["Allow"] = ", ".join(sorted(valid))
        detail = f"{detail} Methods allowed here: {headers['Allow']}."
    return problem(
        status,
        error.name,
        str(detail),
        _http_code(status),
        errors=errors,
        headers=headers or None,
    )


def _http_code(status: int) -> str:
    return {
        400: "bad-request",
        401: "unauthorized",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        409: "conflict",
        412: "precondition-failed",
        413: "body-too-large",
        415: "unsupported-media-type",
        422: "request-invalid",
        428: "precondition-required",
        500: "internal-error",
    }.get(status, f"http-{status}")
