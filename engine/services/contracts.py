"""Loading and reading service contracts, and the terms a new case takes from one.

Loading checks a contract against this database: every definition it names is published,
every term is a value that definition's parameter takes (checked by
:func:`engine.services.definitions.check_parameter`, the rule ``set-param`` follows,
so the two can never disagree), its calendar exists, and no customer or device is covered by
two contracts in force on the same day. A changed file becomes the next version; an unchanged
one is left as it is, so ``svcflow init`` may load the files at every start.

Which contract a new case is under (:func:`contract_for_case`): the one named, else its
parent's, else the one whose ``devices`` list the case's ``data.device_serial``, else the one
whose ``customers`` list its ``data.customer``, among those in force that day; else none, and
the case takes the deployment's parameters as before contracts existed.

Functions take a session and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cachetools import LRUCache
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.core.contracts import Contract, check_contract_text, contract_from_document
from engine.core.definition import SITE_CALENDAR, WorkflowDefinition
from engine.core.local_time import DEFAULT_TIMEZONE
from engine.core.source_map import locate
from engine.core.validation import ValidationReport
from engine.errors import (
    ContractInvalid,
    ContractNotFound,
    ContractNotInForce,
    DefinitionNotFound,
    ParameterInvalid,
    ProblemList,
)
from engine.services.definitions import check_parameter, effective_parameters, get_definition
from engine.store.calendar_store import load_calendars
from engine.store.models import ContractVersion

# A contract's dates are days on the calendar of the bids: Beijing time.
CONTRACT_ZONE = ZoneInfo(DEFAULT_TIMEZONE)
# The case data fields a contract's coverage is matched on: (field, contract list).
MATCHED_BY = (("device_serial", "devices"), ("customer", "customers"))


@dataclass(frozen=True)
class LoadResult:
    name: str
    version: int
    created: bool


@dataclass(frozen=True)
class ContractSummary:
    contract: Contract  # the latest version
    versions: int
    loaded_at: datetime


# --- checking and loading ----------------------------------------------------------------------


def validate_contract_source(
    session: Session, text: str, origin: str = "<contract>"
) -> tuple[Any, ValidationReport]:
    """Every problem of contract text as loading would find it, each with its line. Raises
    only for text that is not YAML."""
    document, report = check_contract_text(text, origin)
    if not report.ok:
        return document, report
    out = ProblemList()
    contract = contract_from_document(document)
    _check_terms(session, contract, out)
    if contract.calendar == "24x7":
        out.error(
            "calendar",
            "contract-calendar-wall-clock",
            "A contract's calendar names its customers' working days; 24x7 has none.",
            "Name a business calendar (cn-workdays, or one stored with svcflow calendars), or "
            "leave calendar out: clocks on the wall clock stay there either way.",
        )
    elif contract.calendar is not None and contract.calendar not in load_calendars(session):
        out.error(
            "calendar",
            "unknown-calendar",
            f"Calendar {contract.calendar!r} does not exist in this database.",
            "Create it (svcflow calendars) or name a built-in one: 24x7, cn-workdays.",
        )
    _check_coverage(session, contract, document, out)
    return document, ValidationReport(out.items).located(locate(text))


def _check_terms(session: Session, contract: Contract, out: ProblemList) -> None:
    for definition_name, terms in contract.parameters.items():
        path = f"parameters.{definition_name}"
        try:
            definition = get_definition(session, definition_name)
        except DefinitionNotFound:
            out.error(
                path,
                "unknown-definition",
                f"No published definition {definition_name!r}.",
                "Publish it first (svcflow init publishes the bundled ones), or fix the name.",
            )
            continue
        alongside = {**effective_parameters(session, definition), **terms}
        for name, value in terms.items():
            try:
                check_parameter(session, definition, str(name), value, alongside=alongside)
            except ParameterInvalid as exc:
                out.error(f"{path}.{name}", exc.code, exc.message, exc.hint or "")


def _check_coverage(
    session: Session, contract: Contract, document: Mapping[str, Any], out: ProblemList
) -> None:
    """A customer or device in two contracts in force on one day would make the matching
    rule pick one silently: refused where it is written."""
    for other in latest_contracts(session):
        if other.id == contract.id or not _overlap(contract, other):
            continue
        for key in ("customers", "devices"):
            theirs = set(getattr(other, key))
            for index, item in enumerate(document.get(key) or ()):
                if item in theirs:
                    out.error(
                        f"{key}[{index}]",
                        "covered-twice",
                        f"{item!r} is covered by contract {other.id!r} too, in force on some "
                        "of the same days.",
                        f"Remove it from one of them, or make their periods not overlap "
                        f"(svcflow contracts show {other.id}).",
                    )


def _overlap(a: Contract, b: Contract) -> bool:
    a_ends = a.valid_until or datetime.max.date()
    b_ends = b.valid_until or datetime.max.date()
    return a.valid_from <= b_ends and b.valid_from <= a_ends


def load_contract(
    session: Session, text: str, *, actor: str, now: datetime, origin: str = "<contract>"
) -> LoadResult:
    """Check and store contract text as the contract's next version (or find it unchanged)."""
    document, report = validate_contract_source(session, text, origin)
    if not report.ok:
        name = document.get("id") if isinstance(document, dict) else None
        raise ContractInvalid(name if isinstance(name, str) else None, report.errors, origin)
    contract = contract_from_document(document)
    latest = session.execute(
        select(ContractVersion.version, ContractVersion.fingerprint)
        .where(ContractVersion.name == contract.id)
        .order_by(ContractVersion.version.desc())
        .limit(1)
    ).one_or_none()
    if latest is not None and latest.fingerprint == contract.fingerprint:
        return LoadResult(contract.id, latest.version, created=False)
    version = (latest.version if latest is not None else 0) + 1
    session.add(
        ContractVersion(
            name=contract.id,
            version=version,
            title_en=contract.title_en,
            title_zh=contract.title_zh,
            source=text,
            document=contract.document(),
            fingerprint=contract.fingerprint,
            loaded_at=now,
            loaded_by=actor,
        )
    )
    session.flush()
    return LoadResult(contract.id, version, created=True)


