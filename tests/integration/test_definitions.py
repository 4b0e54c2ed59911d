"""Publishing definitions, running cases on the version they started with, deployment
parameters, business keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import (
    BusinessKeyTaken,
    CaseNotFound,
    DefinitionInvalid,
    DefinitionNotFound,
    GuardRejected,
    InvalidTrigger,
    ParameterInvalid,
)
from engine.services import cases
from engine.services.calendars import save_calendar
from engine.services.definitions import (
    PublishResult,
    effective_parameters,
    get_definition,
    get_source,
    list_definitions,
    list_versions,
    publish,
    set_parameter,
)
from engine.store.database import create_db_engine, session_factory
from engine.store.models import DefinitionVersion
from tests.conftest import T0
from tests.factories import create_case, fire
from tests.workflows import COUNTER, PLAIN, VERSIONED_V1, VERSIONED_V2

LATER = T0.replace(hour=6)


def _publish(sessions: sessionmaker[Session], source: str) -> PublishResult:
    with sessions() as session, session.begin():
        return publish(session, source, actor="test", now=T0)


def test_publishing_the_same_text_twice_keeps_one_version(
    sessions: sessionmaker[Session], row_count
) -> None:
    first = _publish(sessions, VERSIONED_V1)
    again = _publish(sessions, VERSIONED_V1)

    assert (first.version, first.created) == (1, True)
    assert (again.version, again.created) == (1, False)
    assert row_count(DefinitionVersion) == 1
    # Formatting alone does not make a new version: the document is what counts.
    reformatted = _publish(sessions, "# a comment\n" + VERSIONED_V1.replace(": ", ":  "))
    assert (reformatted.version, reformatted.created) == (1, False)


def test_changed_document_gets_the_next_version_and_both_stay_readable(
    sessions: sessionmaker[Session],
) -> None:
    assert _publish(sessions, VERSIONED_V1).version == 1
    v2 = _publish(sessions, VERSIONED_V2)
    assert (v2.version, v2.created) == (2, True)
    # Republishing the old text (e.g. a deploy that rolls back) resolves to version 1.
    assert _publish(sessions, VERSIONED_V1) == PublishResult("it_versioned", 1, False)

    with sessions() as session, session.begin():
        assert get_source(session, "it_versioned", 1) == VERSIONED_V1
        assert get_source(session, "it_versioned", 2) == VERSIONED_V2
        assert get_definition(session, "it_versioned").version == 2
        assert "parked" not in get_definition(session, "it_versioned", 1).state_names
        assert "parked" in get_definition(session, "it_versioned", 2).state_names
        assert [v for v, _, _ in list_versions(session, "it_versioned")] == [1, 2]
        [summary] = list_definitions(session)
        assert (summary.name, summary.latest_version, summary.versions) == ("it_versioned", 2, 2)
        with pytest.raises(DefinitionNotFound):
            get_definition(session, "it_versioned", 3)


def test_case_keeps_running_the_version_it_started_on(sessions: sessionmaker[Session]) -> None:
    _publish(sessions, VERSIONED_V1)
    old = create_case(sessions, "it_versioned", {"count": 0}).case
    _publish(sessions, VERSIONED_V2)
    new = create_case(sessions, "it_versioned", {"count": 0}).case
    pinned = create_case(sessions, "it_versioned", {"count": 0}, version=1).case

    assert (old.definition_version, new.definition_version, pinned.definition_version) == (1, 2, 1)
    assert fire(sessions, old.id, "ping").case.data == {"count": 1}
    assert fire(sessions, pinned.id, "ping").case.data == {"count": 1}
    assert fire(sessions, new.id, "ping").case.data == {"count": 5}
    with pytest.raises(InvalidTrigger):
        fire(sessions, old.id, "park")
    assert fire(sessions, new.id, "park").case.state == "parked"
    done = fire(sessions, old.id, "finish")
    assert (done.case.state, done.case.status, done.case.definition_version) == (
        "done",
        "completed",
        1,
    )


def test_invalid_definition_is_refused_and_nothing_is_stored(
    sessions: sessionmaker[Session], row_count
) -> None:
    broken = VERSIONED_V1.replace("dest: done", "dest: finished").replace(
        "      - increment: count", "      - set: {count: 'data.count +'}"
    )
    with pytest.raises(DefinitionInvalid) as info:
        _publish(sessions, broken)

    paths = {p.path for p in info.value.problems}
    assert "transitions[1].dest" in paths
    assert any(p.startswith("transitions[0].actions[0]") for p in paths)
    assert row_count(DefinitionVersion) == 0


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("limit", "3"),
        ("limit", True),
        ("limit", 2.5),
        ("label", 7),
        ("window", "soon"),
        ("window", 3600),
        ("ratio", "1.5"),
        ("strict", "yes"),
        ("no_such_parameter", 1),
    ],
)
def test_set_parameter_checks_name_and_type(
    sessions: sessionmaker[Session], publish_workflow, parameter: str, value: object
) -> None:
    publish_workflow(COUNTER)

    with pytest.raises(ParameterInvalid) as info, sessions() as session, session.begin():
        set_parameter(session, "it_counter", parameter, value, actor="test", now=T0)

    assert info.value.fields["parameter"] == parameter
    with sessions() as session, session.begin():
        definition = get_definition(session, "it_counter")
        assert effective_parameters(session, definition) == definition.default_params()


def test_parameter_overrides_reach_new_cases_only(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(COUNTER)
    before = create_case(sessions, "it_counter", {"count": 1}).case
    with sessions() as session, session.begin():
        set_parameter(session, "it_counter", "limit", 1, actor="test", now=T0)
        set_parameter(session, "it_counter", "window", "4h", actor="test", now=T0)
        set_parameter(session, "it_counter", "ratio", 2, actor="test", now=T0)
    with sessions() as session, session.begin():
        set_parameter(session, "it_counter", "limit", 0, actor="test", now=LATER)
    after = create_case(sessions, "it_counter", {"count": 1}).case

    assert before.params == {
        "limit": 3,
        "label": "plain",
        "window": "2h",
        "ratio": 1.5,
        "strict": False,
    }
    assert after.params == {
        "limit": 0,
        "label": "plain",
        "window": "4h",
        "ratio": 2,
        "strict": False,
    }
    # The guard data.count >= params.limit reads each case's own parameters.
    with pytest.raises(GuardRejected):
        fire(sessions, before.id, "submit")
    assert fire(sessions, after.id, "submit").case.state == "review"
    with sessions() as session, session.begin():
        assert cases.get_case(session, before.id).params["limit"] == 3


def test_business_keys_are_unique_per_definition(
    sessions: sessionmaker[Session], publish_workflow, snapshot
) -> None:
    publish_workflow(COUNTER)
    publish_workflow(PLAIN)
    first = create_case(sessions, "it_counter", {"count": 0}, business_key="RT-2025-0001").case
    before = snapshot(first.id)

    with pytest.raises(BusinessKeyTaken) as info:
        create_case(sessions, "it_counter", {"count": 4}, business_key="RT-2025-0001")
    assert info.value.fields["case_id"] == first.id
    assert snapshot(first.id) == before

    elsewhere = create_case(sessions, "plain", {}, business_key="RT-2025-0001").case
    unkeyed = [create_case(sessions, "it_counter", {"count": 0}).case for _ in range(2)]

    with sessions() as session, session.begin():
        assert cases.find_case(session, "it_counter", "RT-2025-0001") == first
        assert cases.find_case(session, "plain", "RT-2025-0001").id == elsewhere.id
        with pytest.raises(CaseNotFound):
            cases.find_case(session, "it_counter", "RT-2025-0002")
    assert all(c.business_key is None for c in unkeyed)


def test_two_databases_in_one_process_keep_their_own_documents(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """The caches of built and compiled definitions must not leak one database's version 1
    into another's (tests, migrations and tools hold several databases in one process)."""
    outcomes = {}
    for label, source in (("a", VERSIONED_V1), ("b", VERSIONED_V2)):
        path = tmp_path / f"{label}.db"
        shutil.copyfile(sqlite_template, path)
        engine = create_db_engine(f"sqlite:///{path}")
        try:
            sessions = session_factory(engine)
            assert _publish(sessions, source).version == 1
            case = create_case(sessions, "it_versioned", {"count": 0}).case
            outcomes[label] = fire(sessions, case.id, "ping").case.data["count"]
        finally:
            engine.dispose()

    assert outcomes == {"a": 1, "b": 5}


