"""The safety limits over HTTP: a definition or a request beyond them is a 4xx problem that
says what, where and what to do; never a 500, never a worker grown to gigabytes, and nothing
of a refused definition is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import assert_problem, sqlite_only

BASE = "/api/v1/definitions"
CASES = "/api/v1/cases"

# A definition whose finish trigger carries a serial checked by a pattern; {pattern} and
# {guard} are filled in by each test.
TEMPLATE = """\
name: api_limits
title: {{en: Limits, zh: 限制}}
initial: open
data_schema:
  type: object
  properties:
    parts: {{type: array, items: {{type: integer}}}}
states:
  - name: open
    title: {{en: Open, zh: 打开}}
  - name: done
    title: {{en: Done, zh: 完成}}
    final: true
transitions:
  - trigger: finish
    source: open
    dest: done
    guard: "{guard}"
    payload_schema:
      type: object
      properties:
        serial: {{type: string, pattern: '{pattern}'}}
        parts: {{type: array, items: {{type: integer}}}}
"""


def _definition(pattern: str = "^SN-[0-9]+$", guard: str = "true") -> str:
    return TEMPLATE.format(pattern=pattern, guard=guard)


def _bomb() -> str:
    lines = ["name: api_bomb", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@sqlite_only
def test_an_alias_bomb_is_422_at_its_line_and_nothing_is_stored(
    owner: Any, db_state: Callable[[], Any]
) -> None:
    before = db_state()
    for url in (BASE, f"{BASE}/validate"):
        body = assert_problem(owner.post(url, json={"source": _bomb()}), 422)
        assert body["code"] == "definition-too-large"
        assert body["line"] == 7
        assert "line 7" in body["detail"]
        assert "Limits" in body["hint"]
    assert_problem(owner.put(f"{BASE}/api_bomb/draft", json={"source": _bomb()}), 422)
    assert db_state() == before


@sqlite_only
def test_a_deep_data_schema_is_422_never_a_recursion_error(
    owner: Any, db_state: Callable[[], Any]
) -> None:
    before = db_state()
    deep = "{type: object, properties: {a: " * 5000 + "{type: string}" + "}}" * 5000
    source = _definition().replace(
        "    parts: {type: array, items: {type: integer}}\nstates:",
        f"    deep: {deep}\nstates:",
        1,
    )
    body = assert_problem(owner.post(BASE, json={"source": source}), 422, "definition-too-large")
    assert body["line"] == 7
    assert body["path"].startswith("data_schema.properties.deep.properties.a")
    # The same as a JSON document: deeper than any request body may be.
    response = owner.post(
        BASE,
        data='{"document": ' + _deep_json(5000) + "}",
        content_type="application/json",
    )
    assert_problem(response, 422, "body-too-deep")
    assert db_state() == before


def _deep_json(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


@sqlite_only
def test_a_pattern_that_cannot_run_in_linear_time_is_refused_on_publish(owner: Any) -> None:
    body = assert_problem(
        owner.post(BASE, json={"source": _definition(pattern=r"^(\w+)-\1$")}),
        422,
        "definition-invalid",
    )
    [problem] = [p for p in body["problems"] if p["code"] == "pattern-not-linear"]
    assert problem["path"] == "transitions[0].payload_schema.properties.serial.pattern"
    assert "RE2" in problem["message"]
    assert problem["hint"]


@sqlite_only
def test_nested_comprehensions_are_refused_on_publish(owner: Any) -> None:
    guard = "data.parts.all(a, data.parts.all(b, data.parts.all(c, a + b + c > 0)))"
    body = assert_problem(
        owner.post(BASE, json={"source": _definition(guard=guard)}), 422, "definition-invalid"
    )
    assert {(p["path"], p["code"]) for p in body["problems"]} == {
        ("transitions[0].guard", "expression-too-costly")
    }


@sqlite_only
def test_a_catastrophic_pattern_and_an_oversized_payload_are_422_at_once(admin: Any) -> None:
    """Issue 12: ``^(a+)+$`` took 17.5 s per fire on Python's re, holding SQLite's write lock.
    On RE2 it answers in linear time."""
    published = admin.post(BASE, json={"source": _definition(pattern="^(a+)+$")})
    assert published.status_code == 201, published.get_json()
    created = admin.post(CASES, json={"definition": "api_limits", "data": {}})
    assert created.status_code == 201, created.get_json()
    fire = f"{CASES}/{created.get_json()['id']}/fire"
    body = assert_problem(
        admin.post(fire, json={"trigger": "finish", "payload": {"serial": "a" * 10_000 + "!"}}),
        422,
        "payload-invalid",
    )
    assert "does not match" in body["detail"]
    too_many = {"trigger": "finish", "payload": {"parts": list(range(257))}}
    body = assert_problem(admin.post(fire, json=too_many), 422, "payload-invalid")
    assert body["limit"] == "items"
    assert body["at"] == "/parts"
    done = admin.post(fire, json={"trigger": "finish", "payload": {"serial": "aaaa"}})
    assert done.status_code == 200, done.get_json()


@sqlite_only
def test_deep_json_in_a_payload_or_a_query_is_4xx(
    integrator: Any, new_case: Callable[..., dict[str, Any]]
) -> None:
    case = new_case("LIM-1")
    deep = '{"trigger": "contact", "payload": {"at": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    assert_problem(
        integrator.post(f"{CASES}/{case['id']}/fire", data=deep, content_type="application/json"),
        422,
        "body-too-deep",
    )
    response = integrator.get(
        CASES, query_string={"data_field": "fault", "data_value": "[" * 5000 + "]" * 5000}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    # Valid JSON, but an integer longer than Python converts: once a 500.
    long_number = '{"trigger": "contact", "payload": {"at": ' + "1" * 5000 + "}}"
    assert_problem(
        integrator.post(
            f"{CASES}/{case['id']}/fire", data=long_number, content_type="application/json"
        ),
        422,
        "number-too-long",
    )
