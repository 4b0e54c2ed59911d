"""Webhook subscriptions and their deliveries (docs/events.md).

An integrator manages its own subscriptions (the token that made one owns it); an admin sees
and manages all. The signing secret is in the answer to the POST that creates a subscription,
and never again (but for a retry of that POST with its Idempotency-Key, which replays it).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from api import db
from api.auth import INTEGRATOR, current_actor, roles
from api.idempotency import IDEMPOTENCY_KEY, idempotent
from api.inputs import INT64_MAX
from api.problems import ProblemSchema
from engine.runtime.webhook_sender import allowed_hosts
from engine.services import webhooks
from engine.store.models import DeliveryStatus, EventType, WebhookStatus

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks", description="Webhooks")
EVENT_CHOICES = [webhooks.ALL_EVENTS] + [t.value for t in EventType]


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class CreateWebhookSchema(StrictSchema):
    url = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, 2000),
        metadata={"description": "http(s) URL; its host must be in the allow-list"},
    )
    events = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(EVENT_CHOICES)),
        required=True,
        validate=ma.validate.Length(1, len(EVENT_CHOICES)),
        metadata={"description": 'Event types, or ["*"] for all'},
    )
    definition = ma.fields.String(
        validate=ma.validate.Length(1, 63),
        metadata={"description": "Only events of cases of this definition"},
    )


class WebhookSchema(ma.Schema):
    id = ma.fields.Integer()
    url = ma.fields.String()
    events = ma.fields.List(ma.fields.String())
    definition = ma.fields.String(allow_none=True)
    status = ma.fields.String(metadata={"enum": [s.value for s in WebhookStatus]})
    cursor = ma.fields.Integer(metadata={"description": "Feed position delivered up to"})
    owner = ma.fields.String()
    created_at = ma.fields.DateTime()


class CreatedWebhookSchema(WebhookSchema):
    secret = ma.fields.String(
        metadata={"description": "whsec_...: the signing key, shown this once; keep it"}
    )


class DeliverySchema(ma.Schema):
    id = ma.fields.Integer()
    subscription_id = ma.fields.Integer()
    position = ma.fields.Integer()
    case_id = ma.fields.Integer()
    event_type = ma.fields.String()
    status = ma.fields.String(metadata={"enum": [s.value for s in DeliveryStatus]})
    attempts = ma.fields.Integer()
    next_attempt_at = ma.fields.DateTime()
    last_error = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    delivered_at = ma.fields.DateTime(allow_none=True)


class DeliveryQuerySchema(StrictSchema):
    status = ma.fields.String(validate=ma.validate.OneOf([s.value for s in DeliveryStatus]))
    subscription = ma.fields.Integer(validate=ma.validate.Range(1, INT64_MAX))
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(1, 500))


def _hosts() -> list[str] | None:
    configured = current_app.config.get("WEBHOOK_ALLOWED_HOSTS")
    return allowed_hosts(str(configured) if configured is not None else None)


@blp.route("")
class Webhooks(MethodView):
    @roles(blp, INTEGRATOR)
    @blp.response(200, WebhookSchema(many=True))
    def get(self) -> Any:
        """Your subscriptions (an admin's: all of them)."""
        with db.transaction() as session:
            return [
                s.to_dict() for s in webhooks.list_subscriptions(session, actor=current_actor())
            ]

    @roles(blp, INTEGRATOR)
    @idempotent
    @blp.arguments(CreateWebhookSchema)
    @blp.response(201, CreatedWebhookSchema)
    @blp.alt_response(422, schema=ProblemSchema, description="URL, host or event type refused")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, args: dict[str, Any]) -> Any:
        """Subscribe a URL to events; the answer holds the signing secret, this once."""
        with db.transaction() as session:
            made, secret = webhooks.create_subscription(
                session,
                url=args["url"],
                events=args["events"],
                definition=args.get("definition"),
                owner=current_actor().name,
                now=g.now,
                allowed_hosts=_hosts(),
            )
        return {**made.to_dict(), "secret": secret}


@blp.route("/<int:subscription_id>")
class Webhook(MethodView):
    @roles(blp, INTEGRATOR)
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, schema=ProblemSchema)
    def get(self, subscription_id: int) -> Any:
        """One subscription."""
        with db.transaction() as session:
            return webhooks.get_subscription(session, subscription_id, actor=current_actor())

    @roles(blp, INTEGRATOR)
    @blp.response(204)
    @blp.alt_response(404, schema=ProblemSchema)
    def delete(self, subscription_id: int) -> None:
        """Delete a subscription and its deliveries."""
        with db.transaction() as session:
            webhooks.delete_subscription(session, subscription_id, actor=current_actor())


def _set_status(subscription_id: int, status: WebhookStatus) -> Any:
    with db.transaction() as session:
        return webhooks.set_status(session, subscription_id, status, actor=current_actor())


def _status_change(func: Any) -> Any:
    """Pause and resume: an integrator's POST, safe to retry, that answers with the
    subscription (404 when it is not theirs)."""
    func = blp.doc(parameters=[IDEMPOTENCY_KEY])(func)
    func = blp.alt_response(404, schema=ProblemSchema)(func)
    func = blp.response(200, WebhookSchema)(func)
    return roles(blp, INTEGRATOR)(idempotent(func))


@blp.route("/<int:subscription_id>/pause")
class Pause(MethodView):
    @_status_change
    def post(self, subscription_id: int) -> Any:
        """Stop sending; events that commit meanwhile are sent after resume."""
        return _set_status(subscription_id, WebhookStatus.PAUSED)


@blp.route("/<int:subscription_id>/resume")
class Resume(MethodView):
    @_status_change
    def post(self, subscription_id: int) -> Any:
        """Send again, starting with what committed while paused."""
        return _set_status(subscription_id, WebhookStatus.ACTIVE)


@blp.route("/deliveries")
class Deliveries(MethodView):
    @roles(blp, INTEGRATOR)
    @blp.arguments(DeliveryQuerySchema, location="query")
    @blp.response(200, DeliverySchema(many=True))
    def get(self, query: dict[str, Any]) -> Any:
        """Deliveries of your subscriptions, latest change first; `status=dead`: dead letters."""
        status = query.get("status")
        with db.transaction() as session:
            found = webhooks.list_deliveries(
                session,
                actor=current_actor(),
                status=DeliveryStatus(status) if status else None,
                subscription_id=query.get("subscription"),
                limit=query["limit"],
            )
            return [d.to_dict() for d in found]


@blp.route("/deliveries/<int:delivery_id>/redeliver")
class Redeliver(MethodView):
    @roles(blp, INTEGRATOR)
    @idempotent
    @blp.response(200, DeliverySchema)
    @blp.alt_response(404, schema=ProblemSchema)
    @blp.alt_response(409, schema=ProblemSchema, description="Not dead-lettered")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, delivery_id: int) -> Any:
        """Send a dead-lettered delivery again (a fresh 24-hour retry window)."""
        with db.transaction() as session:
            return webhooks.redeliver(session, delivery_id, actor=current_actor(), now=g.now)
