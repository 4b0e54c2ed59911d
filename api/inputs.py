"""What the API accepts before any view runs: text the databases can store, ids they can hold,
JSON bodies of a sane depth.

Without these checks such input reaches the database driver and fails there as a 500:
PostgreSQL text and jsonb cannot hold NUL characters, neither database can encode unpaired
surrogates (``"\\ud800"`` is valid JSON), a path id beyond the integer columns overflows the
driver, and JSON nested a thousand levels deep exhausts Python's recursion limit while being
parsed or serialised.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flask import Response, current_app, request

from api.problems import problem

MAX_DEPTH = 64
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
# Path ids stored in 32-bit columns; every other id is 64-bit.
INT32_ARGS = frozenset({"version"})
TOO_DEEP = f"The request body is nested more than {MAX_DEPTH} levels deep."
TOO_LONG_NUMBER = "The request body has a number of more than 4,300 digits."


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate
        return True
    return False


def _strings(values: Iterable[Any]) -> Iterable[str]:
    return (v for v in values if isinstance(v, str))


def _walk_body(document: Any) -> str | None:
    """Why the parsed body is unacceptable, or None. Iterative: the depth is what is checked."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return TOO_DEEP
        if isinstance(value, str) and _bad_text(value):
            return "The request body has text with a NUL character or an unpaired surrogate."
        if isinstance(value, dict):
            if any(_bad_text(k) for k in value):
                return "The request body has a key with a NUL character or an unpaired surrogate."
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return None


def _check_url() -> Response | None:
    args = request.view_args or {}
    for name, value in args.items():
        limit = INT32_MAX if name in INT32_ARGS else INT64_MAX
        if isinstance(value, int) and value > limit:
            return problem(
                404,
                "Not Found",
                f"No resource has {name} {value}: ids go up to {limit}.",
                "not-found",
            )
    texts = [*_strings(args.values()), *(t for kv in request.args.items(multi=True) for t in kv)]
    if any(_bad_text(t) for t in texts):
        return problem(
            400,
            "Bad Request",
            "The URL has a NUL character or an unpaired surrogate.",
            "text-not-allowed",
            hint="Send printable UTF-8 text.",
        )
    return None


def _check_body() -> Response | None:
    if not request.is_json:
        return None
    data = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413 from here
    if not data:
        return None
    try:
        reason = _walk_body(json.loads(data))
    except json.JSONDecodeError:
        return None  # not JSON: the view's argument parser answers with 400
    except ValueError:  # JSON, but an integer longer than Python converts (a 500 in the view)
        reason = TOO_LONG_NUMBER
    except RecursionError:
        reason = TOO_DEEP
    if reason is None:
        return None
    code = {TOO_DEEP: "body-too-deep", TOO_LONG_NUMBER: "number-too-long"}
    return problem(
        422,
        "Unprocessable Entity",
        reason,
        code.get(reason, "text-not-allowed"),
        hint="Send UTF-8 text without NUL characters, numbers as JSON numbers of a sane "
        "length, nested less deeply.",
    )


def _takes_json_body() -> bool:
    """Whether the view about to run reads a JSON body (declared with ``blp.arguments``)."""
    view = current_app.view_functions.get(request.endpoint or "")
    method = getattr(getattr(view, "view_class", None), request.method.lower(), None)
    documented = getattr(method, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    return any(p.get("in") == "json" for p in documented)


def _check_media_type() -> Response | None:
    """415 for a body sent as anything but JSON to an operation that reads JSON: otherwise
    the JSON parser sees no body and the client is told its fields are missing."""
    if request.is_json or not (request.content_length or request.mimetype):
        return None  # JSON, or no body at all (the schema says what is missing)
    if not _takes_json_body():
        return None
    sent = request.mimetype or "no Content-Type"
    return problem(
        415,
        "Unsupported Media Type",
        f"The body was sent as {sent}; this operation reads JSON.",
        "unsupported-media-type",
        hint="Send the body as JSON with the header Content-Type: application/json.",
    )


def check_request() -> Response | None:
    """A ``before_request`` hook: a problem response for input no view could store."""
    return _check_url() or _check_media_type() or _check_body()
