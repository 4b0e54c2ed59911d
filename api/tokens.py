"""API tokens, managed by administrators over HTTP: create (the token is shown once), list
with expiry and last use, revoke. The same as ``svcflow tokens`` on the server."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from api import db
from api.auth import current_actor, roles
from api.problems import ProblemSchema
from engine.services import tokens
from engine.store.models import ApiToken

blp = Blueprint("tokens", __name__, url_prefix="/api/v1/tokens", description="API tokens (admin)")
ROLES = [r.value for r in tokens.Role]
STATUSES = ["active", "expired", "revoked"]


class CreateTokenSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, 120),
        metadata={"description": "Who uses it", "example": "hotline"},
    )
    role = ma.fields.String(
        required=True, validate=ma.validate.OneOf(ROLES), metadata={"example": "integrator"}
    )
    expires_at = ma.fields.AwareDateTime(
        default_timezone=None,
        metadata={
            "description": "When it stops working (RFC 3339 with offset); omitted: when revoked",
            "example": "2027-06-30T00:00:00+08:00",
        },
    )


class TokenSchema(ma.Schema):
    name = ma.fields.String(metadata={"example": "hotline"})
    role = ma.fields.String(validate=ma.validate.OneOf(ROLES))
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))
    created_at = ma.fields.DateTime()
    created_by = ma.fields.String()
    expires_at = ma.fields.DateTime(allow_none=True)
    last_used_at = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "Last request made with it, to within 10 seconds"},
    )
    revoked_at = ma.fields.DateTime(allow_none=True)


class CreatedTokenSchema(TokenSchema):
    token = ma.fields.String(
        metadata={
            "description": "The bearer token: shown only in this response, stored hashed",
            "example": "svcf_1uV3b0o3l4dY1mQ3cQk7m1oTq0X2s9Zt4c8vHkL2p0E",
        }
    )


def _view(row: ApiToken) -> dict[str, Any]:
    return {
        "name": row.name,
        "role": row.role,
        "status": tokens.token_status(row, g.now),
        "created_at": row.created_at,
        "created_by": row.created_by,
        "expires_at": row.expires_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }


@blp.route("")
class Tokens(MethodView):
    @roles(blp)
    @blp.response(200, TokenSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Every token, with its role, expiry, last use and whether it still works."""
        with db.transaction() as session:
            return [_view(row) for row in tokens.list_tokens(session)]

    @roles(blp)
    @blp.arguments(CreateTokenSchema)
    @blp.response(201, CreatedTokenSchema)
    @blp.alt_response(422, schema=ProblemSchema, description="Name taken, or expiry not ahead")
    def post(self, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Create a token; the response is the only time the token itself is shown."""
        with db.transaction() as session:
            secret = tokens.create_token(
                session,
                name=args["name"],
                role=args["role"],
                actor=current_actor().name,
                now=g.now,
                expires_at=args.get("expires_at"),
            )
            body = {**_view(tokens.get_token(session, args["name"])), "token": secret}
        return body, 201


@blp.route("/<name>")
class Token(MethodView):
    @roles(blp)
    @blp.response(200, TokenSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, name: str) -> dict[str, Any]:
        """One token (never the token itself)."""
        with db.transaction() as session:
            return _view(tokens.get_token(session, name))

    @roles(blp)
    @blp.response(200, TokenSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def delete(self, name: str) -> dict[str, Any]:
        """Revoke a token: it stops working within 10 seconds (the API's token cache)."""
        with db.transaction() as session:
            return _view(tokens.revoke_token(session, name, now=g.now))
