"""Publishing and reading workflow definitions.

Publishing validates the source and stores it as the next immutable version; publishing a
document identical to an existing version returns that version instead of minting a new one,
so re-running ``svcflow definitions publish workflows/*.yaml`` at every start is harmless.

Functions take a session and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import LRUCache
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core.definition import (
    SYSTEM_ROLE,
    WorkflowDefinition,
    build_definition,
    parse_source,
)
from engine.core.diff import DefinitionDiff, diff_definitions
from engine.core.durations import parse_duration
from engine.core.limits import VALUE_MAX_CHARS
from engine.core.validation import ValidationReport, parameter_problems, validate_text
from engine.errors import (
    ConcurrencyConflict,
    DefinitionInvalid,
    DefinitionNotFound,
    DefinitionSourceError,
    DurationInvalid,
    ParameterInvalid,
    written,
)
from engine.store.calendar_store import load_calendars
from engine.store.models import (
    DefinitionAudit,
    DefinitionDraft,
    DefinitionHead,
    DefinitionVersion,
    ParameterOverride,
)


@dataclass(frozen=True)
class PublishResult:
    name: str
    version: int
    created: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class DefinitionSummary:
    name: str
    latest_version: int
    title_en: str
    title_zh: str
    versions: int
    published_at: datetime


def validate_source(
    session: Session, text: str, origin: str = "<definition>"
) -> tuple[Any, ValidationReport]:
    """Read and check definition text as publishing would: the document and every problem
    with its line, column and element path; calendars checked against this database's (an
    unknown one is an error). Raises only for text that is not YAML."""
    calendars = load_calendars(session).keys()
    return validate_text(text, origin, known_calendars=calendars, calendars_complete=True)


def _identical_version(session: Session, definition: WorkflowDefinition) -> int | None:
    """The stored version of ``definition``'s name with the same document, if any."""
    return session.execute(
        select(DefinitionVersion.version).where(
            DefinitionVersion.name == definition.name,
            DefinitionVersion.fingerprint == definition.fingerprint,
        )
    ).scalar_one_or_none()


