"""Property-based tests over the whole OpenAPI spec (schemathesis), on SQLite.

Every operation gets a bounded number of generated requests, valid and invalid, sent with an
admin token to the app in-process (WSGI). Whatever is sent, the API must answer without a
server error, with a status code, content type, headers and body that the spec documents.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import state
from engine.runtime.clock import ManualClock
from engine.runtime.housekeeping import Housekeeper
from tests.api.conftest import REPAIR, REPAIR_DATA, Tokens

# Invalid requests may also be refused as too large (413) or as a failed precondition (412).
# The admin token is given to schemathesis as the spec's bearerAuth scheme, not as a header
# added to each call: a header added afterwards overrode the Authorization header a negative
# case had left out or garbled, so schemathesis saw its "invalid" request answered 200 and
# reported a false failure (about one run in three of the negative mode).
CHECKS_CONFIG: dict[str, Any] = {
    "checks": {
        "negative_data_rejection": {
            "expected-statuses": [
                400,
                401,
                403,
                404,
                405,
                406,
                409,
                412,
                413,
                415,
                422,
                428,
                429,
            ],
        }
    }
}
MAX_EXAMPLES = 25
# No shrinking: a failure is reported as found, which keeps a failing run short.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def db_url(api_sqlite_url: str) -> str:
    """SQLite only: the property run is about the HTTP layer, and must stay fast."""
    return api_sqlite_url


@pytest.fixture
def app_redis_url(redis_url: str) -> str:
    """A reachable Redis, so that /readyz can answer 200 (it answers 503 without one)."""
    return redis_url


@pytest.fixture
def api_schema(app: Flask, tokens: Tokens) -> Any:
    """The app's own spec; a few cases exist, so small generated ids reach real ones. Time
    stands still and a worker has just reported and swept, so /readyz answers 200 (its 503
    is tested in test_health.py)."""
    runtime = state.of(app).runtime
    runtime.clock = ManualClock(datetime.now(UTC))
    app.config["FEED_MAX_WAIT"] = 0.05  # generated waits must not hold the run for minutes
    Housekeeper(runtime, "schemathesis-worker").run_once()
    client = app.test_client()
    for n in range(3):
        response = client.post(
            "/api/v1/cases",
            headers=tokens.headers("integrator"),
            json={"definition": REPAIR, "business_key": f"T-{n}", "data": REPAIR_DATA},
        )
        assert response.status_code == 201, response.get_json()
    config = schemathesis.Config.from_dict(
        {**CHECKS_CONFIG, "auth": {"openapi": {"bearerAuth": {"bearer": tokens.by_role["admin"]}}}}
    )
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=config)


# Not ``schemathesis.pytest.from_fixture``: its lazy loader reads ``request.node._nodeid``,
# which pytest 9 no longer has. Each generation mode is one test (so xdist spreads them) that
# runs every operation and reports all failing operations together.
@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value
)
def test_every_operation_conforms_to_the_spec(api_schema: Any, mode: GenerationMode) -> None:
    failures: dict[str, str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=PHASES,
        )
        def conforms(case: Any) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            conforms()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to make invalid
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    assert operations >= 25
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
