"""The hash chain's canonical form: the reference verifier in docs/audit.md, which a hospital
would run without svcflow, agrees with the engine on any JSON an event can hold, and the form
does not depend on how a database spells the same values."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.core.history_chain import (
    GENESIS,
    ChainedEvent,
    StoredEvent,
    canonical_json,
    check_chain,
    event_hash,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
T0 = datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=UTC)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def _reference() -> dict[str, Any]:
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


REFERENCE = _reference()


def _event(seq: int, payload: dict[str, Any], **fields: Any) -> ChainedEvent:
    values: dict[str, Any] = {
        "case_id": 7,
        "seq": seq,
        "event_type": "transition",
        "trigger": "contact",
        "from_state": "logged",
        "to_state": "remote_diagnosis",
        "actor": "token:hotline",
        "payload": payload,
        "changes": {"contacted_at": "2026-03-02T01:02:03Z"},
        "at": T0,
        "idempotency_key": None,
        "context": None,
    } | fields
    return ChainedEvent(**values)


def _as_api(event: ChainedEvent, hash_: str) -> dict[str, Any]:
    """The event as GET /api/v1/cases/{id}/history shows it (times in ISO 8601)."""
    shown = {k: getattr(event, k) for k in ChainedEvent.__annotations__}
    shown["at"] = event.at.isoformat()
    return json.loads(json.dumps(shown)) | {"hash": hash_}


@given(payload=objects, context=st.none() | objects, offset=st.integers(-720, 840))
def test_the_documented_verifier_computes_the_engines_hashes(
    payload: dict[str, Any], context: dict[str, Any] | None, offset: int
) -> None:
    # The instant as some client's zone shows it: the chain holds it in UTC.
    local = T0.astimezone(timezone(timedelta(minutes=offset)))
    event = _event(1, payload, context=context or None, at=local)
    ours = event_hash(event, GENESIS)

    assert ours == event_hash(_event(1, payload, context=context or None), GENESIS)
    assert REFERENCE["event_hash"](_as_api(event, ours), GENESIS) == ours


def _as_jsonb_returns(text: str) -> float | int:
    """A number as PostgreSQL's jsonb gives it back: whole numbers without exponent."""
    exact = Decimal(text)
    return int(exact) if exact == exact.to_integral_value() else float(text)


@given(value=json_values)
def test_the_form_survives_a_json_round_trip_and_respelt_numbers(value: Any) -> None:
    respelt = json.loads(json.dumps(value), parse_float=_as_jsonb_returns)
    assert canonical_json(respelt) == canonical_json(value)
    assert canonical_json(value).isascii()


def test_whole_numbers_hash_alike_however_a_database_returns_them() -> None:
    # PostgreSQL jsonb keeps 3.0 as 3.0 but returns 1e300 as a 301-digit integer.
    assert canonical_json({"a": 3.0, "b": 1e300}) == canonical_json({"b": 10**300, "a": 3})
    assert canonical_json([0.1, 1.5e-10, -0.0]) == "[0.1,1.5e-10,0]"


def test_every_field_and_the_previous_hash_are_covered() -> None:
    base = _event(2, {"note": "deposit 500"})
    changed = [
        _event(2, {"note": "deposit 800"}),
        _event(2, {"note": "deposit 500"}, actor="token:erp"),
        _event(2, {"note": "deposit 500"}, at=T0 + timedelta(microseconds=1)),
        _event(3, {"note": "deposit 500"}),
        _event(2, {"note": "deposit 500"}, context={"reason": "x"}),
    ]
    hashes = {event_hash(e, GENESIS) for e in [base, *changed]}
    assert len(hashes) == 1 + len(changed)
    assert event_hash(base, GENESIS) != event_hash(base, "1" * 64)


def _chain(events: list[ChainedEvent]) -> list[StoredEvent]:
    stored, previous = [], GENESIS
    for event in events:
        previous = event_hash(event, previous)
        stored.append(StoredEvent(event, previous))
    return stored


def test_check_chain_names_the_first_break() -> None:
    events = _chain([_event(n, {"n": n}) for n in (1, 2, 3)])
    head = events[-1].stored_hash

    assert check_chain(7, events, head_seq=3, head_hash=head) is None
    edited = [events[0], StoredEvent(_event(2, {"n": 20}), events[1].stored_hash), events[2]]
    found = check_chain(7, edited, head_seq=3, head_hash=head)
    assert found is not None and (found.seq, "was changed" in found.problem) == (2, True)
    gap = check_chain(7, [events[0], events[2]], head_seq=3, head_hash=head)
    assert gap is not None and str(gap) == (
        "case 7, event seq 2: seq 2 is missing (the history jumps to seq 3)"
    )
    cut = check_chain(7, events[:2], head_seq=3, head_hash=head)
    assert cut is not None and cut.seq == 3
    assert REFERENCE["verify"]([_as_api(e.event, str(e.stored_hash)) for e in edited]) == (
        "event seq 2 does not match its hash"
    )
