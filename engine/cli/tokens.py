"""``svcflow tokens ...``: API tokens for integrators, process owners and supervisors."""

from __future__ import annotations

import click

from engine.cli.app import connect, main, transaction
from engine.cli.output import table, ts
from engine.services.tokens import Role, create_token, list_tokens, revoke_token


@main.group()
def tokens() -> None:
    """API tokens (stored hashed; shown once when created)."""


@tokens.command("create")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--name", required=True, help="Who uses it, e.g. hotline or erp.")
@click.pass_context
def tokens_create(ctx: click.Context, role: str, name: str) -> None:
    """Create a token and print it (it cannot be shown again)."""
    connect(ctx)
    with transaction(ctx) as session:
        token = create_token(
            session, name=name, role=role, actor=ctx.obj["actor"].name, now=ctx.obj["clock"].now()
        )
    click.echo(token)


@tokens.command("list")
@click.pass_context
def tokens_list(ctx: click.Context) -> None:
    """List tokens (names and roles; the tokens themselves are not stored)."""
    connect(ctx)
    zone = ctx.obj["zone"]
    with transaction(ctx) as session:
        rows = [
            [t.name, t.role, ts(t.created_at, zone), t.created_by, ts(t.revoked_at, zone)]
            for t in list_tokens(session)
        ]
    table(["name", "role", "created", "by", "revoked"], rows)


@tokens.command("revoke")
@click.argument("name")
@click.pass_context
def tokens_revoke(ctx: click.Context, name: str) -> None:
    """Revoke token NAME (effective within seconds)."""
    connect(ctx)
    with transaction(ctx) as session:
        revoke_token(session, name, now=ctx.obj["clock"].now())
    click.echo(f"token {name} revoked")
