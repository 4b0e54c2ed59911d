"""The workbench service on SQLite and PostgreSQL: filters, sorts, keyset pages that neither
skip nor repeat a case, the most urgent clock of each row, why it is stuck, and the bounds
of exports and bulk targets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import WorkbenchQueryInvalid
from engine.services import workbench
from engine.services.inspection import Reason
from engine.services.workbench import Sort, WorkbenchQuery
from tests.conftest import T0
from tests.factories import create_case, fire

HOUR = timedelta(hours=1)

DESK = """\
name: wb_desk
title: {en: Desk, zh: 服务台}
initial: new
assignee: engineer
data_schema:
  type: object
  properties:
    hospital: {type: string}
    region: {type: string}
    urgency: {enum: [high, low]}
    engineer: {type: string}
    model: {type: string}
    hours: {type: integer}
states:
  - name: new
    title: {en: New, zh: 新建}
  - name: answered
    title: {en: Answered, zh: 已答复}
  - name: closed
    title: {en: Closed, zh: 已关闭}
    final: true
transitions:
  - trigger: answer
    source: new
    dest: answered
  - trigger: close
    source: [new, answered]
    dest: closed
slas:
  - name: response
    title: {en: Response, zh: 响应}
    target: {expr: "duration(string(data.hours) + 'h')"}
    start: {states: [new]}
    stop: {states: [answered, closed]}
supervision:
  customer: hospital
  team: region
  priority: urgency
  filters: [model]
