"""When a fact reported late counts.

A hotline logs a call after it was made; an engineer's phone reports an arrival once it is
back online. A transition that declares ``occurred_at`` names the payload field carrying the
instant the fact happened, and the event counts at that instant, for its SLA clocks, the
state's timers and every ``now`` of the transition, within bounds that keep the history true
and in order (docs/timers.md, "Facts reported late"):

- not in the future: an instant more than :data:`CLOCK_SKEW` after the server received it is
  refused (a time zone mistake, usually); within it, it counts as received (two machines'
  clocks differ a little);
- not before the case's previous event: the history is in order, and what the engine already
  did on a deadline stays done; such a report counts at that event's instant;
- not older than the transition's window (``within``): a report older than that counts as
  received.

The event keeps both instants and the reason they differ in its context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.core.durations import format_timedelta
from engine.errors import PayloadInvalid, written

CLOCK_SKEW = timedelta(seconds=60)
DEFAULT_WITHIN = "24h"


@dataclass(frozen=True)
class OccurredAt:
    """A transition's ``occurred_at``: the payload field saying when the fact happened, and how
    long after it a report still counts at that instant."""

    field: str
    within: timedelta


@dataclass(frozen=True)
class CountedInstant:
    at: datetime  # the instant the event counts at
    reported: datetime  # the instant the caller reported
    received: datetime  # when svcflow received the report
    why: str | None = None  # why ``at`` is not ``reported``

    def context(self) -> dict[str, Any]:
        """What the event's context keeps of it: both instants, and why it counts elsewhere."""
        out: dict[str, Any] = {
            "reported_at": self.reported.isoformat(),
            "received_at": self.received.isoformat(),
        }
        if self.why:
            out["counted_at"] = self.at.isoformat()
            out["counted_because"] = self.why
        return out


def parse_reported(value: Any, *, trigger: str, field: str) -> datetime:
    """The reported instant: ISO 8601 with its UTC offset (without one, which zone was meant
    is a guess, and a guess moves an SLA clock by hours)."""
    where = f"payload.{field}"
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00+14:00 has no UTC
        parsed = None
    if parsed is None:
        raise PayloadInvalid(
            f"{where} {written(value)} is not a date and time.",
            hint="Send when it happened as ISO 8601 with its offset, e.g. "
            "2026-03-02T09:00:00+08:00.",
            trigger=trigger,
            path=where,
        )
    raise PayloadInvalid(
        f"{where} {value} has no UTC offset.",
        hint=f"Write it as {value}+08:00 for Beijing time.",
        trigger=trigger,
        path=where,
    )


def count_reported(
    reported: datetime,
    *,
    received: datetime,
    previous: datetime,
    spec: OccurredAt,
    trigger: str,
    previous_seq: int,
) -> CountedInstant:
    """The instant a fact reported at ``reported`` counts at, received at ``received`` on a
    case whose latest event is ``previous`` (seq ``previous_seq``)."""
    ahead = reported - received
    if ahead > CLOCK_SKEW:
        raise PayloadInvalid(
            f"payload.{spec.field} is {format_timedelta(ahead)} after the time svcflow received "
            f"it: a fact is reported after it happens.",
            hint="Check the time zone offset of the time sent (Beijing time is +08:00) and the "
            f"sender's clock; svcflow allows {format_timedelta(CLOCK_SKEW)} of difference.",
            trigger=trigger,
            path=f"payload.{spec.field}",
        )
    at, why = reported, None
    if reported > received:
        at, why = received, "reported after it was received (the clocks differ): counts as received"
    elif received - reported > spec.within:
        at, why = (
            received,
            f"reported more than {format_timedelta(spec.within)} after it happened (the "
            "transition's occurred_at.within): counts as received",
        )
    if at < previous:
        at, why = (
            previous,
            f"reported before the case's previous event (seq {previous_seq}), which it cannot "
            "precede: counts at that event's instant",
        )
    return CountedInstant(at=at, reported=reported, received=received, why=why)
