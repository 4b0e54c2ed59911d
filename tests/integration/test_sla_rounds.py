"""SLA rounds on the bundled complaint workflow (R-CMP-04): the feedback clock has ``rounds:
repeat``, so each rectification round's result has its own 2 working days. Each round is its
own row of ``case_slas`` with its own start, stop and breach, its own ``sla_breached`` event
naming the round, shown per round to readers, and counted per round in the monthly KPIs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.definition import parse_source
from engine.core.sla import BREACH_AFTER, ClockStatus, compute_clocks
from engine.services import cases, kpis, timer_firing
from engine.services.case_detail import case_detail
from engine.store.calendar_store import LazyCalendars
from engine.store.models import CaseSla
from tests.conftest import WORKFLOWS
from tests.factories import COMPLAINT_ROUNDS, complaint_with_two_rectification_rounds

AT = COMPLAINT_ROUNDS
KPI_CONFIG = parse_source((WORKFLOWS / "catalog" / "kpis.yaml").read_text("utf-8"))


def _feedback_rows(session: Session, case_id: int) -> list[tuple[object, ...]]:
    return [
        (r.round, r.status, r.started_at, r.stopped_at, r.breach_recorded)
        for r in session.execute(
            select(CaseSla)
            .where(CaseSla.case_id == case_id, CaseSla.sla == "feedback")
            .order_by(CaseSla.round)
        ).scalars()
    ]


def test_each_rectification_round_is_clocked_breached_and_kept_on_its_own(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow("complaint.yaml")
    case_id = complaint_with_two_rectification_rounds(sessions)
    now = AT["fed_back"] + timedelta(hours=1)

    with sessions() as session, session.begin():
        # Round 1: 20 March 16:00 to 25 March 09:00, breached; round 2: 25 March 14:00 to
        # 26 March 10:00, met. Each is a row of its own.
        assert _feedback_rows(session, case_id) == [
            (1, "breached", AT["first_finished"], AT["sent_back"], True),
            (2, "met", AT["second_finished"], AT["fed_back"], False),
        ]
        history = cases.history(session, case_id)
        breaches = [e.payload for e in history if e.event_type == "sla_breached"]
        assert breaches == [
            {
                "sla": "feedback",
                "round": 1,
                "due_at": (AT["first_due"] + BREACH_AFTER).isoformat(),
            }
        ]
        # The breach escalated once, naming the promise broken.
        case = cases.get_case(session, case_id)
        assert (case.state, case.data["escalated"]) == ("verified", ["feedback"])
        # The second round armed its own breach timer (its round in the payload), cancelled
        # when its result was fed back in time.
        second = [
            t
            for t in timer_firing.case_timers(session, case_id)
            if t.sla == "feedback" and t.kind == "sla_breached" and t.payload.get("round") == 2
        ]
        assert [(t.status, t.due_at) for t in second] == [
            ("cancelled", AT["second_due"] + BREACH_AFTER)
        ]

        # Readers (API, CLI, dashboard) see every round, from the kept rows as the history
        # has them.
        detail = case_detail(session, case_id, now=now)
        shown = [(c.name, c.round, c.status) for c in detail.clocks]
        assert shown == [
            ("first_contact", 1, ClockStatus.MET),
            ("investigation", 1, ClockStatus.MET),
            # One rectification round per attempt, both by rectify_by (R-CMP-04).
            ("rectification", 1, ClockStatus.MET),
            ("rectification", 2, ClockStatus.MET),
            ("feedback", 1, ClockStatus.BREACHED),
            ("feedback", 2, ClockStatus.MET),
        ]
        assert detail.clocks == compute_clocks(
            detail.definition,
            history,
            data=case.data,
            params=case.params,
            now=now,
            calendars=LazyCalendars(session),
        )
        # Round 2 is measured from its own start, not from the first round's: 20 hours, the
        # 25th and the 26th being working days (a target in days counts working days).
        feedback_2 = detail.clocks[-1]
        assert feedback_2.elapsed == AT["fed_back"] - AT["second_finished"]


def test_kpis_count_each_round_once(sessions: sessionmaker[Session], publish_workflow) -> None:
    """complaint_deadlines counts first_contact, investigation, every rectification round and
    every feedback round: five met of six, the late first feedback round the one breached."""
    publish_workflow("complaint.yaml")
    complaint_with_two_rectification_rounds(sessions)
    with sessions() as session, session.begin():
        rows = kpis.monthly_kpis(
            session, KPI_CONFIG, month="2025-03", group_by=None, now=AT["fed_back"]
        )
    (total,) = [r for r in rows if r.kpi == "complaint_deadlines"]
    assert (total.numerator, total.denominator) == (5, 6)
