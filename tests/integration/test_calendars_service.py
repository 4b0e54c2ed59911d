"""Business calendars kept in the database: built-ins, overrides, custom calendars, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.core.calendar import BusinessCalendar, WorkingWindow
from engine.errors import CalendarError
from engine.services import cases, timer_firing
from engine.services.calendars import (
    get_calendar_info,
    list_calendars,
    load_calendars,
    save_calendar,
)
from tests.conftest import ADMIN, T0

NATIONAL_DAY_2025 = date(2025, 10, 1)


def _save(sessions: sessionmaker[Session], name: str, **kwargs: Any) -> Any:
    with sessions() as session, session.begin():
        return save_calendar(session, name, actor="admin", now=T0, **kwargs)


def _info(sessions: sessionmaker[Session], name: str) -> Any:
    with sessions() as session, session.begin():
        return get_calendar_info(session, name)


def _plant_calendar() -> BusinessCalendar:
    """A plant working Monday to Saturday 08:00-16:00, closed for its own anniversary."""
    shift = (WorkingWindow(time(8), time(16)),)
    return BusinessCalendar(
        name="draft",
        timezone="Asia/Shanghai",
        weekly=dict.fromkeys(range(6), shift),
        holidays=frozenset({date(2025, 10, 13)}),
    )


def test_the_built_in_calendars_are_always_listed(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        listed = {info.name: info for info in list_calendars(session)}
    assert set(listed) == {"24x7", "cn-workdays"}
    for name in ("24x7", "cn-workdays"):
        assert (listed[name].builtin, listed[name].base, listed[name].revision) == (True, name, 0)
        assert listed[name].overrides == {}
    assert not listed["cn-workdays"].calendar.is_working_day(NATIONAL_DAY_2025)
    assert listed["cn-workdays"].calendar.is_working_day(date(2025, 10, 11))  # make-up day
    assert listed["24x7"].calendar.is_working_day(NATIONAL_DAY_2025)


def test_overrides_round_trip_and_each_save_bumps_the_revision(
    sessions: sessionmaker[Session],
) -> None:
    first = _save(
        sessions,
        "cn-workdays",
        overrides={
            "holidays_add": ["2025-10-10", "2025-10-09"],
            "covered_years_add": [2027],
        },
    )
    assert first.revision == 1
    assert first.overrides == {
        "holidays_add": ["2025-10-09", "2025-10-10"],
        "covered_years_add": [2027],
    }
    stored = _info(sessions, "cn-workdays")
    assert stored.overrides == first.overrides
    assert not stored.calendar.is_working_day(date(2025, 10, 9))
    assert 2027 in (stored.calendar.covered_years or ())

    # Overrides replace the stored ones as a whole.
    second = _save(sessions, "cn-workdays", overrides={"workdays_add": ["2025-10-12"]})
    assert second.revision == 2
    assert second.overrides == {"workdays_add": ["2025-10-12"]}
    assert second.calendar.is_working_day(date(2025, 10, 9))
    assert second.calendar.is_working_day(date(2025, 10, 12))  # a Sunday made a working day
    with sessions() as session, session.begin():
        assert load_calendars(session)["cn-workdays"].is_working_day(date(2025, 10, 12))


def test_a_named_calendar_on_the_cn_base_keeps_the_statutory_schedule(
    sessions: sessionmaker[Session],
) -> None:
    info = _save(sessions, "hospital-x", overrides={"holidays_add": ["2025-10-09"]})
    assert (info.name, info.builtin, info.base, info.revision) == (
        "hospital-x",
        False,
        "cn-workdays",
        1,
    )
    assert not info.calendar.is_working_day(NATIONAL_DAY_2025)
    assert not info.calendar.is_working_day(date(2025, 10, 9))
    # The built-in itself is unchanged.
    assert _info(sessions, "cn-workdays").calendar.is_working_day(date(2025, 10, 9))


def test_a_custom_calendar_from_a_full_definition(sessions: sessionmaker[Session]) -> None:
    info = _save(sessions, "plant-b", definition=_plant_calendar().to_dict())
    assert (info.builtin, info.base, info.revision, info.overrides) == (False, None, 1, {})
    calendar = info.calendar
    assert calendar.name == "plant-b"  # the saved name wins over the document's
    assert calendar.is_working_day(date(2025, 10, 11))  # Saturday
    assert not calendar.is_working_day(date(2025, 10, 12))  # Sunday
    assert not calendar.is_working_day(date(2025, 10, 13))  # the plant's own holiday
    assert calendar.is_working_day(NATIONAL_DAY_2025)  # no statutory holidays here
    # Fri 10 Oct 15:00 + 2 working hours: 15-16 Friday, 08-09 Saturday.
    start = datetime(2025, 10, 10, 7, 0, tzinfo=UTC)
    due = calendar.add_working_time(start, timedelta(hours=2))
    assert due.at == datetime(2025, 10, 11, 1, 0, tzinfo=UTC)

    again = _save(sessions, "plant-b", definition={**_plant_calendar().to_dict(), "holidays": []})
    assert again.revision == 2
    assert again.calendar.is_working_day(date(2025, 10, 13))
    with sessions() as session, session.begin():
        names = [i.name for i in list_calendars(session)]
    assert names == ["24x7", "cn-workdays", "plant-b"]


SHIFT_WORK = """\
name: tcs_shift_work
title: {en: Shift work, zh: 班次工作}
initial: open
states:
  - name: open
    title: {en: Open, zh: 打开}
    timers:
      - {name: follow_up, after: 2h, calendar: plant-b, trigger: follow_up}
  - name: followed_up
    title: {en: Followed up, zh: 已跟进}
    final: true
