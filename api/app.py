"""The Flask application factory (served by gunicorn; see the Procfile)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, g
from flask_smorest import Api, Blueprint
from werkzeug.exceptions import HTTPException

from api import apidocs, db, inputs, metrics, outages, problems, security, state
from engine.errors import SvcflowError
from engine.runtime import telemetry
from engine.runtime.resources import Runtime

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024  # documented in docs/api.md
# The app's own templates; they take precedence over the extensions' (swagger_ui.html).
TEMPLATES = Path(__file__).resolve().parent / "templates"

# Unknown query parameters are refused like unknown body fields, as every query schema says
# (unknown = RAISE): webargs would drop them from the query string silently, so a misspelt
# filter would widen a search instead of failing. The parser is shared by all blueprints.
Blueprint.ARGUMENTS_PARSER.unknown = None


class SvcflowApi(Api):  # type: ignore[misc]
    """flask-smorest's Api with every error rendered as problem+json (RFC 9457)."""

    ERROR_SCHEMA = problems.ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        if error.response is not None:  # abort(problem(...)) carries its own response
            return error.response
        return problems.from_http(error)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. Settings come from ``SVCFLOW_*`` environment variables (e.g.
    ``SVCFLOW_DATABASE_URL``, ``SVCFLOW_REDIS_URL``), then from ``config``."""
    app = Flask("svcflow", template_folder=str(TEMPLATES))
    app.config.update(
        API_TITLE="svcflow",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        **apidocs.SETTINGS,
    )
    app.config.from_prefixed_env("SVCFLOW")
    if config:
        app.config.update(config)
    security.init_app(app)
    state.install(
        app,
        Runtime(database_url=app.config.get("DATABASE_URL"), redis_url=app.config.get("REDIS_URL")),
    )
    api = SvcflowApi(
        app,
        spec_kwargs={
            "extra_plugins": [problems.ProblemPlugin()],
            "info": {
                "description": "Drive after-sales service cases over HTTP. "
                "Errors are application/problem+json (RFC 9457)."
            },
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from `svcflow tokens create`.",
        },
    )
    db.init_app(app)
    outages.init_app(app)  # a database outage: 503 + Retry-After, logged once
    telemetry.install()
    app.register_blueprint(metrics.blp)
    app.register_blueprint(apidocs.bp)

    @app.before_request
    def _clock() -> None:
        g.now = state.runtime().clock.now()

    app.before_request(inputs.check_request)

    @app.errorhandler(SvcflowError)
    def _domain_error(error: SvcflowError) -> Any:
        return problems.from_engine(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        log.exception("unhandled error")
        return problems.internal_error()

    from api import (
        calendars,
        cases,
        contracts,
        definitions,
        events,
        health,
        kpis,
        supervision,
        timers,
        tokens,
        versions,
        webhooks,
    )

    for module in (
        health,
        definitions,
        versions,
        cases,
        events,
        webhooks,
        calendars,
        timers,
        supervision,
        kpis,
        tokens,
        contracts,
    ):
        api.register_blueprint(module.blp)

    from api import dashboard  # server-rendered pages under /dashboard (docs/dashboard.md)

    dashboard.init_app(app)
    return app
