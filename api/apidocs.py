"""Swagger UI at ``/api/docs``, served by the app itself from the ``swagger-ui-bundle`` wheel:
hospital intranets often have no way out to a CDN, and the page must work there.

flask-smorest renders the page (``OPENAPI_SWAGGER_UI_URL`` says where the files are); the app's
own ``templates/swagger_ui.html`` replaces flask-smorest's so that its one inline script
carries the Content-Security-Policy nonce (api/security.py). The online validator badge is
switched off: it would load an image from the Internet on every visit.
"""

from __future__ import annotations

from flask import Blueprint
from swagger_ui_bundle import swagger_ui_path

STATIC_URL = "/api/docs/static"

bp = Blueprint(
    "swagger_ui",
    __name__,
    static_folder=str(swagger_ui_path),
    static_url_path=STATIC_URL,
)

SETTINGS = {
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": f"{STATIC_URL}/",
    "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
}
