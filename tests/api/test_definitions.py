"""Definitions over HTTP: list, validate, publish, drafts, versions, source, diff, diagrams."""

from __future__ import annotations

import json
from typing import Any

import yaml

from engine.core.validation import definition_schema
from tests.api.conftest import API_COUNTER, REPAIR, assert_problem, bundled_workflows, sqlite_only

BASE = "/api/v1/definitions"
COUNTER = "api_counter"
# Version 2 of api_counter (conftest.py): one more final state, reached from checked. The
# bundled workflows change as they grow, so the version tests use a definition of their own.
COUNTER_V2 = (
    API_COUNTER.replace(
        "transitions:\n",
        "  - name: archived\n    title: {en: Archived, zh: 已归档}\n"
        "    final: true\ntransitions:\n",
    )
    + "  - trigger: archive\n    source: checked\n    dest: archived\n"
)
# Both titles have errors at known element paths: an unknown destination, a duplicate state.
INVALID = """\
name: api_broken
title: {en: Broken, zh: 坏}
initial: open
states:
  - name: open
    title: {en: Open, zh: 打开}
  - name: open
    title: {en: Open again, zh: 再打开}
transitions:
  - trigger: go
    source: open
    dest: nowhere
"""


def test_list_shows_each_published_definition_with_its_latest_version(supervisor: Any) -> None:
    response = supervisor.get(BASE)
    assert response.status_code == 200
    by_name = {d["name"]: d for d in response.get_json()}
    bundled = {yaml.safe_load(path.read_text("utf-8"))["name"] for path in bundled_workflows()}
    assert bundled | {COUNTER} == set(by_name)
    assert by_name[REPAIR]["latest_version"] == 1
    assert by_name[REPAIR]["title_zh"] == "维修工单"


@sqlite_only
def test_the_document_schema_is_served_for_editors(integrator: Any, client: Any) -> None:
    response = integrator.get(f"{BASE}/schema")

    assert response.status_code == 200
    assert response.mimetype == "application/schema+json"
    assert json.loads(response.get_data(as_text=True)) == definition_schema()
    assert_problem(client.get(f"{BASE}/schema"), 401)


@sqlite_only
def test_validate_reports_problems_with_element_paths_and_stores_nothing(
    owner: Any, db_state: Any
) -> None:
    before = db_state()
    ok = owner.post(f"{BASE}/validate", json={"source": COUNTER_V2})
    bad = owner.post(f"{BASE}/validate", json={"source": INVALID})
    assert ok.status_code == 200 and ok.get_json()["ok"] is True
    report = bad.get_json()
    assert bad.status_code == 200 and report["ok"] is False
    where = {p["path"]: (p["line"], p["column"]) for p in report["errors"]}
    assert where["states[1].name"] == (7, 5)  # as written in INVALID
    assert where["transitions[0].dest"] == (12, 5)
    assert all(p["message"] for p in report["errors"])
    assert db_state() == before


def test_publish_makes_the_next_version_and_an_identical_one_is_not_a_new_version(
    owner: Any, integrator: Any
) -> None:
    first = owner.post(BASE, json={"source": COUNTER_V2})
    again = owner.post(BASE, json={"source": COUNTER_V2})
    assert (first.status_code, first.get_json()["version"], first.get_json()["created"]) == (
        201,
        2,
        True,
    )
    assert (again.status_code, again.get_json()["version"], again.get_json()["created"]) == (
        200,
        2,
        False,
    )
    versions = integrator.get(f"{BASE}/{COUNTER}/versions")
    assert [v["version"] for v in versions.get_json()] == [1, 2]


def test_publish_accepts_a_json_document(owner: Any, admin: Any) -> None:
    document = {
        "name": "api_doc",
        "title": {"en": "Doc", "zh": "文档"},
        "initial": "a",
        "states": [
            {"name": "a", "title": {"en": "A", "zh": "甲"}},
            {"name": "b", "title": {"en": "B", "zh": "乙"}, "final": True},
        ],
        "transitions": [{"trigger": "go", "source": "a", "dest": "b"}],
    }
    response = owner.post(BASE, json={"document": document})
    assert response.status_code == 201, response.get_json()
    version = admin.get(f"{BASE}/api_doc/versions/1").get_json()
    assert version["initial"] == "a" and [t["trigger"] for t in version["transitions"]] == ["go"]


def test_publishing_an_invalid_definition_is_422_with_each_problem_path(
    owner: Any, db_state: Any
) -> None:
    before = db_state()
    body = assert_problem(owner.post(BASE, json={"source": INVALID}), 422, "definition-invalid")
    paths = {p["path"] for p in body["problems"]}
    assert {"transitions[0].dest", "states[1].name"} <= paths
    assert db_state() == before


