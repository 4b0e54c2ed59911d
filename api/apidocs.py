"""Swagger UI at ``/api/docs``, served by the app itself from the ``swagger-ui-bundle`` wheel:
hospital intranets often have no way out to a CDN, and the page must work there.

flask-smorest renders the page (``OPENAPI_SWAGGER_UI_URL`` says where the files are); the app's
own ``templates/swagger_ui.html`` replaces flask-smorest's so that its one inline script
carries the Content-Security-Policy nonce (api/security.py). The online validator badge is
switched off: it would load an image from the Internet on every visit.
"""

from __future__ import annotations

import re

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

# Client generators name their functions after operationIds (openapi-python-client: one
# module per operation), so each is a verb phrase a caller would write. An operation not
# listed here is named after its blueprint, view and method (tests/api/test_openapi.py
# checks they are unique).
OPERATION_IDS = {
    "cases.Cases.get": "search_cases",
    "cases.Cases.post": "create_case",
    "cases.Case.get": "get_case",
    "cases.Fire.post": "fire_trigger",
    "cases.CaseByKeyQuery.get": "find_case_by_key",
    "cases.FireByKeyQuery.post": "fire_trigger_by_key",
    "cases.CaseByKey.get": "get_case_by_key_path",
    "cases.FireByKey.post": "fire_trigger_by_key_path",
    "cases.History.get": "get_case_history",
    "cases.Cancel.post": "cancel_case",
    "cases.CaseTimers.get": "list_case_timers",
    "cases.Links.get": "get_case_links",
    "definitions.Definitions.get": "list_definitions",
    "definitions.Definitions.post": "publish_definition",
    "definitions.DocumentSchema.get": "get_definition_schema",
    "definitions.Validate.post": "validate_definition",
    "definitions.Draft.get": "get_draft",
    "definitions.Draft.put": "save_draft",
    "definitions.PublishDraft.post": "publish_draft",
    "definitions.Versions.get": "list_versions",
    "definitions.Version.get": "get_version",
    "definitions.Triggers.get": "list_version_triggers",
    "definitions.Source.get": "get_version_source",
    "definitions.Diff.get": "diff_versions",
    "definitions.Diagram.get": "get_version_diagram",
    "calendars.Calendars.get": "list_calendars",
    "calendars.Calendars.post": "create_calendar",
    "calendars.Calendar.get": "get_calendar",
    "calendars.Calendar.put": "save_calendar",
    "timers.Timers.get": "list_timers",
    "supervision.Stuck.get": "list_stuck_cases",
    "supervision.StuckCounts.get": "count_stuck_cases",
    "supervision.Fire.post": "supervisor_fire_trigger",
    "supervision.Force.post": "force_state",
    "supervision.Cancel.post": "supervisor_cancel_case",
    "supervision.PauseSla.post": "pause_sla",
    "supervision.ResumeSla.post": "resume_sla",
    "supervision.Reassign.post": "reassign_case",
    "supervision.RetryTimer.post": "retry_timer",
    "supervision.Bulk.post": "bulk_action",
    "kpis.Kpis.get": "get_kpis",
    "kpis.AuditSample.get": "get_audit_sample",
    "tokens.Tokens.get": "list_tokens",
    "tokens.Tokens.post": "create_token",
    "tokens.Token.get": "get_token",
    "tokens.Token.delete": "revoke_token",
}


def operation_id(blueprint: str, qualname: str) -> str:
    """The operationId of view method ``qualname`` (``Fire.post``) of ``blueprint``."""
    key = f"{blueprint}.{qualname}"
    if key in OPERATION_IDS:
        return OPERATION_IDS[key]
    view, _, method = qualname.rpartition(".")
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", view).lower()
    return f"{method}_{blueprint}_{snake}"