def test_the_latest_version_follows_a_publish_by_another_process(
    db_url: str, sessions: sessionmaker[Session]
) -> None:
    """Versions are cached per process; which one is the latest is asked every time, so a new
    case gets the version another process published a moment ago."""
    with sessions() as session, session.begin():
        publish(session, VERSIONED_V1, actor="test", now=T0)
    assert create_case(sessions, "it_versioned").case.definition_version == 1

    elsewhere = create_db_engine(db_url)  # another process's engine and sessions
    with session_factory(elsewhere)() as session, session.begin():
        publish(session, VERSIONED_V2, actor="test", now=T0)
    elsewhere.dispose()

    assert create_case(sessions, "it_versioned").case.definition_version == 2
    with sessions() as session:
        assert get_definition(session, "it_versioned").version == 2


NEWS_PARENT = """\
name: it_news_parent
title: {en: Parent, zh: 父}
initial: open
states:
  - {name: open, title: {en: Open, zh: 打开}}
  - {name: done, title: {en: Done, zh: 完成}, final: true}
transitions:
  - {trigger: child_done, source: open, dest: done%s}
"""
NEWS_CHILD = """\
name: it_news_child
title: {en: Child, zh: 子}
initial: open
parent: {definition: it_news_parent, notify: {final: child_done}}
states:
  - {name: open, title: {en: Open, zh: 打开}}
  - {name: closed, title: {en: Closed, zh: 关闭}, final: true}
transitions:
  - {trigger: close, source: open, dest: closed}
"""


