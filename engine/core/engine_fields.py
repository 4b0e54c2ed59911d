"""The payload fields the engine itself writes, with their types and labels.

A parent hears of its child cases through triggers whose payload the engine fills
(``parent.notify``: ``child_id``, ``child_definition``, ``child_state``), and an SLA breach
fires its ``on_breach`` trigger with the clock's name (``sla``). Every definition receiving
them used to declare and label these fields itself, the same way each time. The engine says
it once here: a payload names them without a type (``payload: {sla!}``), and their labels
come with them; a definition's ``fields`` entry may relabel one, never retype it
(docs/definitions.md, "Field labels").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from engine.core.labels import Label


@dataclass(frozen=True)
class EngineField:
    """A field the engine writes: its type in the field language, and its label."""

    type: str
    label: Label


ENGINE_FIELDS: Mapping[str, EngineField] = MappingProxyType(
    {
        # parent.notify (engine/services/links.py, parent_call)
        "child_id": EngineField("integer", Label(en="Child case", zh="子工单")),
        "child_definition": EngineField(
            "string", Label(en="Child case's workflow", zh="子工单流程")
        ),
        "child_state": EngineField("string", Label(en="Child case's state", zh="子工单状态")),
        # an SLA's on_breach trigger (engine/services/timer_firing.py)
        "sla": EngineField("text", Label(en="Time limit", zh="超时时限")),
    }
)
