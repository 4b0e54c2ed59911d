"""The Flask application factory (served by gunicorn; see the Procfile)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api

from workers import runtime

API_TITLE = "svcflow"
API_VERSION = "v1"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. Settings come from ``SVCFLOW_*`` environment variables (e.g.
    ``SVCFLOW_DATABASE_URL``, ``SVCFLOW_REDIS_URL``), then from ``config``."""
    app = Flask("svcflow")
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.config.from_prefixed_env("SVCFLOW")
    if config:
        app.config.update(config)
    runtime.install(
        runtime.Runtime(
            database_url=app.config.get("DATABASE_URL"), redis_url=app.config.get("REDIS_URL")
        )
    )
    api = Api(app)
    from api import health

    api.register_blueprint(health.blp)
    return app
