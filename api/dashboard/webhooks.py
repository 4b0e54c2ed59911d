"""The dashboard's Webhooks page: deliveries by status, the dead letters with their last
error, and (for administrators) a redeliver button per dead letter (docs/events.md)."""

from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from api import db
from api.dashboard import access, bp, queries
from engine.errors import SvcflowError
from engine.services import webhooks
from engine.store.models import DeliveryStatus

DEAD_LETTERS_SHOWN = 200


@bp.get("/webhooks")
def webhooks_page() -> str:
    with queries.reading() as session:
        counts = webhooks.count_by_status(session)
        dead = webhooks.list_deliveries(
            session, actor=None, status=DeliveryStatus.DEAD, limit=DEAD_LETTERS_SHOWN
        )
        urls = {s.id: s.url for s in webhooks.list_subscriptions(session, actor=None)}
        return render_template(
            "dashboard/webhooks.html",
            counts={s.value: counts.get(s.value, 0) for s in DeliveryStatus},
            dead=dead,
            urls=urls,
            limit=DEAD_LETTERS_SHOWN,
        )


@bp.post("/webhooks/deliveries/<int:delivery_id>/redeliver")
def redeliver(delivery_id: int) -> Response:
    if not access.current_user().is_admin:  # supervisors see the dead letters, read-only
        abort(403, access.t("admin_only"))
    back = access.safe_next(request.form.get("next"), url_for("dashboard.webhooks_page"))
    try:
        with db.transaction() as session:
            webhooks.redeliver(session, delivery_id, actor=None, now=g.now)
    except SvcflowError as exc:
        message = access.error_text(exc)  # on a Chinese page, what its code means first
        access.say(access.t("redeliver_failed", id=delivery_id, message=message), "error")
        return redirect(back)
    access.say(access.t("redeliver_done", id=delivery_id), "success")
    return redirect(back)
