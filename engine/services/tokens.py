"""API tokens: created by an administrator on the command line, shown once, stored hashed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import TokenError
from engine.store.models import ApiToken

TOKEN_PREFIX = "svcf_"


class Role(str, Enum):
    PROCESS_OWNER = "process_owner"
    INTEGRATOR = "integrator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True)
class TokenIdentity:
    id: int
    name: str
    role: Role


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, *, name: str, role: str, actor: str, now: datetime) -> str:
    """Create a token and return it; only its hash is kept, so this is the only time it is
    seen."""
    try:
        parsed = Role(role)
    except ValueError:
        raise TokenError(
            f"Unknown role {role!r}.",
            hint="Roles: " + ", ".join(r.value for r in Role) + ".",
        ) from None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with session.begin_nested():
            session.add(
                ApiToken(
                    name=name,
                    role=parsed.value,
                    token_hash=_hash(token),
                    created_at=now,
                    created_by=actor,
                )
            )
    except IntegrityError:
        raise TokenError(f"A token named {name!r} exists.", hint="Pick another name.") from None
    return token


def authenticate(session: Session, token: str) -> TokenIdentity | None:
    row = session.execute(
        select(ApiToken.id, ApiToken.name, ApiToken.role).where(
            ApiToken.token_hash == _hash(token), ApiToken.revoked_at.is_(None)
        )
    ).one_or_none()
    return TokenIdentity(row.id, row.name, Role(row.role)) if row else None


def revoke_token(session: Session, name: str, *, now: datetime) -> None:
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()
    if row is None:
        raise TokenError(f"No token named {name!r}.")
    row.revoked_at = now
    session.flush()


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.execute(select(ApiToken).order_by(ApiToken.name)).scalars())
