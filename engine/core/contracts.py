"""Service contracts as values: which customers a bid covers, when, and on which terms.

A supplier serves several bids at once (a hospital under B3, schools under B2, ...). A
contract names the customers (and, for a device bought under another bid, the device serials)
it covers, the dates it is in force, and the definition parameters it sets: its terms. A case
created under a contract takes those terms on top of the deployment's parameters and keeps
them (they are snapshotted into the case, as parameters always are).

This module reads and checks a contract document on its own: its shape, its dates, its ids.
Whether each term is a value the definition's parameter takes is checked where the published
definitions are known (``engine.services.contracts``), by the very function that checks a
deployment's parameter override, so a contract accepts exactly what ``set-param`` accepts.
Every problem carries the element path; :func:`check_contract_text` adds its line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from engine.core.definition import parse_source
from engine.core.source_map import locate
from engine.core.validation import ValidationReport
from engine.errors import ProblemList, written

CONTRACT_ID = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,62}")
_KEYS = {
    "id": True,
    "title": True,
    "customers": True,
    "devices": False,
    "valid_from": True,
    "valid_until": False,
    "parameters": True,
    "calendar": False,
    "team": False,
    "description": False,
}
NAME_MAX_CHARS = 200  # a customer name, a device serial, a team: as case data holds them


@dataclass(frozen=True)
class Contract:
    """One version of a contract. ``parameters`` maps a definition name to the values the
    contract sets for its parameters; ``valid_until`` None is open-ended."""

    id: str
    title_en: str
    title_zh: str
    customers: tuple[str, ...]
    devices: tuple[str, ...]
    valid_from: date
    valid_until: date | None
    parameters: Mapping[str, Mapping[str, Any]]
    calendar: str | None = None
    team: str | None = None
    description: str = ""
    version: int | None = None
    fingerprint: str = field(default="", compare=False)

    def in_force(self, instant: datetime, zone: tzinfo) -> bool:
        """Whether the contract covers ``instant``: its dates are days in ``zone``, both
        ends included."""
        day = instant.astimezone(zone).date()
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)

    def terms_for(self, definition: str) -> dict[str, Any]:
        return dict(self.parameters.get(definition, {}))

    def document(self) -> dict[str, Any]:
        """The contract as JSON values (dates as ISO 8601): what is stored and fingerprinted."""
        out: dict[str, Any] = {
            "id": self.id,
            "title": {"en": self.title_en, "zh": self.title_zh},
            "customers": list(self.customers),
            "devices": list(self.devices),
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "parameters": {d: dict(v) for d, v in self.parameters.items()},
            "calendar": self.calendar,
            "team": self.team,
            "description": self.description,
        }
        return out


def contract_from_document(document: Mapping[str, Any], version: int | None = None) -> Contract:
    """Build a contract from a checked document (or one stored by :meth:`Contract.document`)."""
    title = document["title"]
    until = document.get("valid_until")
    contract = Contract(
        id=document["id"],
        title_en=title["en"],
        title_zh=title["zh"],
        customers=tuple(document["customers"]),
        devices=tuple(document.get("devices") or ()),
        valid_from=_as_date(document["valid_from"]),
        valid_until=_as_date(until) if until is not None else None,
        parameters={d: dict(v) for d, v in document["parameters"].items()},
        calendar=document.get("calendar"),
        team=document.get("team"),
        description=str(document.get("description") or ""),
        version=version,
    )
    text = json.dumps(contract.document(), sort_keys=True, ensure_ascii=False)
    return _with_fingerprint(contract, hashlib.sha256(text.encode()).hexdigest())


def _with_fingerprint(contract: Contract, fingerprint: str) -> Contract:
    object.__setattr__(contract, "fingerprint", fingerprint)
    return contract


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def check_contract(document: Any) -> ProblemList:
    """Every problem of the document's shape, each at its element path."""
    out = ProblemList()
    if not isinstance(document, dict):
        out.error(
            "",
            "not-a-mapping",
            f"A contract is a mapping with id, title, customers, ...; got {written(document)}.",
            "See docs/contracts.md for a complete example.",
        )
        return out
    for key, required in _KEYS.items():
        if required and key not in document:
            out.error("", "missing-key", f"A contract needs {key!r}.", f"Add `{key}:`.")
    for key in document:
        if key not in _KEYS:
            out.error(
                str(key),
                "unknown-key",
                f"Unknown key {key!r}.",
                f"Keys of a contract: {', '.join(_KEYS)}.",
            )
    _check_id(document.get("id"), out)
    _check_title(document.get("title"), out)
    for key in ("customers", "devices"):
        if key in document:
            _check_names(document[key], key, out, required=key == "customers")
    for key in ("calendar", "team", "description"):
        if key in document and not _text(document[key]):
            out.error(key, "not-text", f"{key} must be text, not {written(document[key])}.")
    _check_dates(document, out)
    _check_parameters(document.get("parameters"), out)
    return out


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and len(value) <= NAME_MAX_CHARS * 10


