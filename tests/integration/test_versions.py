"""Which version new cases get, on SQLite and PostgreSQL: promote back to v1, retire a version
or a definition (no new cases, running ones continue), deletion refused while cases use a
version, every decision in the audit, and the versions listed with their cases by state.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import DefinitionInUse, DefinitionNotFound, DefinitionRetired, OperationInvalid
from engine.services import definitions, versions
from tests.conftest import T0
from tests.factories import create_case, fire
from tests.workflows import PLAIN

PLAIN_V2 = PLAIN.replace("title: {en: Plain, zh: 简单}", "title: {en: Plain 2, zh: 简单二}")
PLAIN_V3 = PLAIN.replace("title: {en: Plain, zh: 简单}", "title: {en: Plain 3, zh: 简单三}")


@pytest.fixture
def plain_v1_v2(publish_workflow: Callable[[str], int]) -> None:
    assert publish_workflow(PLAIN) == 1
    assert publish_workflow(PLAIN_V2) == 2


def _decide(sessions: sessionmaker[Session], action: str, *args: object, **kw: object) -> object:
    with sessions() as session, session.begin():
        return getattr(versions, action)(
            session, *args, actor="owner", reason=kw.pop("reason", "because"), now=T0, **kw
        )


def _new_case_version(sessions: sessionmaker[Session], **options: object) -> int:
    return create_case(sessions, "plain", **options).case.definition_version


@pytest.mark.usefixtures("plain_v1_v2")
def test_promote_back_to_v1_gives_new_cases_v1_until_a_new_version_is_published(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    assert _new_case_version(sessions) == 2
    _decide(sessions, "promote", "plain", 1)
    assert _new_case_version(sessions) == 1
    # Republishing v2's document changes nothing: it is a version that exists.
    assert publish_workflow(PLAIN_V2) == 2
    assert _new_case_version(sessions) == 1
    assert publish_workflow(PLAIN_V3) == 3
    assert _new_case_version(sessions) == 3
    with sessions() as session, session.begin():
        audit = versions.audit(session, "plain")
    assert [(a.action, a.version, a.actor, a.reason) for a in audit] == [
        ("promoted", 1, "owner", "because")
    ]


@pytest.mark.usefixtures("plain_v1_v2")
def test_a_retired_version_takes_no_new_cases_and_its_running_cases_continue(
    sessions: sessionmaker[Session],
) -> None:
    running = create_case(sessions, "plain", version=2).case.id
    _decide(sessions, "retire", "plain", 2)
    assert _new_case_version(sessions) == 1  # the latest version not retired
    with pytest.raises(DefinitionRetired, match="Version 2 of 'plain' is retired"):
        create_case(sessions, "plain", version=2)
    assert fire(sessions, running, "finish").case.status == "completed"
    with pytest.raises(DefinitionRetired, match="cannot be current"):
        _decide(sessions, "promote", "plain", 2)
    _decide(sessions, "restore", "plain", 2)
    assert _new_case_version(sessions) == 2


@pytest.mark.usefixtures("plain_v1_v2")
def test_a_retired_definition_takes_no_new_cases_until_restored(
    sessions: sessionmaker[Session],
) -> None:
    running = create_case(sessions, "plain").case.id
    _decide(sessions, "retire", "plain", None)
    for options in ({}, {"version": 1}):
        with pytest.raises(DefinitionRetired, match="'plain' is retired"):
            create_case(sessions, "plain", **options)
    assert fire(sessions, running, "finish").case.status == "completed"
    _decide(sessions, "restore", "plain", None)
    assert _new_case_version(sessions) == 2


@pytest.mark.usefixtures("plain_v1_v2")
def test_delete_is_refused_while_cases_use_the_version_and_numbers_are_not_reused(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    create_case(sessions, "plain", version=1)
    with pytest.raises(DefinitionInUse, match="1 of them running") as caught:
        _decide(sessions, "delete_version", "plain", 1)
    assert "retire" in (caught.value.hint or "")
    assert _decide(sessions, "delete_version", "plain", 2) == [2]
    with sessions() as session, session.begin():
        assert [v.version for v in versions.versions(session, "plain")] == [1]
    # The next document gets 3: processes cache versions by number.
    assert publish_workflow(PLAIN_V3) == 3
    with sessions() as session, session.begin():
        assert definitions.get_definition(session, "plain").title.en == "Plain 3"


@pytest.mark.usefixtures("plain_v1_v2")
def test_versions_list_dates_authors_current_and_cases_by_state(
    sessions: sessionmaker[Session],
) -> None:
    create_case(sessions, "plain", version=1)
    done = create_case(sessions, "plain", version=1).case.id
    fire(sessions, done, "finish")
    create_case(sessions, "plain")
    with sessions() as session, session.begin():
        found = versions.versions(session, "plain")
    assert [(v.version, v.current, v.published_by) for v in found] == [
        (1, False, "test"),
        (2, True, "test"),
    ]
    assert found[0].open_by_state == {"open": 1}
    assert found[0].by_status == {"completed": 1, "open": 1}
    assert found[1].open_by_state == {"open": 1} and found[1].running == 1


def test_decisions_need_a_reason_and_a_known_version(
    sessions: sessionmaker[Session], publish_workflow: Callable[[str], int]
) -> None:
    publish_workflow(PLAIN)
    with pytest.raises(OperationInvalid, match="Say why"):
        _decide(sessions, "promote", "plain", 1, reason=" ")
    with pytest.raises(DefinitionNotFound, match="Versions of 'plain': 1"):
        _decide(sessions, "promote", "plain", 7)
    with pytest.raises(DefinitionNotFound):
        _decide(sessions, "retire", "nothing", None)
