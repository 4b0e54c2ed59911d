"""Webhook subscriptions over HTTP: the secret once, ownership, pause and resume, delete,
refused URLs, dead letters and redelivery (docs/events.md)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import update

from api import state
from engine.services import webhooks
from engine.store.models import WebhookDelivery
from tests.api.conftest import assert_problem, sqlite_only

HOOKS = "/api/v1/webhooks"
URL = "https://erp.hospital.example/svcflow"


def _subscribe(caller: Any, **body: Any) -> dict[str, Any]:
    response = caller.post(HOOKS, json={"url": URL, "events": ["*"], **body})
    assert response.status_code == 201, response.get_json()
    made: dict[str, Any] = response.get_json()
    return made


def test_the_secret_is_shown_once_and_the_owner_manages_its_own(
    integrator: Any, admin: Any
) -> None:
    made = _subscribe(
        integrator, events=["sla_breached", "sla_warning"], definition="repair_ticket"
    )
    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["sla_breached", "sla_warning"]
    assert made["status"] == "active"
    listed = integrator.get(HOOKS).get_json()
    assert [h["id"] for h in listed] == [made["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in integrator.get(f"{HOOKS}/{made['id']}").get_json()

    assert [h["id"] for h in admin.get(HOOKS).get_json()] == [made["id"]]

    paused = integrator.post(f"{HOOKS}/{made['id']}/pause").get_json()
    assert paused["status"] == "paused"
    assert integrator.post(f"{HOOKS}/{made['id']}/resume").get_json()["status"] == "active"
    assert integrator.open("DELETE", f"{HOOKS}/{made['id']}").status_code == 204
    assert_problem(integrator.get(f"{HOOKS}/{made['id']}"), 404, "webhook-not-found")


def test_another_integrator_cannot_see_or_touch_a_subscription(
    integrator: Any, client: Any, tokens: Any
) -> None:
    made = _subscribe(integrator)
    _, other = tokens.create("integrator")
    headers = {"Authorization": f"Bearer {other}"}
    assert client.get(HOOKS, headers=headers).get_json() == []
    assert_problem(client.get(f"{HOOKS}/{made['id']}", headers=headers), 404)
    assert_problem(client.delete(f"{HOOKS}/{made['id']}", headers=headers), 404)
    assert_problem(client.post(f"{HOOKS}/{made['id']}/pause", headers=headers), 404)


@sqlite_only
def test_roles_other_than_integrator_and_admin_are_refused(as_role: Any, client: Any) -> None:
    assert_problem(client.get(HOOKS), 401)
    assert_problem(as_role("supervisor").post(HOOKS, json={"url": URL, "events": ["*"]}), 403)


@sqlite_only
def test_bad_subscriptions_are_refused_with_what_is_wrong(integrator: Any, app: Flask) -> None:
    body = assert_problem(
        integrator.post(HOOKS, json={"url": "file:///etc/passwd", "events": ["*"]}), 422
    )
    assert "http(s)" in body["detail"]
    assert_problem(integrator.post(HOOKS, json={"url": URL, "events": ["exploded"]}), 422)
    assert_problem(integrator.post(HOOKS, json={"url": URL, "events": []}), 422)
    assert_problem(integrator.post(HOOKS, json={"url": URL}), 422)
    unknown = assert_problem(
        integrator.post(HOOKS, json={"url": URL, "events": ["*"], "definition": "repair"}), 422
    )
    assert "'repair'" in unknown["detail"]
    app.config["WEBHOOK_ALLOWED_HOSTS"] = "*.hospital.example, erp.example"
    refused = assert_problem(
        integrator.post(HOOKS, json={"url": "http://169.254.169.254/", "events": ["*"]}),
        422,
        "webhook-invalid",
    )
    assert "allow-list" in refused["detail"]
    assert _subscribe(integrator)["url"] == URL


def test_dead_letters_are_listed_and_redelivered(
    app: Flask, integrator: Any, new_case: Any
) -> None:
    made = _subscribe(integrator)
    new_case()
    runtime = state.of(app).runtime
    with runtime.sessions() as session, session.begin():
        assert webhooks.fan_out(session, now=runtime.clock.now()) == 1
        session.execute(update(WebhookDelivery).values(status="dead", last_error="HTTP 500: x"))
    dead = integrator.get(f"{HOOKS}/deliveries?status=dead").get_json()
    assert [(d["subscription_id"], d["event_type"]) for d in dead] == [(made["id"], "created")]
    again = integrator.post(f"{HOOKS}/deliveries/{dead[0]['id']}/redeliver")
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["status"] == "pending"
    assert_problem(
        integrator.post(f"{HOOKS}/deliveries/{dead[0]['id']}/redeliver"), 409, "delivery-not-dead"
    )
    assert_problem(integrator.post(f"{HOOKS}/deliveries/999999/redeliver"), 404)
