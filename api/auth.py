"""Bearer tokens and roles.

Every operation declares the roles that may call it with :func:`roles`; the decorator both
enforces them and writes them into the OpenAPI spec (a ``bearerAuth`` security requirement and
an ``x-roles`` list), so the spec and the behaviour cannot disagree. ``admin`` may call
everything.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, request
from flask_smorest import Blueprint

from api import state
from api.apidocs import operation_id
from api.problems import ProblemSchema, problem
from engine.core.machine import ADMIN_ROLE, Actor
from engine.services.tokens import Role, TokenIdentity, authenticate, record_use

F = TypeVar("F", bound=Callable[..., Any])
SECURITY = [{"bearerAuth": []}]

PROCESS_OWNER = Role.PROCESS_OWNER.value
INTEGRATOR = Role.INTEGRATOR.value
SUPERVISOR = Role.SUPERVISOR.value
ADMIN = Role.ADMIN.value
# Every role but the administrator's, who passes every check anyway: what anyone may read.
EVERY_ROLE = (PROCESS_OWNER, INTEGRATOR, SUPERVISOR)


def _identity(token: str) -> TokenIdentity | None:
    """The token's identity, remembered for ``state.TOKEN_CACHE_SECONDS`` in the app's bounded
    cache (unknown tokens too, so that guessing costs no query per request)."""
    app = state.current()
    key = hashlib.sha256(token.encode()).hexdigest()  # no bearer secret kept in memory
    with app.lock:
        # One read of the clock: a membership test and then a read (``in``, or the cache's
        # own ``get``) may see the entry expire in between, and the read raises KeyError:
        # a 500 every few million requests. None is a cached answer too (unknown token).
        try:
            return cast(TokenIdentity | None, app.tokens[key])
        except KeyError:
            pass
    with app.runtime.sessions() as session, session.begin():
        found = authenticate(session, token)
        if found is not None and not found.expired(g.now):
            # Once per cache period per process: last_used_at is that precise.
            record_use(session, found.id, now=g.now)
    with app.lock:
        app.tokens[key] = found
    return found


def current_actor() -> Actor:
    identity: TokenIdentity = g.identity
    return Actor(f"token:{identity.name}", frozenset({identity.role.value}))


def roles(blp: Blueprint, *allowed: str) -> Callable[[F], F]:
    """Require a bearer token with one of ``allowed`` roles (admin always passes)."""
    permitted = set(allowed) | {ADMIN_ROLE}

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return problem(
                    401,
                    "Unauthorized",
                    "Send an API token: Authorization: Bearer <token>.",
                    "unauthorized",
                    hint="Create one with `svcflow tokens create`.",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            identity = _identity(token.strip())
            if identity is None:
                return problem(
                    401,
                    "Unauthorized",
                    "The API token is unknown or revoked.",
                    "unauthorized",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            if identity.expired(g.now):
                assert identity.expires_at is not None
                return problem(
                    401,
                    "Unauthorized",
                    f"The API token expired at {identity.expires_at.isoformat()}.",
                    "token-expired",
                    hint="Ask an administrator for a new token (POST /api/v1/tokens).",
                    headers={
                        "WWW-Authenticate": 'Bearer error="invalid_token", '
                        'error_description="The token expired"'
                    },
                )
            if identity.role.value not in permitted:
                return problem(
                    403,
                    "Forbidden",
                    f"Role {identity.role.value!r} may not call this operation.",
                    "forbidden",
                    hint=f"Roles allowed: {', '.join(sorted(permitted))}.",
                )
            g.identity = identity
            return func(*args, **kwargs)

        wrapper = blp.alt_response(
            401,
            schema=ProblemSchema,
            description="No bearer token, or an unknown, revoked or expired one "
            "(code unauthorized or token-expired)",
        )(wrapper)
        wrapper = blp.alt_response(
            403,
            schema=ProblemSchema,
            description=f"The token's role may not call this operation (allowed: "
            f"{', '.join(sorted(permitted))}), or may not fire this transition",
        )(wrapper)
        return blp.doc(  # type: ignore[no-any-return]
            security=SECURITY,
            operationId=operation_id(blp.name, func.__qualname__),
            **{"x-roles": sorted(permitted)},
        )(wrapper)

    return decorate