def _check_id(value: Any, out: ProblemList) -> None:
    if value is not None and not (isinstance(value, str) and CONTRACT_ID.fullmatch(value)):
        out.error(
            "id",
            "bad-identifier",
            f"{written(value)} is not a contract id.",
            "Lowercase letters, digits, _ and -, starting with a letter, 63 at most (e.g. b3).",
        )


def _check_title(value: Any, out: ProblemList) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        out.error("title", "bad-title", "title must be a mapping {en: ..., zh: ...}.")
        return
    for lang in ("en", "zh"):
        if not _text(value.get(lang)):
            out.error(f"title.{lang}", "bad-title", f"title.{lang} must be non-empty text.")


def _check_names(value: Any, key: str, out: ProblemList, *, required: bool) -> None:
    if not isinstance(value, list) or (required and not value):
        out.error(
            key,
            "bad-list",
            f"{key} must be a list of names" + (" with at least one" if required else "") + ".",
            f"e.g. {key}: [濮阳市人民医院]" if key == "customers" else f"e.g. {key}: [BA-PY-0003]",
        )
        return
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item) > NAME_MAX_CHARS:
            out.error(
                f"{key}[{index}]",
                "bad-name",
                f"{written(item)} is not a name (text of 1 to {NAME_MAX_CHARS} characters).",
            )
        elif item in seen:
            out.error(f"{key}[{index}]", "duplicate-name", f"{item!r} is listed twice.")
        else:
            seen.add(item)


def _check_dates(document: Mapping[str, Any], out: ProblemList) -> None:
    parsed: dict[str, date] = {}
    for key in ("valid_from", "valid_until"):
        value = document.get(key)
        if value is None:
            continue
        if isinstance(value, date) and not isinstance(value, datetime):
            parsed[key] = value
            continue
        try:
            if not isinstance(value, str):
                raise ValueError(key)
            parsed[key] = date.fromisoformat(value)
        except ValueError:
            out.error(
                key,
                "bad-date",
                f"{key} {written(value)} is not a date.",
                "Write a day as YYYY-MM-DD, e.g. 2026-01-01.",
            )
    start, end = parsed.get("valid_from"), parsed.get("valid_until")
    if start is not None and end is not None and end < start:
        out.error(
            "valid_until",
            "bad-period",
            f"valid_until {end} is before valid_from {start}.",
            "The period includes both days; swap them or fix the year.",
        )


def _check_parameters(value: Any, out: ProblemList) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        out.error(
            "parameters",
            "bad-parameters",
            "parameters maps a definition to its parameter values.",
            "e.g. parameters: {repair_ticket: {loaner_after: 12h}}",
        )
        return
    for definition, values in value.items():
        path = f"parameters.{definition}"
        if not isinstance(definition, str) or not _IDENTIFIER.fullmatch(definition):
            out.error(path, "bad-identifier", f"{written(definition)} is not a definition name.")
            continue
        if not isinstance(values, dict) or not values:
            out.error(
                path,
                "bad-parameters",
                f"{path} must map parameter names to values.",
                "e.g. loaner_after: 12h",
            )


def check_contract_text(text: str, origin: str = "<contract>") -> tuple[Any, ValidationReport]:
    """Read contract text: the document and every problem of its shape with its line.
    Raises :class:`~engine.errors.DefinitionSourceError` only for text that is not YAML."""
    document = parse_source(text, origin)
    return document, ValidationReport(check_contract(document).items).located(locate(text))
