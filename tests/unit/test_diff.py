"""The structural diff between two versions says what a process owner changed: an SLA's
warnings or pause, a transition's guard or sources, a timer's duration, a parameter's default
and the roles in use, each as changed (from, to), not as removed and added."""

from __future__ import annotations

from engine.core.definition import parse_source
from engine.core.diff import diff_definitions, render_text
from engine.core.migration import as_current
from engine.core.records import EventRecord
from engine.core.validation import load_definition
from tests.workflows import TICKET

V2 = (
    TICKET.replace("warn_at: [0.5]", "warn_at: [0.5, 0.8]")
    .replace("pause: {states: [on_hold]}", "pause: {states: [on_hold, repairing]}")
    .replace('guard: "data.allowed"', 'guard: "data.allowed && has(data.engineer)"')
    .replace(
        "{name: remind, after: 2h, trigger: remind}", "{name: remind, after: 3h, trigger: remind}"
    )
    .replace(
        "    source: [received, repairing]\n    dest: closed",
        "    source: [repairing]\n    dest: closed\n    roles: [supervisor]",
    )
)


def _diff(old: str, new: str):  # type: ignore[no-untyped-def]
    a = load_definition(parse_source(old), version=1)
    b = load_definition(parse_source(new), version=2)
    return diff_definitions(a, b, old, new)


def test_sla_warnings_and_pause_show_as_changed() -> None:
    slas = _diff(TICKET, V2).changes["slas"]
    assert slas["added"] == [] and slas["removed"] == []
    response = slas["changed"]["response"]
    assert response["warn_at"] == {"from": [0.5], "to": [0.5, 0.8]}
    assert response["pause"]["to"]["states"] == ["on_hold", "repairing"]


def test_a_changed_transition_is_changed_not_removed_and_added() -> None:
    transitions = _diff(TICKET, V2).changes["transitions"]
    assert transitions["changed"]["remind: received"]["guard"] == {
        "from": "data.allowed",
        "to": "data.allowed && has(data.engineer)",
    }
    (moved,) = [k for k in transitions["changed"] if k.startswith("close:")]
    assert moved == "close: received, repairing -> repairing"
    assert transitions["changed"][moved]["sources"]["to"] == ["repairing"]
    assert transitions["added"] == [] and transitions["removed"] == []


def test_timers_parameters_and_roles_are_covered() -> None:
    changes = _diff(TICKET, V2).changes
    assert changes["timers"]["changed"]["received.remind"]["after"] == {"from": "2h", "to": "3h"}
    assert changes["transitions"]["changed"]["close: received, repairing -> repairing"]["roles"][
        "to"
    ] == ["supervisor"]
    with_param = TICKET.replace(
        "initial: received\n",
        "initial: received\nparameters:\n  limit: {type: integer, default: 3}\n",
    )
    bumped = with_param.replace("default: 3", "default: 5")
    params = _diff(with_param, bumped).changes["parameters"]
    assert params["changed"] == {"limit": {"default": {"from": 3, "to": 5}}}
    assert _diff(TICKET, with_param).changes["parameters"]["added"] == ["limit"]


def test_roles_in_use_added_and_removed() -> None:
    integrators = TICKET.replace(
        "  - trigger: permit\n    source: received\n",
        "  - trigger: permit\n    source: received\n    roles: [integrator]\n",
    )
    assert _diff(TICKET, integrators).changes["roles"] == {"added": ["integrator"], "removed": []}
    assert _diff(integrators, TICKET).changes["roles"] == {"added": [], "removed": ["integrator"]}


def test_text_summary_and_an_unchanged_document() -> None:
    text = render_text(_diff(TICKET, V2))
    assert "~ sla response" in text and "warn_at: [0.5] -> [0.5, 0.8]" in text
    same = _diff(TICKET, TICKET)
    assert same.empty and "no structural change" in render_text(same)


def test_history_before_a_migration_reads_in_the_new_versions_states() -> None:
    from datetime import UTC, datetime

    at = datetime(2025, 1, 1, tzinfo=UTC)

    def event(seq: int, kind: str, source: str | None, dest: str, **payload: object) -> EventRecord:
        return EventRecord(1, seq, kind, None, source, dest, "t", payload, {}, at)

    history = [
        event(1, "created", None, "a"),
        event(2, "transition", "a", "b"),
        event(3, "migrated", "b", "b2", state_map={"b": "b2", "a": "a2"}),
        event(4, "transition", "b2", "c"),
        event(5, "migrated", "c", "c3", state_map={"a2": "a3", "c": "c3"}),
    ]
    renamed = [(e.from_state, e.to_state) for e in as_current(history)]
    assert renamed == [(None, "a3"), ("a3", "b2"), ("b", "b2"), ("b2", "c3"), ("c", "c3")]
    plain = history[:2]
    assert as_current(plain) is plain


def test_field_labels_added_and_relabelled() -> None:
    labelled = TICKET.rstrip("\n") + "\nfields:\n  engineer: {en: Engineer, zh: 工程师}\n"
    added = _diff(TICKET, labelled).changes["fields"]
    assert added == {"added": ["engineer"], "removed": [], "changed": {}}
    relabelled = labelled.replace("zh: 工程师", "zh: 维修工程师")
    changed = _diff(labelled, relabelled)
    title = changed.changes["fields"]["changed"]["engineer"]["title"]
    assert (title["from"]["zh"], title["to"]["zh"]) == ("工程师", "维修工程师")
    assert "~ field engineer" in render_text(changed)
