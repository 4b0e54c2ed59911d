"""The dashboard's Webhooks page: dead letters with their error, and a redeliver button that
only administrators may use."""

from __future__ import annotations

from sqlalchemy import select, update

from engine.services import webhooks
from engine.store.models import WebhookDelivery
from tests.api import test_dashboard
from tests.api.test_dashboard import Dash
from tests.conftest import T0
from tests.factories import create_ticket

PAGE = "/dashboard/webhooks"
# The dashboard tests' fixtures: SQLite with the workflows, a signed-in test client.
db_url = test_dashboard.db_url
kpi_config = test_dashboard.kpi_config
dash = test_dashboard.dash


def _dead_letter(dash: Dash) -> int:
    with dash.sessions() as session, session.begin():
        webhooks.create_subscription(
            session, url="https://erp.example/hook", events=["*"], definition=None,
            owner="token:erp", now=T0, allowed_hosts=None,
        )  # fmt: skip
    create_ticket(dash.sessions)
    with dash.sessions() as session, session.begin():
        webhooks.fan_out(session, now=T0)
        session.execute(
            update(WebhookDelivery).values(status="dead", attempts=14, last_error="HTTP 503: busy")
        )
        return int(session.execute(select(WebhookDelivery.id)).scalar_one())


def test_an_admin_sees_a_dead_letter_and_redelivers_it(dash: Dash) -> None:
    delivery_id = _dead_letter(dash)
    dash.login("admin", lang="en")
    page = dash.page(PAGE)
    assert "HTTP 503: busy" in page and "https://erp.example/hook" in page
    assert "dead letters: 1" in page
    done = dash.submit(PAGE, f"/dashboard/webhooks/deliveries/{delivery_id}/redeliver")
    assert done.status_code == 302
    assert "will be sent again" in dash.page(PAGE)
    with dash.sessions() as session:
        assert session.execute(select(WebhookDelivery.status)).scalar_one() == "pending"
    again = dash.submit(PAGE, f"/dashboard/webhooks/deliveries/{delivery_id}/redeliver")
    assert again.status_code == 302
    assert "not dead-lettered" in dash.page(PAGE)


def test_a_supervisor_sees_dead_letters_but_cannot_redeliver(dash: Dash) -> None:
    delivery_id = _dead_letter(dash)
    dash.login("supervisor", lang="zh")
    page = dash.page(PAGE)
    assert "HTTP 503: busy" in page and "重新推送" not in page
    # The receiver's answer is recorded text: a Chinese lead, the answer quoted as English.
    assert (
        '<td class="detail">最后一次推送失败，接收方或网络返回：'
        '<q class="recorded" lang="en" translate="no">HTTP 503: busy</q></td>'
    ) in page
    assert '<td data-event="created">创建</td>' in page
    refused = dash.submit(PAGE, f"/dashboard/webhooks/deliveries/{delivery_id}/redeliver")
    assert refused.status_code == 403
    with dash.sessions() as session:
        assert session.execute(select(WebhookDelivery.status)).scalar_one() == "dead"