"""


def _desk(sessions: sessionmaker[Session], n: int, **data: Any) -> int:
    values = {"hospital": f"H{n % 3}", "region": "East" if n % 2 else "West", "hours": n + 1}
    values |= {"urgency": "high" if n % 4 == 0 else "low", "model": f"CT-{n % 2}"}
    return create_case(
        sessions, "wb_desk", values | data, business_key=f"D-{n:03d}", now=T0
    ).case.id


def _page(sessions: sessionmaker[Session], q: WorkbenchQuery, **kw: Any) -> workbench.WorkbenchPage:
    with sessions() as session, session.begin():
        return workbench.page(session, q, now=T0 + 6 * HOUR, **kw)


def _all_pages(sessions: sessionmaker[Session], q: WorkbenchQuery) -> list[int]:
    seen: list[int] = []
    cursor = None
    while True:
        got = _page(sessions, q, after=cursor, limit=25)
        seen += [r.case.id for r in got.rows]
        cursor = got.next_cursor
        if cursor is None:
            return seen


@pytest.fixture
def desks(sessions: sessionmaker[Session], publish_workflow: Any) -> list[int]:
    publish_workflow(DESK)
    made = [_desk(sessions, n) for n in range(60)]
    fire(sessions, made[5], "answer", now=T0 + HOUR)  # its clock stopped: no urgency
    return made


def test_the_default_order_is_the_most_urgent_clock_first(
    sessions: sessionmaker[Session], desks: list[int]
) -> None:
    got = _page(sessions, WorkbenchQuery(), limit=25)

    assert got.total == 60
    first = got.rows[0]
    # Case 0 has a 1-hour clock started at T0: 5 hours overdue at T0+6h.
    assert first.case.id == desks[0]
    assert first.urgent is not None and first.urgent.name == "response"
    assert first.due_in(T0 + 6 * HOUR) == -5 * HOUR
    assert first.urgent.fraction == pytest.approx(6.0)
    assert first.labels == {
        "customer": "H0",
        "team": "West",
        "assignee": None,
        "priority": "high",
    }
    assert Reason.SLA_BREACHED in first.reasons
    # The answered case has no open clock: it sorts after every case with one.
    every = _all_pages(sessions, WorkbenchQuery())
    assert every[-1] == desks[5]


@pytest.mark.parametrize(
    "sort", [Sort.URGENCY, Sort.CUSTOMER, Sort.TEAM, Sort.BUSINESS_KEY, Sort.CREATED, Sort.UPDATED]
)
@pytest.mark.parametrize("descending", [False, True])
def test_keyset_pages_neither_skip_nor_repeat_a_case(
    sessions: sessionmaker[Session], desks: list[int], sort: Sort, descending: bool
) -> None:
    seen = _all_pages(sessions, WorkbenchQuery(sort=sort, descending=descending))
    assert sorted(seen) == sorted(desks)
    assert len(seen) == len(set(seen))


def test_sorting_by_customer_orders_by_customer_then_id(
    sessions: sessionmaker[Session], desks: list[int]
) -> None:
    rows = _page(sessions, WorkbenchQuery(sort=Sort.CUSTOMER, descending=True), limit=25).rows
    keys = [(r.labels["customer"], r.case.id) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert keys[0][0] == "H2"


def test_filters_on_labels_state_reason_and_offered_data_fields(
    sessions: sessionmaker[Session], desks: list[int]
) -> None:
    east_h1 = _page(sessions, WorkbenchQuery(team="East", customer="H1"), limit=50)
    assert east_h1.total == len([n for n in range(60) if n % 2 and n % 3 == 1])
    assert {(r.labels["team"], r.labels["customer"]) for r in east_h1.rows} == {("East", "H1")}

    answered = _page(sessions, WorkbenchQuery(state="answered"), limit=25)
    assert [r.case.id for r in answered.rows] == [desks[5]]

    # Clocks of 1..6 hours have run out at T0+6h (case 5's was stopped in time).
    breached = _page(sessions, WorkbenchQuery(reason=Reason.SLA_BREACHED), limit=25)
    assert sorted(r.case.id for r in breached.rows) == sorted(desks[n] for n in (0, 1, 2, 3, 4))

    model = _page(
        sessions, WorkbenchQuery(definition="wb_desk", data=(("model", "CT-1"),)), limit=50
    )
    assert model.total == 30


def test_a_data_field_the_definition_does_not_offer_is_refused_with_what_is(
    sessions: sessionmaker[Session], desks: list[int]
) -> None:
    with pytest.raises(WorkbenchQueryInvalid) as refused:
        _page(sessions, WorkbenchQuery(definition="wb_desk", data=(("hospital", "H1"),)))
    assert "model" in (refused.value.hint or "")


def test_a_cursor_that_cannot_be_read_is_refused(
    sessions: sessionmaker[Session], desks: list[int]
) -> None:
    first = _page(sessions, WorkbenchQuery(sort=Sort.CUSTOMER), limit=25)
    assert first.next_cursor is not None
    with pytest.raises(WorkbenchQueryInvalid):
        _page(sessions, WorkbenchQuery(sort=Sort.UPDATED), after=first.next_cursor, limit=25)
    with pytest.raises(WorkbenchQueryInvalid):
        _page(sessions, WorkbenchQuery(), after="not-a-cursor", limit=25)
    with pytest.raises(WorkbenchQueryInvalid):
        _page(sessions, WorkbenchQuery(), limit=7)


def test_bulk_targets_need_a_filter_and_come_in_its_order(
    sessions: sessionmaker[Session], desks: list[int]
) -> None:
    with sessions() as session, session.begin():
        with pytest.raises(WorkbenchQueryInvalid):
            workbench.matching_ids(session, WorkbenchQuery(), now=T0, limit=10)
        ids, total = workbench.matching_ids(
            session, WorkbenchQuery(team="East", sort=Sort.CREATED), now=T0, limit=10
        )
    assert total == 30
    assert ids == [desks[n] for n in range(1, 20, 2)]


def test_an_export_holds_every_matching_case_in_order_up_to_its_bound(
    sessions: sessionmaker[Session], desks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    with sessions() as session, session.begin():
        rows = list(workbench.export(session, WorkbenchQuery(team="West"), now=T0, batch=7))
    assert len(rows) == 30
    assert [r.case.id for r in rows][:3] == [desks[0], desks[2], desks[4]]
    monkeypatch.setattr(workbench, "EXPORT_MAX", 29)
    with sessions() as session, session.begin(), pytest.raises(WorkbenchQueryInvalid) as refused:
        list(workbench.export(session, WorkbenchQuery(team="West"), now=T0))
    assert refused.value.fields["matched"] == 30
