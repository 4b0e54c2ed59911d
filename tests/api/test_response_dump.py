"""A case's timers and SLA clocks are dumped by the view (api/cases.py ``flat_dumper``), not
walked again by marshmallow: the output must be exactly what the schemas' ``dump`` gives, for
any value the fields can meet, and the OpenAPI document must still describe them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from api import state
from api.app import create_app
from api.cases import ClockSchema, TimerSchema, flat_dumper
from engine.core.sla import ClockStatus, SlaClock
from engine.store.models import Timer

instants = (
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
    | st.none()
)
texts = st.text(max_size=12) | st.none()
numbers = st.integers(-(10**9), 10**9) | st.floats(allow_nan=False, allow_infinity=False)


def _maybe_missing(fields: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping with some keys absent (a missing value is left out of the dump)."""
    return st.fixed_dictionaries({}, optional=fields)


timer_mappings = _maybe_missing(
    {
        "id": st.integers(1, 2**62),
        "case_id": st.integers(1, 2**62),
        "name": st.text(max_size=20),
        "kind": st.sampled_from(["after", "at", "every", "sla_warning", "sla_breached"]),
        "sla": texts,
        "trigger": texts,
        "status": st.sampled_from(["armed", "fired", "cancelled", "failed"]),
        "due_at": instants,
        "provisional": st.booleans() | st.none(),
        "attempts": st.integers(0, 100),
        "last_error": texts,
        "note": texts,
        "fired_at": instants,
        "payload": st.dictionaries(st.text(max_size=5), st.integers()),  # not in the schema
    }
)

clocks = st.builds(
    SlaClock,
    name=st.text(min_size=1, max_size=20),
    status=st.sampled_from(list(ClockStatus)),
    target=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=400)),
    elapsed=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
    remaining=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
    started_at=instants,
    stopped_at=instants,
    due_at=instants,
    provisional=st.booleans(),
    # Warning fractions as a definition may write them: 0.75, or a whole 1.
    warnings_reached=st.lists(st.sampled_from([0.5, 0.75, 1, 1.0]), max_size=3).map(tuple),
    calendar=st.sampled_from(["24x7", "cn-workdays"]),
    unit=st.sampled_from(["seconds", "working_seconds", "working_days", "months"]),
    round=st.integers(1, 50),
    manual_pause=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(timer_mappings)
def test_a_timer_is_dumped_as_the_schema_dumps_it(timer: dict[str, Any]) -> None:
    assert flat_dumper(TimerSchema())(timer) == TimerSchema().dump(timer)


@settings(max_examples=300, deadline=None)
@given(clocks)
def test_a_clock_is_dumped_as_the_schema_dumps_it(clock: SlaClock) -> None:
    as_dict = clock.to_dict()
    assert flat_dumper(ClockSchema())(as_dict) == ClockSchema().dump(as_dict)


@settings(max_examples=100, deadline=None)
@given(st.lists(numbers, max_size=3), st.sampled_from(["x", 3, None, True]))
def test_odd_values_are_coerced_as_the_schema_coerces_them(
    warnings: list[float], name: Any
) -> None:
    odd = {"name": name, "warnings_reached": warnings, "target_seconds": 7, "round": 2.0}
    assert flat_dumper(ClockSchema())(odd) == ClockSchema().dump(odd)


def test_rows_of_the_timers_table_are_dumped_as_the_schema_dumps_them(
    fresh_sqlite_url: str,
) -> None:
    """The view hands the dumper rows of the armed-timers query, read by attribute."""
    app = create_app({"DATABASE_URL": fresh_sqlite_url, "REDIS_URL": "redis://127.0.0.1:9"})
    state.of(app).runtime.close()
    engine = create_engine(fresh_sqlite_url)
    now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    table = Timer.__table__
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            {
                "case_id": 1,
                "state_entry_seq": 1,
                "name": "loaner_due",
                "kind": "after",
                "sla": None,
                "trigger": "offer_loaner",
                "payload": {},
                "calendar": "24x7",
                "due_at": now,
                "deliver_at": now,
                "provisional": False,
                "status": "armed",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        row = conn.execute(select(table)).one()
        assert flat_dumper(TimerSchema())(row) == TimerSchema().dump(row)
    engine.dispose()


def test_schemas_the_dumper_cannot_copy_are_refused() -> None:
    class WithNested(ma.Schema):
        clock = ma.fields.Nested(ClockSchema)

    class WithHook(ma.Schema):
        name = ma.fields.String()

        @ma.post_dump
        def _shout(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
            return {k: str(v).upper() for k, v in data.items()}

    class WithDefault(ma.Schema):
        name = ma.fields.String(dump_default="x")

    for schema in (WithNested(), WithHook(), WithDefault()):
        with pytest.raises(TypeError, match="dump it with the schema"):
            flat_dumper(schema)


def test_the_openapi_document_still_describes_the_timers_and_clocks(
    fresh_sqlite_url: str,
) -> None:
    app = create_app({"DATABASE_URL": fresh_sqlite_url, "REDIS_URL": "redis://127.0.0.1:9"})
    spec = app.test_client().get("/api/openapi.json").get_json()
    state.of(app).runtime.close()
    case = spec["components"]["schemas"]["Case"]["properties"]
    assert case["timers"] == {"type": "array", "items": {"$ref": "#/components/schemas/Timer"}}
    assert case["sla"] == {"type": "array", "items": {"$ref": "#/components/schemas/Clock"}}