def test_publishing_warns_when_a_childs_news_is_open_to_callers(
    sessions: sessionmaker[Session],
) -> None:
    """A child's parent.notify trigger left open in the parent could be forged by a caller;
    publishing either side says so, and says nothing once the parent keeps it to the engine."""
    open_parent = _publish(sessions, NEWS_PARENT % "")
    child = _publish(sessions, NEWS_CHILD)

    (warning,) = child.warnings
    assert "it_news_parent transitions[0] ('child_done') is news it_news_child sends" in warning
    assert "any caller may fire it" in warning and "roles: [system]" in warning
    assert open_parent.warnings == ()  # the child was not published yet

    assert _publish(sessions, NEWS_PARENT % ", roles: [system]").warnings == ()
    # roles named on purpose (booked by hand as well) are the author's decision
    assert _publish(sessions, NEWS_PARENT % ", roles: [integrator]").warnings == ()


BUSINESS = """\
name: it_business
title: {en: Business, zh: 工作时间}
initial: open
parameters:
  answer_within: {type: duration, default: 4h}
states:
  - name: open
    title: {en: Open, zh: 打开}
    timers:
      - {after: {param: answer_within}, calendar: %s, trigger: expire}
  - {name: closed, title: {en: Closed, zh: 关闭}, final: true}
transitions:
  - {trigger: expire, source: open, dest: closed}
  - {trigger: answer, source: open, dest: closed}
"""


def test_publishing_refuses_a_calendar_this_database_does_not_have(
    sessions: sessionmaker[Session], row_count
) -> None:
    """A misspelt calendar used to publish with a warning and then fail every case entering
    the state; a calendar saved in the database publishes."""
    with pytest.raises(DefinitionInvalid) as refused:
        _publish(sessions, BUSINESS % "cn_workdays")

    (problem,) = refused.value.problems
    assert (problem.code, problem.path) == ("unknown-calendar", "states[0].timers[0].calendar")
    assert (problem.line, problem.hint) == (10, "Did you mean 'cn-workdays'?")
    assert row_count(DefinitionVersion) == 0

    with sessions() as session, session.begin():
        save_calendar(session, "hospital", actor="test", now=T0, overrides={}, base="cn-workdays")
    assert _publish(sessions, BUSINESS % "hospital").created


def test_set_parameter_holds_an_override_to_the_rules_of_the_calendar_it_runs_on(
    sessions: sessionmaker[Session],
) -> None:
    _publish(sessions, BUSINESS % "cn-workdays")

    with pytest.raises(ParameterInvalid) as refused, sessions() as session, session.begin():
        set_parameter(session, "it_business", "answer_within", "1d4h", actor="test", now=T0)

    assert (
        "at states[0].timers[0].after, Duration '1d4h' mixes days with hours on business "
        "calendar 'cn-workdays'" in str(refused.value)
    )
    with sessions() as session, session.begin():
        set_parameter(session, "it_business", "answer_within", "1d", actor="test", now=T0)
        set_parameter(session, "it_business", "answer_within", "6h", actor="test", now=T0)