# --- reading -----------------------------------------------------------------------------------

# Versions never change: each is built once per process and database.
_CACHE: LRUCache[tuple[str, str, int], Contract] = LRUCache(maxsize=256)
_CACHE_LOCK = threading.Lock()


def _built(session: Session, name: str, version: int, document: Mapping[str, Any]) -> Contract:
    key = (str(session.get_bind().engine.url), name, version)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is None:
        cached = contract_from_document(document, version=version)
        with _CACHE_LOCK:
            _CACHE[key] = cached
    return cached


def get_contract(session: Session, name: str, version: int | None = None) -> Contract:
    """A stored version of a contract (the latest when ``version`` is None)."""
    query = select(ContractVersion.version, ContractVersion.document).where(
        ContractVersion.name == name
    )
    if version is not None:
        query = query.where(ContractVersion.version == version)
    row = session.execute(query.order_by(ContractVersion.version.desc()).limit(1)).one_or_none()
    if row is None:
        known = [c.id for c in latest_contracts(session)]
        raise ContractNotFound(
            f"No contract {name!r}" + (f" version {version}." if version is not None else "."),
            hint="Contracts here: "
            + (", ".join(known) or "none")
            + ". Load one with `svcflow contracts load FILE` (docs/contracts.md).",
            contract=name,
            version=version,
        )
    return _built(session, name, row.version, row.document)


def get_source(session: Session, name: str, version: int) -> str:
    source = session.execute(
        select(ContractVersion.source).where(
            ContractVersion.name == name, ContractVersion.version == version
        )
    ).scalar_one_or_none()
    if source is None:
        raise ContractNotFound(f"No contract {name!r} version {version}.", contract=name)
    return source


def latest_contracts(session: Session) -> list[Contract]:
    latest = (
        select(ContractVersion.name, func.max(ContractVersion.version).label("version"))
        .group_by(ContractVersion.name)
        .subquery()
    )
    rows = session.execute(
        select(ContractVersion.name, ContractVersion.version, ContractVersion.document)
        .join(
            latest,
            (ContractVersion.name == latest.c.name) & (ContractVersion.version == latest.c.version),
        )
        .order_by(ContractVersion.name)
    ).all()
    return [_built(session, r.name, r.version, r.document) for r in rows]


