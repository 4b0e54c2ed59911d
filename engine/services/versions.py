"""Which version of a definition new cases get, and which take none: promote, retire,
restore, delete, each audited (``definition_audit``), and the versions with their cases.

Publishing a new version makes it current (engine/services/definitions.py); promoting makes
an existing one current instead, until the next new version is published. A retired version
or definition takes no new cases, spawned children included; its running cases continue
(and may be migrated, engine/services/case_migration.py). A version is deleted only while no
case uses it; its number is never given again.

Functions take a session and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from engine.errors import (
    DefinitionInUse,
    DefinitionNotFound,
    DefinitionRetired,
    OperationInvalid,
)
from engine.services.definitions import get_definition
from engine.store.models import (
    Case,
    CaseStatus,
    DefinitionAudit,
    DefinitionHead,
    DefinitionVersion,
    ParameterOverride,
)


class AuditAction(str, Enum):
    PROMOTED = "promoted"
    RETIRED = "retired"
    RESTORED = "restored"
    DELETED = "deleted"


@dataclass(frozen=True)
class VersionInfo:
    version: int
    published_at: datetime
    published_by: str
    current: bool
    retired_at: datetime | None = None
    retired_by: str | None = None
    open_by_state: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def running(self) -> int:
        return sum(self.open_by_state.values())


@dataclass(frozen=True)
class AuditEntry:
    version: int | None
    action: str
    actor: str
    reason: str
    at: datetime


def subject(name: str, version: int | None) -> str:
    """What a decision is about, in a message: the definition, or one version of it."""
    return name if version is None else f"{name} version {version}"


def _require_reason(reason: str | None, doing: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise OperationInvalid(
            f"Say why you are {doing}: the reason is kept in the definition's audit.",
            hint="Pass a reason (CLI --reason, API field reason).",
        )
    return reason


def current_version(session: Session, name: str) -> int:
    """The version new cases of ``name`` get (DefinitionNotFound if none is published)."""
    version = get_definition(session, name).version
    assert version is not None
    return version


def _version_row(session: Session, name: str, version: int) -> DefinitionVersion:
    row = session.execute(
        select(DefinitionVersion).where(
            DefinitionVersion.name == name, DefinitionVersion.version == version
        )
    ).scalar_one_or_none()
    if row is None:
        known = _version_numbers(session, name)
        raise DefinitionNotFound(
            f"No published definition {name!r} version {version}.",
            hint=(f"Versions of {name!r}: {', '.join(map(str, known))}." if known else None)
            or "List published definitions with `svcflow definitions list`.",
            definition=name,
            version=version,
        )
    return row


def _require_definition(session: Session, name: str) -> None:
    if not _version_numbers(session, name):
        raise DefinitionNotFound(
            f"No published definition {name!r}.",
            hint="List published definitions with `svcflow definitions list`.",
            definition=name,
        )


def _version_numbers(session: Session, name: str) -> list[int]:
    return list(
        session.execute(
            select(DefinitionVersion.version)
            .where(DefinitionVersion.name == name)
            .order_by(DefinitionVersion.version)
        ).scalars()
    )


def _head(session: Session, name: str, *, actor: str, now: datetime) -> DefinitionHead:
    head = session.get(DefinitionHead, name)
    if head is None:
        head = DefinitionHead(
            name=name, current_version=None, retired=False, updated_at=now, updated_by=actor
        )
        session.add(head)
    head.updated_at, head.updated_by = now, actor
    return head


def _audit(
    session: Session,
    name: str,
    version: int | None,
    action: AuditAction,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    session.add(
        DefinitionAudit(
            name=name, version=version, action=action.value, actor=actor, reason=reason, at=now
        )
    )


# --- reading -----------------------------------------------------------------------------------


_OPEN_BY_STATE = (
    select(Case.definition_version, Case.state, func.count())
    .where(Case.definition_name == bindparam("name"), Case.status == CaseStatus.OPEN.value)
    .group_by(Case.definition_version, Case.state)
)
_BY_STATUS = (
    select(Case.definition_version, Case.status, func.count())
    .where(Case.definition_name == bindparam("name"))
    .group_by(Case.definition_version, Case.status)
)


def versions(session: Session, name: str) -> list[VersionInfo]:
    """Every version of ``name``, oldest first: when and by whom published, whether current or
    retired, and its cases (open ones by state, all by status)."""
    rows = list(
        session.execute(
            select(DefinitionVersion)
            .where(DefinitionVersion.name == name)
            .order_by(DefinitionVersion.version)
        ).scalars()
    )
    if not rows:
        _require_definition(session, name)
    current = current_version(session, name)
    open_by_state: dict[int, dict[str, int]] = {}
    for version, state, count in session.execute(_OPEN_BY_STATE, {"name": name}):
        open_by_state.setdefault(version, {})[state] = count
    by_status: dict[int, dict[str, int]] = {}
    for version, status, count in session.execute(_BY_STATUS, {"name": name}):
        by_status.setdefault(version, {})[status] = count
    return [
        VersionInfo(
            version=r.version,
            published_at=r.published_at,
            published_by=r.published_by,
            current=r.version == current,
            retired_at=r.retired_at,
            retired_by=r.retired_by,
            open_by_state=dict(sorted(open_by_state.get(r.version, {}).items())),
            by_status=dict(sorted(by_status.get(r.version, {}).items())),
        )
        for r in rows
    ]


def is_retired(session: Session, name: str) -> bool:
    head = session.get(DefinitionHead, name)
    return bool(head is not None and head.retired)


def audit(session: Session, name: str) -> list[AuditEntry]:
    rows = session.execute(
        select(DefinitionAudit)
        .where(DefinitionAudit.name == name)
        .order_by(DefinitionAudit.at, DefinitionAudit.id)
    ).scalars()
    return [AuditEntry(r.version, r.action, r.actor, r.reason, r.at) for r in rows]


_RETIREMENT = (
    select(DefinitionHead.retired, DefinitionVersion.retired_at)
    .select_from(
        DefinitionVersion.__table__.outerjoin(
            DefinitionHead.__table__, DefinitionHead.name == DefinitionVersion.name
        )
    )
    .where(DefinitionVersion.name == bindparam("name"), DefinitionVersion.version == bindparam("v"))
)


def check_takes_new_cases(session: Session, name: str, version: int) -> None:
    """Refuse a new case of a retired definition or version (one statement: case creation
    is frequent)."""
    row = session.connection().execute(_RETIREMENT, {"name": name, "v": version}).one_or_none()
    if row is None:
        return  # get_definition has already said whether it exists
    if row.retired:
        raise DefinitionRetired(
            f"Definition {name!r} is retired: it takes no new cases (its running cases go on).",
            hint=f"Restore it with `svcflow definitions restore {name}` if it was retired by "
            "mistake.",
            definition=name,
        )
    if row.retired_at is not None:
        raise DefinitionRetired(
            f"Version {version} of {name!r} is retired: it takes no new cases.",
            hint="Create the case without a version to get the current one, or restore the "
            f"version with `svcflow definitions restore {name} --version {version}`.",
            definition=name,
            version=version,
        )


# --- deciding ----------------------------------------------------------------------------------


def promote(
    session: Session, name: str, version: int, *, actor: str, reason: str, now: datetime
) -> None:
    """Make ``version`` the one new cases get (a roll back, or a roll forward to an older
    published version), until a new version is published or another is promoted."""
    reason = _require_reason(reason, f"promoting {name} version {version}")
    row = _version_row(session, name, version)
    if row.retired_at is not None:
        raise DefinitionRetired(
            f"Version {version} of {name!r} is retired; a retired version cannot be current.",
            hint=f"Restore it first: `svcflow definitions restore {name} --version {version}`.",
            definition=name,
            version=version,
        )
    _head(session, name, actor=actor, now=now).current_version = version
    _audit(session, name, version, AuditAction.PROMOTED, actor=actor, reason=reason, now=now)
    session.flush()


def retire(
    session: Session,
    name: str,
    version: int | None,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    """Take no more new cases of ``name`` (``version`` None) or of one version of it; running
    cases continue. Retiring the promoted version returns new cases to the latest version
    not retired."""
    what = subject(name, version)
    reason = _require_reason(reason, f"retiring {what}")
    if version is None:
        _require_definition(session, name)
        _head(session, name, actor=actor, now=now).retired = True
    else:
        row = _version_row(session, name, version)
        if row.retired_at is None:
            row.retired_at, row.retired_by = now, actor
        head = session.get(DefinitionHead, name)
        if head is not None and head.current_version == version:
            head.current_version, head.updated_at, head.updated_by = None, now, actor
    _audit(session, name, version, AuditAction.RETIRED, actor=actor, reason=reason, now=now)
    session.flush()


def restore(
    session: Session,
    name: str,
    version: int | None,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    """Undo a retirement: the definition (``version`` None) or the version takes new cases
    again (a restored version is current only if it is the latest, or once promoted)."""
    what = subject(name, version)
    reason = _require_reason(reason, f"restoring {what}")
    if version is None:
        _require_definition(session, name)
        _head(session, name, actor=actor, now=now).retired = False
    else:
        row = _version_row(session, name, version)
        row.retired_at, row.retired_by = None, None
    _audit(session, name, version, AuditAction.RESTORED, actor=actor, reason=reason, now=now)
    session.flush()


def delete_version(
    session: Session,
    name: str,
    version: int | None,
    *,
    actor: str,
    reason: str,
    now: datetime,
) -> list[int]:
    """Delete a version (or, ``version`` None, every version of the definition and its
    deployment parameters) that no case uses. A case's history needs its version for as long
    as the case is kept, so deletion is refused while any case, running or closed, uses it:
    retire it instead. Returns the versions deleted."""
    what = subject(name, version)
    reason = _require_reason(reason, f"deleting {what}")
    targets = [version] if version is not None else _version_numbers(session, name)
    for v in targets:
        _version_row(session, name, v)
    if not targets:
        _require_definition(session, name)
    used = session.execute(
        select(Case.definition_version, Case.status, func.count())
        .where(Case.definition_name == name, Case.definition_version.in_(targets))
        .group_by(Case.definition_version, Case.status)
    ).all()
    if used:
        running = sum(n for _v, status, n in used if status == CaseStatus.OPEN.value)
        total = sum(n for _v, _s, n in used)
        raise DefinitionInUse(
            f"{what} is used by {total} case(s), {running} of them running; it cannot be deleted.",
            hint=f"Retire it instead (`svcflow definitions retire {name}"
            + (f" --version {version}" if version is not None else "")
            + "`): no new cases, the running ones continue. Running cases can be moved to "
            "another version first with `svcflow cases migrate`.",
            definition=name,
            version=version,
            running=running,
            cases=total,
        )
    session.execute(
        delete(DefinitionVersion).where(
            DefinitionVersion.name == name, DefinitionVersion.version.in_(targets)
        )
    )
    head = session.get(DefinitionHead, name)
    if version is None:
        session.execute(delete(ParameterOverride).where(ParameterOverride.definition_name == name))
        if head is not None:
            session.delete(head)
    elif head is not None and head.current_version == version:
        head.current_version, head.updated_at, head.updated_by = None, now, actor
    for v in targets:
        _audit(session, name, v, AuditAction.DELETED, actor=actor, reason=reason, now=now)
    session.flush()
    return targets
