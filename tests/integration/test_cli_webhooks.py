"""``svcflow webhooks ...``: create (the secret once), list, pause, resume, delete, dead
letters and redelivery, and refusals with what to do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import update

from engine.cli import main
from engine.services import webhooks
from engine.store.database import create_db_engine, session_factory
from engine.store.models import WebhookDelivery
from tests.conftest import T0, WORKFLOWS


def svcflow(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        main, ["--database-url", url, "--actor", "cli:test", *args], env=env or {}
    )


@pytest.fixture
def initialised(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'svcflow.db'}"
    result = svcflow(url, "init", "--workflows", str(WORKFLOWS))
    assert result.exit_code == 0, result.output
    return url


def test_a_subscription_from_create_to_delete(initialised: str) -> None:
    made = svcflow(
        initialised,
        "webhooks", "create", "--url", "https://erp.example/hook",
        "--event", "sla_breached", "--event", "cancelled", "--owner", "token:erp",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert re.search(r"secret: whsec_\S{20,}", made.output)
    sub_id = re.search(r"webhook (\d+) created", made.output).group(1)  # type: ignore[union-attr]
    listed = svcflow(initialised, "webhooks", "list").output
    assert "cancelled,sla_breached" in listed and "token:erp" in listed
    assert "whsec_" not in listed
    assert "paused" in svcflow(initialised, "webhooks", "pause", sub_id).output
    assert "paused" in svcflow(initialised, "webhooks", "list").output
    assert "active" in svcflow(initialised, "webhooks", "resume", sub_id).output
    assert svcflow(initialised, "webhooks", "delete", sub_id).exit_code == 0
    gone = svcflow(initialised, "webhooks", "pause", sub_id)
    assert gone.exit_code == 1 and "No webhook subscription" in gone.output


def test_refusals_say_what_to_do(initialised: str) -> None:
    bad = svcflow(initialised, "webhooks", "create", "--url", "ftp://x/", "--event", "*")
    assert bad.exit_code == 1 and "http(s)" in bad.output
    outside = svcflow(
        initialised, "webhooks", "create", "--url", "http://10.0.0.8/", "--event", "*",
        env={"SVCFLOW_WEBHOOK_ALLOWED_HOSTS": "erp.example"},
    )  # fmt: skip
    assert outside.exit_code == 1
    assert "SVCFLOW_WEBHOOK_ALLOWED_HOSTS" in outside.output


def test_dead_letters_are_listed_and_redelivered(initialised: str) -> None:
    assert (
        svcflow(
            initialised, "webhooks", "create", "--url", "http://a.example/", "--event", "*"
        ).exit_code
        == 0
    )
    created = svcflow(
        initialised, "cases", "create", "repair_ticket", "--data",
        '{"customer": "Ruijin", "device_serial": "CT-1", "fault": "x", "priority": "normal"}',
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    engine = create_db_engine(initialised)
    with session_factory(engine)() as session, session.begin():
        webhooks.fan_out(session, now=T0)
        session.execute(update(WebhookDelivery).values(status="dead", last_error="HTTP 500: no"))
    engine.dispose()
    dead = svcflow(initialised, "webhooks", "deliveries", "--status", "dead").output
    assert "HTTP 500: no" in dead and "created" in dead
    assert "queued again" in svcflow(initialised, "webhooks", "redeliver", "1").output
    again = svcflow(initialised, "webhooks", "redeliver", "1")
    assert again.exit_code == 1 and "not dead-lettered" in again.output