def publish(
    session: Session,
    source: str,
    *,
    actor: str,
    now: datetime,
    origin: str = "<definition>",
) -> PublishResult:
    document, report = validate_source(session, source, origin)
    if not report.ok:
        name = document.get("name") if isinstance(document, dict) else None
        raise DefinitionInvalid(name if isinstance(name, str) else None, report.problems)
    definition = build_definition(document)
    existing = _identical_version(session, definition)
    if existing is not None:
        return PublishResult(definition.name, existing, created=False)
    latest = session.execute(
        select(func.max(DefinitionVersion.version)).where(DefinitionVersion.name == definition.name)
    ).scalar_one()
    deleted = session.execute(
        select(func.max(DefinitionAudit.version)).where(
            DefinitionAudit.name == definition.name, DefinitionAudit.action == "deleted"
        )
    ).scalar_one()
    # A deleted version's number is never given again: processes cache versions by number.
    version = max(latest or 0, deleted or 0) + 1
    row = DefinitionVersion(
        name=definition.name,
        version=version,
        title_en=definition.title.en,
        title_zh=definition.title.zh,
        source=source,
        document=dict(document),
        fingerprint=definition.fingerprint,
        published_at=now,
        published_by=actor,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        # Instances starting together all publish the bundled workflows; on PostgreSQL they
        # race. If the winner stored this very document, that is the answer, not a conflict.
        stored = _identical_version(session, definition)
        if stored is not None:
            return PublishResult(definition.name, stored, created=False)
        raise ConcurrencyConflict(
            f"Another publish of {definition.name!r} took version {version} at the same time.",
            hint="Publish again; an identical document will resolve to the version stored.",
            definition=definition.name,
        ) from exc
    # A new version becomes the one new cases get: a promotion pinned earlier gives way to it
    # (docs/versions.md); republishing an existing document changes nothing.
    head = session.get(DefinitionHead, definition.name)
    if head is not None and head.current_version is not None:
        head.current_version, head.updated_at, head.updated_by = None, now, actor
    warnings = [str(p) for p in report.warnings] + _news_open_to_callers(session, definition)
    return PublishResult(definition.name, version, created=True, warnings=tuple(warnings))


def _news_open_to_callers(session: Session, published: WorkflowDefinition) -> list[str]:
    """The triggers a child's ``parent.notify`` sends that its parent lets any caller fire
    (no ``roles``), between the definition just published and the latest of the others: a
    caller could forge the news (a loaner delivered, a repair completed). Roles named on
    purpose (stock booked by hand as well) are the author's decision. Checked at publish,
    where both documents are known; each document alone cannot tell."""
    latest = {d.name: d for d in list_definitions(session) if d.name != published.name}
    pairs: list[tuple[WorkflowDefinition, WorkflowDefinition]] = []  # (child, parent)
    if published.parent is not None and published.parent.definition in latest:
        pairs.append((published, get_definition(session, published.parent.definition)))
    for name in latest:
        other = get_definition(session, name)
        if other.parent is not None and other.parent.definition == published.name:
            pairs.append((other, published))
    out = []
    for child, parent in pairs:
        notify = child.parent
        assert notify is not None
        sent = {notify.on_created, notify.on_final, *notify.on_states.values()} - {None}
        for t in parent.transitions:
            if t.trigger in sent and not parent.roles_of(t):
                out.append(
                    f"{parent.name} {t.path} ({t.trigger!r}) is news {child.name} sends "
                    "(parent.notify), but any caller may fire it too: give it `roles: "
                    f"[{SYSTEM_ROLE}]` so that only the engine can, or name the roles that may."
                )
    return out


# Published versions never change, so a process keeps the ones it uses (per database URL),
# the least recently used going first when there are more than a deployment's few hundred.
_CACHE: LRUCache[tuple[str, str, int], WorkflowDefinition] = LRUCache(maxsize=512)
_CACHE_LOCK = threading.Lock()


# The version new cases get: the one promoted, else the latest not retired (else, for reading
# a definition all of whose versions are retired, the latest).
_PROMOTED = (
    select(DefinitionHead.current_version)
    .where(DefinitionHead.name == bindparam("name"))
    .scalar_subquery()
)
_LATEST_ACTIVE = (
    select(func.max(DefinitionVersion.version))
    .where(DefinitionVersion.name == bindparam("name"), DefinitionVersion.retired_at.is_(None))
    .scalar_subquery()
)
_LATEST = (
    select(func.max(DefinitionVersion.version))
    .where(DefinitionVersion.name == bindparam("name"))
    .scalar_subquery()
)
_SELECT_LATEST = select(func.coalesce(_PROMOTED, _LATEST_ACTIVE, _LATEST))


def get_definition(session: Session, name: str, version: int | None = None) -> WorkflowDefinition:
    """A published version (when ``version`` is None, the current one: promoted, else the
    latest not retired; engine/services/versions.py).

    Versions never change, so each is built once per process and database. Which version is
    the latest can change at any time (another process publishes), so it is asked every time:
    one index lookup, instead of reading and rebuilding the document (1.3 ms for
    repair_ticket) on every case created."""
    database = str(session.get_bind().engine.url)  # .engine: the bind may be a Connection
    if version is None:
        version = session.connection().execute(_SELECT_LATEST, {"name": name}).scalar_one()
    if version is not None:
        with _CACHE_LOCK:
            cached = _CACHE.get((database, name, version))
        if cached is not None:
            return cached
    row = session.execute(
        select(DefinitionVersion.version, DefinitionVersion.document).where(
            DefinitionVersion.name == name, DefinitionVersion.version == version
        )
    ).one_or_none()
    if row is None:
        raise DefinitionNotFound(
            f"No published definition {name!r}"
            + (f" version {version}." if version is not None else "."),
            hint="List published definitions with `svcflow definitions list`.",
            definition=name,
            version=version,
        )
    definition = build_definition(row.document, version=row.version)
    with _CACHE_LOCK:
        _CACHE[(database, name, row.version)] = definition
    return definition


def get_source(session: Session, name: str, version: int) -> str:
    source = session.execute(
        select(DefinitionVersion.source).where(
            DefinitionVersion.name == name, DefinitionVersion.version == version
        )
    ).scalar_one_or_none()
    if source is None:
        raise DefinitionNotFound(f"No published definition {name!r} version {version}.")
    return source


def list_definitions(session: Session) -> list[DefinitionSummary]:
    counts = (
        select(
            DefinitionVersion.name,
            func.max(DefinitionVersion.version).label("latest"),
            func.count().label("versions"),
        )
        .group_by(DefinitionVersion.name)
        .subquery()
    )
    rows = session.execute(
        select(DefinitionVersion, counts.c.versions)
        .join(
            counts,
            (DefinitionVersion.name == counts.c.name)
            & (DefinitionVersion.version == counts.c.latest),
        )
        .order_by(DefinitionVersion.name)
    ).all()
    return [
        DefinitionSummary(
            name=row.name,
            latest_version=row.version,
            title_en=row.title_en,
            title_zh=row.title_zh,
            versions=versions,
            published_at=row.published_at,
        )
        for row, versions in rows
    ]


def list_versions(session: Session, name: str) -> list[tuple[int, datetime, str]]:
    rows = session.execute(
        select(
            DefinitionVersion.version,
            DefinitionVersion.published_at,
            DefinitionVersion.published_by,
        )
        .where(DefinitionVersion.name == name)
        .order_by(DefinitionVersion.version)
    ).all()
    return [(r.version, r.published_at, r.published_by) for r in rows]


# --- deployment parameters ---------------------------------------------------------------------


def _coerce_parameter(
    session: Session,
    definition: WorkflowDefinition,
    name: str,
    value: Any,
    *,
    alongside: Mapping[str, Any] | None = None,
) -> Any:
    param = definition.parameters.get(name)
    if param is None:
        raise ParameterInvalid(
            f"Definition {definition.name!r} has no parameter {name!r}.",
            hint="Declared parameters: " + (", ".join(definition.parameters) or "none") + ".",
            definition=definition.name,
            parameter=name,
        )
    ok = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "duration": isinstance(value, str),
        "calendar": isinstance(value, str),
    }[param.type]
    if not ok:
        raise ParameterInvalid(
            f"Parameter {name!r} of {definition.name!r} takes a {param.type}, "
            f"not {written(value)}.",
            hint=f"Default is {written(param.default)}.",
            definition=definition.name,
            parameter=name,
        )
    if isinstance(value, str) and len(value) > VALUE_MAX_CHARS:
        # Expressions read parameters as they read case data, under the same limits.
        raise ParameterInvalid(
            f"Parameter {name!r} would hold {len(value):,} characters; a string holds at most "
            f"{VALUE_MAX_CHARS:,}.",
            hint="Keep long text elsewhere (docs/definitions.md, Limits).",
            definition=definition.name,
            parameter=name,
        )
    if param.type == "duration":
        try:
            parse_duration(value)
        except DurationInvalid as exc:
            raise ParameterInvalid(exc.message, hint=exc.hint, parameter=name) from exc
    if param.type == "calendar" and value not in load_calendars(session):
        known = sorted(load_calendars(session))
        raise ParameterInvalid(
            f"Parameter {name!r} of {definition.name!r} cannot be {value!r}: no calendar has "
            "that name in this database.",
            hint=f"Calendars here: {', '.join(known)}. Create it first (`svcflow calendars "
            "set`, or POST /api/v1/calendars), or fix the name.",
            definition=definition.name,
            parameter=name,
        )
    # The same rules as a duration written where the parameter is used, with the other
    # parameters it is used with (this deployment's as they are, unless given).
    others = alongside if alongside is not None else effective_parameters(session, definition)
    params = {**others, name: value}
    problems = parameter_problems(definition, params, name)
    if problems:
        use, problem = problems[0]
        raise ParameterInvalid(
            f"Parameter {name!r} of {definition.name!r} cannot be {value!r}: at {use.path}, "
            f"{problem.message}",
            hint=problem.hint
            + (
                " Change the calendar parameter first when both change."
                if use.calendar.param is not None and use.calendar.param != name
                else ""
            ),
            definition=definition.name,
            parameter=name,
        )
    return value


