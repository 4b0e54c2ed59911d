"""API tokens: created by an administrator (``svcflow tokens`` or ``/api/v1/tokens``), shown
once, stored hashed; each may expire, and records when it was last used."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import TokenError, TokenNotFound
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
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    *,
    name: str,
    role: str,
    actor: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> str:
    """Create a token and return it; only its hash is kept, so this is the only time it is
    seen. ``expires_at``: when it stops working (None: when revoked)."""
    if expires_at is not None and expires_at <= now:
        raise TokenError(
            f"The expiry {expires_at.isoformat()} is not in the future.",
            hint="Give a later time, or none for a token that works until revoked.",
        )
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
                    expires_at=expires_at,
                )
            )
    except IntegrityError:
        raise TokenError(f"A token named {name!r} exists.", hint="Pick another name.") from None
    return token


def authenticate(session: Session, token: str) -> TokenIdentity | None:
    """The unrevoked token's identity (expired or not: the caller compares with its clock)."""
    row = session.execute(
        select(ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.expires_at).where(
            ApiToken.token_hash == _hash(token), ApiToken.revoked_at.is_(None)
        )
    ).one_or_none()
    return TokenIdentity(row.id, row.name, Role(row.role), row.expires_at) if row else None


def record_use(session: Session, token_id: int, *, now: datetime) -> None:
    """Note that the token was used (callers do so at most once per cache period)."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def revoke_token(session: Session, name: str, *, now: datetime) -> ApiToken:
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()
    if row is None:
        raise TokenNotFound(
            f"No token named {name!r}.",
            hint="`svcflow tokens list` or GET /api/v1/tokens lists them.",
            name=name,
        )
    if row.revoked_at is None:
        row.revoked_at = now
    session.flush()
    return row


def token_status(token: ApiToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and now >= token.expires_at:
        return "expired"
    return "active"


def get_token(session: Session, name: str) -> ApiToken:
    row = session.execute(select(ApiToken).where(ApiToken.name == name)).scalar_one_or_none()
    if row is None:
        raise TokenNotFound(f"No token named {name!r}.", name=name)
    return row


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.execute(select(ApiToken).order_by(ApiToken.name)).scalars())
