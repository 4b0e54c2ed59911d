"""The fields the engine writes into a parent's payload are the ones engine/core/engine_fields.py
types and labels, so a definition naming them without a type accepts what the engine sends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import jsonschema

from engine.core.definition import WorkflowDefinition, parse_source
from engine.core.engine_fields import ENGINE_FIELDS
from engine.core.records import CaseRecord
from engine.core.validation import load_definition
from engine.services.links import NotifyParent, parent_call

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
AT = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)


def _bundled(name: str) -> WorkflowDefinition:
    return load_definition(parse_source((WORKFLOWS / f"{name}.yaml").read_text("utf-8")))


def test_a_childs_news_carries_the_engines_fields_as_its_parent_declares_them() -> None:
    loaner = _bundled("loaner")
    delivered = CaseRecord(
        id=7,
        definition_name="loaner",
        definition_version=1,
        business_key=None,
        state="delivered",
        status="open",
        data={},
        params={},
        version=3,
        created_at=AT,
        updated_at=AT,
        state_entered_at=AT,
        parent_id=3,
    )
    call = parent_call(NotifyParent(loaner, delivered, "transition", "delivered", 1))
    assert call is not None and call.trigger == "loaner_delivered"
    assert set(call.payload) <= set(ENGINE_FIELDS)

    # repair_ticket names them without a type: its schema is the engine's types.
    ticket = _bundled("repair_ticket")
    schemas = [t.payload_schema for t in ticket.transitions if t.trigger == "loaner_delivered"]
    assert schemas and all(schema == schemas[0] for schema in schemas)
    jsonschema.validate(call.payload, schemas[0])
    assert set(schemas[0]["properties"]) == set(call.payload)