def check_parameter(
    session: Session,
    definition: WorkflowDefinition,
    name: str,
    value: Any,
    *,
    alongside: Mapping[str, Any] | None = None,
) -> Any:
    """The value ``name`` takes in ``definition`` when a deployment (``set-param``), a
    contract's terms or a migration sets it: one rule for all, checked against the calendars
    this database has. ``alongside``: the other parameters it is used with (default: the
    deployment's), e.g. a contract's calendar set together with its duration. Raises
    :class:`ParameterInvalid`."""
    return _coerce_parameter(session, definition, name, value, alongside=alongside)


def set_parameter(
    session: Session, definition_name: str, name: str, value: Any, *, actor: str, now: datetime
) -> None:
    """Override a parameter for this deployment; cases created afterwards use the value."""
    value = _coerce_parameter(session, get_definition(session, definition_name), name, value)
    row = session.execute(
        select(ParameterOverride).where(
            ParameterOverride.definition_name == definition_name, ParameterOverride.name == name
        )
    ).scalar_one_or_none()
    if row is None:
        session.add(
            ParameterOverride(
                definition_name=definition_name,
                name=name,
                value=value,
                updated_at=now,
                updated_by=actor,
            )
        )
    else:
        row.value, row.updated_at, row.updated_by = value, now, actor
    session.flush()


