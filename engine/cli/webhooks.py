"""``svcflow webhooks ...``: webhook subscriptions, their dead letters and redelivery
(docs/events.md). The CLI acts as an administrator: it sees every subscription."""

from __future__ import annotations

import click

from engine.cli.app import connect, main, transaction
from engine.cli.output import table, ts
from engine.runtime.webhook_sender import allowed_hosts
from engine.services import webhooks
from engine.store.models import DeliveryStatus, EventType, WebhookStatus

EVENT_CHOICES = [webhooks.ALL_EVENTS] + [t.value for t in EventType]


@main.group("webhooks")
def webhooks_group() -> None:
    """Webhook subscriptions: signed POSTs of case events to an integrator's URL."""


@webhooks_group.command("create")
@click.option("--url", required=True, help="http(s) URL; its host must be allowed.")
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    type=click.Choice(EVENT_CHOICES),
    help="An event type to send, or * for all; repeat for several.",
)
@click.option("--definition", help="Only events of cases of this definition.")
@click.option(
    "--owner",
    help="Who manages it over the API, as token:<name> (default: the CLI's actor).",
)
@click.pass_context
def webhooks_create(
    ctx: click.Context, url: str, events: tuple[str, ...], definition: str | None, owner: str | None
) -> None:
    """Subscribe URL to events and print the subscription's signing secret (shown once)."""
    connect(ctx)
    with transaction(ctx) as session:
        made, secret = webhooks.create_subscription(
            session,
            url=url,
            events=list(events),
            definition=definition,
            owner=owner or ctx.obj["actor"].name,
            now=ctx.obj["clock"].now(),
            allowed_hosts=allowed_hosts(),
        )
    click.echo(f"webhook {made.id} created for {made.url}")
    click.echo(f"secret: {secret}")
    click.echo("Keep the secret: the receiver verifies signatures with it; it is not shown again.")


@webhooks_group.command("list")
@click.pass_context
def webhooks_list(ctx: click.Context) -> None:
    """List subscriptions."""
    connect(ctx)
    zone = ctx.obj["zone"]
    with transaction(ctx) as session:
        rows = [
            [
                s.id,
                s.status,
                s.url,
                ",".join(s.events),
                s.definition or "",
                s.owner,
                s.cursor,
                ts(s.created_at, zone),
            ]
            for s in webhooks.list_subscriptions(session, actor=None)
        ]
    table(["id", "status", "url", "events", "definition", "owner", "cursor", "created"], rows)


def _set(ctx: click.Context, subscription_id: int, status: WebhookStatus) -> None:
    connect(ctx)
    with transaction(ctx) as session:
        webhooks.set_status(session, subscription_id, status, actor=None)
    click.echo(f"webhook {subscription_id} {status.value}")


@webhooks_group.command("pause")
@click.argument("subscription_id", type=int)
@click.pass_context
def webhooks_pause(ctx: click.Context, subscription_id: int) -> None:
    """Stop sending to SUBSCRIPTION_ID; what commits meanwhile is sent after resume."""
    _set(ctx, subscription_id, WebhookStatus.PAUSED)


@webhooks_group.command("resume")
@click.argument("subscription_id", type=int)
@click.pass_context
def webhooks_resume(ctx: click.Context, subscription_id: int) -> None:
    """Send to SUBSCRIPTION_ID again, starting with what committed while paused."""
    _set(ctx, subscription_id, WebhookStatus.ACTIVE)


@webhooks_group.command("delete")
@click.argument("subscription_id", type=int)
@click.pass_context
def webhooks_delete(ctx: click.Context, subscription_id: int) -> None:
    """Delete SUBSCRIPTION_ID and its deliveries."""
    connect(ctx)
    with transaction(ctx) as session:
        webhooks.delete_subscription(session, subscription_id, actor=None)
    click.echo(f"webhook {subscription_id} deleted")


@webhooks_group.command("deliveries")
@click.option("--status", type=click.Choice([s.value for s in DeliveryStatus]))
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.pass_context
def webhooks_deliveries(ctx: click.Context, status: str | None, limit: int) -> None:
    """Deliveries, latest change first (--status dead: the dead letters)."""
    connect(ctx)
    zone = ctx.obj["zone"]
    with transaction(ctx) as session:
        rows = [
            [
                d.id,
                d.subscription_id,
                d.case_id,
                d.event_type,
                d.status,
                d.attempts,
                ts(d.next_attempt_at, zone) if d.status == "pending" else "",
                (d.last_error or "")[:60],
            ]
            for d in webhooks.list_deliveries(
                session,
                actor=None,
                status=DeliveryStatus(status) if status else None,
                limit=limit,
            )
        ]
    table(["id", "webhook", "case", "event", "status", "attempts", "next", "last error"], rows)


@webhooks_group.command("redeliver")
@click.argument("delivery_id", type=int)
@click.pass_context
def webhooks_redeliver(ctx: click.Context, delivery_id: int) -> None:
    """Send dead-lettered DELIVERY_ID again (a fresh retry window)."""
    connect(ctx)
    with transaction(ctx) as session:
        webhooks.redeliver(session, delivery_id, actor=None, now=ctx.obj["clock"].now())
    click.echo(f"delivery {delivery_id} queued again")
