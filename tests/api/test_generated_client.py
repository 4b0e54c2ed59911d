"""A Python client generated from the spec drives a repair journey: the spec stays fit for
client generators (docs/api.md, "Generating a client").

openapi-python-client runs offline on the spec the app serves, as an integrator would run it,
with no warning allowed: a warning means an operation or a response is missing from the
client. The client then talks to the app in-process (httpx's WSGI transport), on SQLite and
PostgreSQL, with an integrator's token.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from flask import Flask

from api import state
from api.app import create_app
from engine.runtime.clock import ManualClock
from tests.api.conftest import REPAIR, REPAIR_DATA, Tokens

PACKAGE = "svcflow_client"
# Documented in docs/api.md: the YAML source is text to a generated client.
CONFIG = f"""\
post_hooks: []
project_name_override: svcflow-client
package_name_override: {PACKAGE}
content_type_overrides:
  application/yaml: text/plain
"""
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def client_package(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[ModuleType]:
    """Generate the client once for the module from the spec an app serves."""
    work = tmp_path_factory.mktemp("generated")
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{sqlite_template}", "REDIS_URL": "redis://127.0.0.1:9"}
    )
    spec = app.test_client().get("/api/openapi.json").get_json()
    state.of(app).runtime.close()
    (work / "openapi.json").write_text(json.dumps(spec), "utf-8")
    (work / "config.yaml").write_text(CONFIG, "utf-8")
    generator = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run(
        [
            *(str(generator), "generate", "--path", "openapi.json"),
            *("--output-path", PACKAGE, "--meta", "none", "--config", "config.yaml"),
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Warning" not in output, output
    sys.path.insert(0, str(work))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _operation(tag: str, operation_id: str) -> Any:
    """The generated module of one operation (one per operationId, under its tag)."""
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")


def test_a_generated_client_drives_a_repair_journey(
    client_package: ModuleType, app: Flask, tokens: Tokens
) -> None:
    clock = ManualClock(NOW)
    state.of(app).runtime.clock = clock
    models = importlib.import_module(f"{PACKAGE}.models")
    token = tokens.headers("integrator")["Authorization"].removeprefix("Bearer ")
    client = client_package.AuthenticatedClient(
        base_url="http://svcflow.test",
        token=token,
        httpx_args={"transport": httpx.WSGITransport(app=app)},
        raise_on_unexpected_status=True,
    )

    # What may be fired and with what payload comes from the API, not from the YAML.
    triggers = _operation("definitions", "list_version_triggers").sync(
        name=REPAIR, version=1, client=client
    )
    contact = next(t for t in triggers if t.trigger == "contact")
    assert contact.payload_schema.to_dict()["required"] == ["at"]

    key = "WX/2026/03-0042"  # a hotline's key with slashes
    created = _operation("cases", "create_case").sync_detailed(
        client=client,
        body=models.CreateCase(
            definition=REPAIR,
            business_key=key,
            data=models.CreateCaseData.from_dict(REPAIR_DATA),
        ),
    )
    assert created.status_code == 201
    case = created.parsed
    assert (case.state, case.status) == ("logged", models.CaseStatus.OPEN)
    assert "contact" in case.allowed_triggers

    clock.advance(timedelta(minutes=10))
    at = (NOW + timedelta(minutes=5)).isoformat()
    fired = _operation("cases", "fire_trigger_by_key").sync(
        client=client,
        definition=REPAIR,
        business_key=key,
        body=models.Fire(trigger="contact", payload=models.FirePayload.from_dict({"at": at})),
        if_match='"1"',
    )
    assert (fired.case.id, fired.case.state) == (case.id, "remote_diagnosis")

    # A weak ETag never matches (RFC 9110): a Problem comes back, typed.
    refused = _operation("cases", "fire_trigger").sync_detailed(
        case.id,
        client=client,
        body=models.Fire(trigger="remote_failed", payload=models.FirePayload.from_dict({})),
        if_match='W/"2"',
    )
    assert refused.status_code == 412
    assert refused.parsed.code == "precondition-failed"

    for trigger, payload in (
        ("remote_failed", {"reason": "Gantry motor does not respond"}),
        ("dispatch", {"engineer": "Li Wei"}),
    ):
        clock.advance(timedelta(minutes=10))
        step = _operation("cases", "fire_trigger").sync(
            case.id,
            client=client,
            body=models.Fire(trigger=trigger, payload=models.FirePayload.from_dict(payload)),
        )
        assert step.event.trigger == trigger
    history = _operation("cases", "get_case_history").sync(case.id, client=client)
    assert [(e.seq, e.event_type) for e in history] == [
        (1, models.EventEventType.CREATED),
        (2, models.EventEventType.TRANSITION),
        (3, models.EventEventType.TRANSITION),
        (4, models.EventEventType.TRANSITION),
    ]
    assert all(len(e.hash_) == 64 for e in history)
    found = _operation("cases", "get_case").sync(case.id, client=client)
    assert (found.state, found.data["engineer"]) == ("dispatched", "Li Wei")
