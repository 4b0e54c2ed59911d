"""``svcflow tokens ...``: API tokens for integrators, process owners and supervisors."""

from __future__ import annotations

import click

from engine.cli.app import connect, instant_option, main, transaction
from engine.cli.output import table, ts
from engine.services.tokens import Role, create_token, list_tokens, revoke_token, token_status


@main.group()
def tokens() -> None:
    """API tokens (stored hashed; shown once when created)."""


@tokens.command("create")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--name", required=True, help="Who uses it, e.g. hotline or erp.")
@click.option(
    "--expires-at",
    help="When it stops working, ISO 8601 with offset (e.g. 2027-06-30T00:00:00+08:00); "
    "default: when revoked.",
)
@click.pass_context
def tokens_create(ctx: click.Context, role: str, name: str, expires_at: str | None) -> None:
    """Create a token and print it (it cannot be shown again)."""
    expiry = instant_option(expires_at, "--expires-at") if expires_at else None
    connect(ctx)
    with transaction(ctx) as session:
        token = create_token(
            session,
            name=name,
            role=role,
            actor=ctx.obj["actor"].name,
            now=ctx.obj["clock"].now(),
            expires_at=expiry,
        )
    click.echo(token)


@tokens.command("list")
@click.pass_context
def tokens_list(ctx: click.Context) -> None:
    """List tokens: role, status, expiry, last use (the tokens themselves are not stored)."""
    connect(ctx)
    zone = ctx.obj["zone"]
    now = ctx.obj["clock"].now()
    with transaction(ctx) as session:
        rows = [
            [
                t.name,
                t.role,
                token_status(t, now),
                ts(t.created_at, zone),
                t.created_by,
                ts(t.expires_at, zone),
                ts(t.last_used_at, zone),
                ts(t.revoked_at, zone),
            ]
            for t in list_tokens(session)
        ]
    table(["name", "role", "status", "created", "by", "expires", "last used", "revoked"], rows)


@tokens.command("revoke")
@click.argument("name")
@click.pass_context
def tokens_revoke(ctx: click.Context, name: str) -> None:
    """Revoke token NAME (effective within seconds)."""
    connect(ctx)
    with transaction(ctx) as session:
        revoke_token(session, name, now=ctx.obj["clock"].now())
    click.echo(f"token {name} revoked")