transitions:
  - trigger: follow_up
    source: open
    dest: followed_up
"""


def test_saving_a_custom_calendar_moves_the_timers_that_use_it(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    _save(sessions, "plant-b", definition=_plant_calendar().to_dict())
    publish_workflow(SHIFT_WORK)
    start = datetime(2025, 10, 10, 7, 0, tzinfo=UTC)  # Fri 15:00 Shanghai
    with sessions() as session, session.begin():
        case_id = cases.create_case(session, "tcs_shift_work", {}, actor=ADMIN, now=start).case.id

    def armed() -> list[datetime]:
        with sessions() as session, session.begin():
            return [
                t.due_at for t in timer_firing.case_timers(session, case_id) if t.status == "armed"
            ]

    assert armed() == [datetime(2025, 10, 11, 1, 0, tzinfo=UTC)]  # Sat 09:00
    saturday_off = _plant_calendar().to_dict()
    saturday_off["holidays"] = ["2025-10-11"]
    _save(sessions, "plant-b", definition=saturday_off)
    assert armed() == [datetime(2025, 10, 13, 1, 0, tzinfo=UTC)]  # Mon 09:00


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        (
            "cn-workdays",
            {"overrides": {"holidays_add": ["2025-13-01"]}},
            "holidays_add of calendar 'cn-workdays' has a bad value",
        ),
        (
            "cn-workdays",
            {"overrides": {"holidays_add": "2025-10-09"}},
            "holidays_add must be a list",
        ),
        (
            "cn-workdays",
            {"overrides": {"covered_years_add": ["next year"]}},
            "covered_years_add of calendar 'cn-workdays' has a bad value",
        ),
        (
            "cn-workdays",
            {"overrides": {"holiday_add": ["2025-10-09"]}},
            "Unknown override key(s) for calendar 'cn-workdays': holiday_add.",
        ),
        (
            "cn-workdays",
            {"overrides": {"holidays_add": ["2025-10-09"], "workdays_add": ["2025-10-09"]}},
            "Overrides list 2025-10-09 in both holidays_add and workdays_add.",
        ),
        ("24x7", {"overrides": {"holidays_add": ["2025-10-09"]}}, "cannot be changed"),
        ("plant-b", {}, "Give either overrides"),
        (
            "plant-b",
            {"overrides": {}, "definition": {}},
            "Give either overrides (on a built-in base) or a full calendar definition.",
        ),
        (
            "cn-workdays",
            {"definition": {"timezone": "Asia/Shanghai"}},
            "'cn-workdays' is built in: store overrides on it instead",
        ),
        (
            "plant-b",
            {"overrides": {}, "base": "plant-a"},
            "Overrides need a built-in base, not 'plant-a'.",
        ),
        (
            "plant-b",
            {"definition": {"timezone": "Asia/Shanghai", "weekly": {}}},
            "Stored calendar is malformed at the top level",
        ),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_is_stored(
    sessions: sessionmaker[Session], name: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(CalendarError) as caught:
        _save(sessions, name, **kwargs)
    assert message in caught.value.message
    with sessions() as session, session.begin():
        assert [(i.name, i.revision) for i in list_calendars(session)] == [
            ("24x7", 0),
            ("cn-workdays", 0),
        ]


def test_unknown_keys_are_named_with_the_allowed_ones(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(CalendarError) as caught:
        _save(sessions, "cn-workdays", overrides={"extra_days": [], "holidays_add": []})
    assert "extra_days" in caught.value.message
    assert caught.value.hint is not None
    assert "holidays_add" in caught.value.hint and "covered_years_add" in caught.value.hint
    assert caught.value.fields == {"calendar": "cn-workdays"}


def test_an_unknown_calendar_is_named_in_the_error(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(CalendarError, match="No calendar named 'plant-c'"):
        _info(sessions, "plant-c")