def effective_parameters(session: Session, definition: WorkflowDefinition) -> dict[str, Any]:
    """Defaults with this deployment's overrides on top (overrides of removed params ignored)."""
    params = definition.default_params()
    rows = session.execute(
        select(ParameterOverride.name, ParameterOverride.value).where(
            ParameterOverride.definition_name == definition.name
        )
    ).all()
    overrides: Mapping[str, Any] = {name: value for name, value in rows}
    params.update({k: v for k, v in overrides.items() if k in params})
    return params


# --- drafts ------------------------------------------------------------------------------------


DRAFT_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")  # the schema's identifier


def save_draft(session: Session, source: str, *, actor: str, now: datetime) -> str:
    """Store a draft under the name written in it (it need not be valid yet)."""
    document = parse_source(source, "<draft>")
    name = document.get("name") if isinstance(document, dict) else None
    if not isinstance(name, str) or not name:
        raise DefinitionSourceError(
            "A draft needs a top-level name.", hint="Add `name: your_workflow` to the document."
        )
    if not DRAFT_NAME.fullmatch(name):  # it names the draft's row (63 characters at most)
        raise DefinitionSourceError(
            f"A draft's name must be an identifier, not {name[:80]!r}.",
            hint="Lowercase letters, digits and _, starting with a letter, 63 at most.",
        )
    row = session.execute(
        select(DefinitionDraft).where(DefinitionDraft.name == name)
    ).scalar_one_or_none()
    if row is None:
        session.add(DefinitionDraft(name=name, source=source, updated_at=now, updated_by=actor))
    else:
        row.source, row.updated_at, row.updated_by = source, now, actor
    session.flush()
    return name


def get_draft(session: Session, name: str) -> DefinitionDraft:
    row = session.execute(
        select(DefinitionDraft).where(DefinitionDraft.name == name)
    ).scalar_one_or_none()
    if row is None:
        raise DefinitionNotFound(
            f"No draft named {name!r}.", hint="Upload one first.", definition=name
        )
    return row


def publish_draft(
    session: Session,
    name: str,
    *,
    actor: str,
    now: datetime,
) -> PublishResult:
    """Publish a draft as the next version; the draft is removed once published."""
    draft = get_draft(session, name)
    result = publish(
        session,
        draft.source,
        actor=actor,
        now=now,
        origin=f"draft {name}",
    )
    session.delete(draft)
    session.flush()
    return result


def diff_versions(session: Session, name: str, old: int, new: int) -> DefinitionDiff:
    return diff_definitions(
        get_definition(session, name, old),
        get_definition(session, name, new),
        get_source(session, name, old),
        get_source(session, name, new),
    )