def list_contracts(session: Session) -> list[ContractSummary]:
    counts = dict(
        session.execute(
            select(ContractVersion.name, func.count()).group_by(ContractVersion.name)
        ).all()
    )
    loaded = dict(
        session.execute(
            select(ContractVersion.name, func.max(ContractVersion.loaded_at)).group_by(
                ContractVersion.name
            )
        ).all()
    )
    return [ContractSummary(c, counts[c.id], loaded[c.id]) for c in latest_contracts(session)]


def list_versions(session: Session, name: str) -> list[tuple[int, datetime, str]]:
    rows = session.execute(
        select(ContractVersion.version, ContractVersion.loaded_at, ContractVersion.loaded_by)
        .where(ContractVersion.name == name)
        .order_by(ContractVersion.version)
    ).all()
    return [(r.version, r.loaded_at, r.loaded_by) for r in rows]


# --- a new case's contract and terms -----------------------------------------------------------


def contract_for_case(
    session: Session,
    data: Mapping[str, Any],
    *,
    now: datetime,
    named: str | None = None,
    inherited: tuple[str, int] | None = None,
) -> Contract | None:
    """The contract a case created at ``now`` with ``data`` is under (module docstring).

    ``named``: given by the caller, whose latest version must be in force; ``inherited``:
    (name, version) of the parent's, kept as the parent has it."""
    if named is not None:
        contract = get_contract(session, named)
        if not contract.in_force(now, CONTRACT_ZONE):
            until = contract.valid_until.isoformat() if contract.valid_until else "open-ended"
            raise ContractNotInForce(
                f"Contract {named!r} is in force from {contract.valid_from.isoformat()} to "
                f"{until}, not on {now.astimezone(CONTRACT_ZONE).date().isoformat()}.",
                hint="Name the contract in force for this customer, or none for the "
                "deployment's defaults; `svcflow contracts list` shows the periods.",
                contract=named,
            )
        return contract
    if inherited is not None:
        return get_contract(session, *inherited)
    candidates = None
    for data_field, key in MATCHED_BY:
        value = data.get(data_field)
        if not isinstance(value, str):
            continue
        if candidates is None:
            candidates = [c for c in latest_contracts(session) if c.in_force(now, CONTRACT_ZONE)]
        for contract in candidates:
            if value in getattr(contract, key):
                return contract
    return None


def terms_for_case(
    session: Session,
    definition: WorkflowDefinition,
    contract: Contract,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    """``params`` (the deployment's) with the contract's terms for ``definition`` on top, each
    checked against this version of the definition by the rule ``set-param`` follows."""
    terms = contract.terms_for(definition.name)
    out = dict(params)
    alongside = {**out, **{k: v for k, v in terms.items() if k in out}}
    for name, value in terms.items():
        if name not in out:  # a parameter this version of the definition does not have
            continue
        try:
            out[name] = check_parameter(session, definition, name, value, alongside=alongside)
        except ParameterInvalid as exc:
            raise ParameterInvalid(
                f"Contract {contract.id!r} version {contract.version}: {exc.message}",
                hint=exc.hint,
                contract=contract.id,
                parameter=name,
            ) from exc
    if contract.calendar is not None:
        out[SITE_CALENDAR] = contract.calendar  # every business clock counts on it
    return out


def data_for_case(
    definition: WorkflowDefinition, contract: Contract, data: Mapping[str, Any]
) -> dict[str, Any]:
    """``data`` with the contract's team, where the definition records a team as text and the
    caller named none: KPIs group by ``data.team``. A definition whose ``team`` is something
    else (a complaint's is an object: manager, expert, regional lead) keeps its own."""
    declared = (definition.data_schema.get("properties") or {}).get("team")
    takes_text = isinstance(declared, Mapping) and declared.get("type") == "string"
    if contract.team is None or not takes_text or "team" in data:
        return dict(data)
    return {**data, "team": contract.team}