def test_draft_upload_validate_publish(owner: Any, integrator: Any) -> None:
    url = f"{BASE}/{COUNTER}/draft"
    assert_problem(owner.get(url), 404, "definition-not-found")

    broken = COUNTER_V2.replace("dest: archived", "dest: nowhere")
    stored = owner.put(url, json={"source": broken})
    assert stored.status_code == 200
    assert stored.get_json()["report"]["ok"] is False  # stored although invalid
    assert_problem(owner.post(f"{url}/publish"), 422)

    fixed = owner.put(url, json={"source": COUNTER_V2})
    assert fixed.get_json()["report"]["ok"] is True
    draft = owner.get(url).get_json()
    assert draft["source"] == COUNTER_V2 and draft["updated_by"].startswith("token:")

    published = owner.post(f"{url}/publish")
    assert published.status_code == 201 and published.get_json()["version"] == 2
    assert_problem(owner.get(url), 404)  # the draft is gone once published
    assert_problem(owner.post(f"{url}/publish"), 404)
    latest = integrator.get(f"{BASE}/{COUNTER}/versions/2").get_json()
    assert "archived" in [s["name"] for s in latest["states"]]


@sqlite_only
def test_draft_sent_to_another_name_is_refused(owner: Any) -> None:
    body = assert_problem(
        owner.put(f"{BASE}/other_name/draft", json={"source": COUNTER_V2}),
        422,
        "draft-name-mismatch",
    )
    assert COUNTER in body["detail"]
    long_name = "d" * 300  # no row could hold it
    body = assert_problem(
        owner.put(f"{BASE}/{long_name}/draft", json={"source": f"name: {long_name}\n"}),
        422,
        "definition-unreadable",
    )
    assert "identifier" in body["detail"]


def test_versions_and_version_and_source(integrator: Any, supervisor: Any) -> None:
    versions = integrator.get(f"{BASE}/{REPAIR}/versions").get_json()
    assert [v["version"] for v in versions] == [1]
    one = supervisor.get(f"{BASE}/{REPAIR}/versions/1").get_json()
    assert one["initial"] == "logged" and one["title"] == {"en": "Repair ticket", "zh": "维修工单"}
    assert one["parameters"]["contact_within"] == "1h"

    source = integrator.get(f"{BASE}/{COUNTER}/versions/1/source")
    assert source.status_code == 200 and source.mimetype == "application/yaml"
    assert source.get_data(as_text=True) == API_COUNTER  # exactly as published

    assert_problem(integrator.get(f"{BASE}/nope/versions"), 404, "definition-not-found")
    assert_problem(integrator.get(f"{BASE}/{REPAIR}/versions/9"), 404, "definition-not-found")
    assert_problem(integrator.get(f"{BASE}/{REPAIR}/versions/9/source"), 404)


def test_diff_between_two_versions(owner: Any, supervisor: Any) -> None:
    owner.post(BASE, json={"source": COUNTER_V2})
    response = supervisor.get(f"{BASE}/{COUNTER}/diff?from=1&to=2")
    assert response.status_code == 200
    diff = response.get_json()
    assert (diff["from_version"], diff["to_version"]) == (1, 2)
    assert diff["changes"]["states"]["added"] == ["archived"]
    assert "+  - name: archived" in diff["source_diff"]
    assert_problem(supervisor.get(f"{BASE}/{COUNTER}/diff?from=1&to=7"), 404)
    body = assert_problem(supervisor.get(f"{BASE}/{COUNTER}/diff?from=1"), 422)
    assert "to" in body["errors"]["query"]


@sqlite_only
def test_diagram_as_svg_and_dot(integrator: Any) -> None:
    svg = integrator.get(f"{BASE}/{REPAIR}/versions/1/diagram")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert "<svg" in svg.get_data(as_text=True)
    dot = integrator.get(f"{BASE}/{REPAIR}/versions/1/diagram?format=dot&lang=zh")
    assert dot.status_code == 200 and dot.mimetype == "text/vnd.graphviz"
    text = dot.get_data(as_text=True)
    assert text.startswith('digraph "repair_ticket"') and "已登记" in text
    assert_problem(integrator.get(f"{BASE}/{REPAIR}/versions/1/diagram?format=png"), 422)
    assert_problem(integrator.get(f"{BASE}/{REPAIR}/versions/5/diagram"), 404)


def test_a_versions_triggers_say_what_to_send_and_who_may(integrator: Any) -> None:
    response = integrator.get(f"/api/v1/definitions/{REPAIR}/versions/1/triggers")

    assert response.status_code == 200
    triggers = {t["trigger"]: t for t in response.get_json()}
    contact = triggers["contact"]
    assert contact["fired_by"] == "callers"
    assert contact["payload_schema"]["properties"]["at"] == {
        "type": "string",
        "format": "date-time",
    }
    assert [(t["sources"], t["dest"]) for t in contact["transitions"]] == [
        (["logged", "contact_late"], "remote_diagnosis"),
        (["logged", "contact_late"], "replacement_pending"),
    ]
    assert contact["transitions"][0]["occurred_at"] == "at"
    overdue = triggers["contact_overdue"]
    assert (overdue["fired_by"], overdue["transitions"][0]["roles"]) == ("svcflow", ["system"])
    assert_problem(integrator.get(f"/api/v1/definitions/{REPAIR}/versions/99/triggers"), 404)
