"""Plain-text tables and JSON output for the CLI.

Times in tables and messages are local (:func:`ts`, see engine/core/local_time.py); JSON
output keeps ISO 8601 UTC (:func:`jsonable`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

import click

from engine.core.local_time import local
from engine.core.records import FireOutcome


def ts(value: datetime | None, zone: tzinfo) -> str:
    """An instant for people: in the deployment's zone, to the second, with its offset."""
    return local(value, zone) if value is not None else ""


def jsonable(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        click.echo("  ".join(c + " " * (widths[i] - _width(c)) for i, c in enumerate(row)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def _width(text: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def retry_answer(timer_id: int, outcome: FireOutcome) -> str:
    """What became of a timer retry: re-armed, or dismissed because its case moved on."""
    if outcome.event.event_type == "timer_cancelled":
        return f"timer {timer_id} cancelled, not retried: {outcome.event.payload.get('why')}"
    return f"timer {timer_id} re-armed"
