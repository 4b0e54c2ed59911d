"""Stuck-case inspection on SQLite and PostgreSQL: each rule trips on the case it is written for
and stays quiet on its near miss, and ``counts`` agrees with ``inspect``.

Time is injected: cases are created and moved at chosen instants, and the inspection asks
"what is stuck at ``now``" for a ``now`` the test picks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import GuardRejected
from engine.services import cases, inspection, links, operations, timer_firing
from engine.services.inspection import Finding, Reason, Settings
from engine.store.models import CaseSla, DwellStat, TimerStatus
from tests.conftest import ADMIN, T0
from tests.factories import create_case, deliver, fire

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

# No timers, no SLAs: nothing moves these cases but people.
FLOW = """\
name: ins_flow
title: {en: Flow, zh: 流程}
initial: new
data_schema:
  type: object
  properties:
    notes: {type: integer, minimum: 0}
states:
  - name: new
    title: {en: New, zh: 新建}
  - name: triage
    title: {en: Triage, zh: 分诊}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - trigger: note
    source: [new, triage]
    dest: new
    actions:
      - increment: notes
  - trigger: triage
    source: new
    dest: triage
  - trigger: finish
    source: [new, triage]
    dest: done
"""

# A four-hour response clock with a warning at half time, paused while waiting for the
# customer and stopped by an answer (a state that is not final: the case stays open).
SLA = """\
name: ins_sla
title: {en: Response, zh: 响应}
initial: open
states:
  - name: open
    title: {en: Open, zh: 打开}
  - name: waiting
    title: {en: Waiting for the customer, zh: 等待客户}
  - name: answered
    title: {en: Answered, zh: 已答复}
  - name: closed
    title: {en: Closed, zh: 已关闭}
    final: true
transitions:
  - trigger: wait
    source: open
    dest: waiting
  - trigger: back
    source: waiting
    dest: open
  - trigger: answer
    source: open
    dest: answered
  - trigger: close
    source: [open, waiting, answered]
    dest: closed
slas:
  - name: response
    title: {en: Response, zh: 响应}
    target: 4h
    start: {states: [open]}
    pause: {states: [waiting]}
    stop: {states: [answered]}
    warn_at: [0.5]
"""

# A state timer whose trigger is guarded (it fails while data.allowed is false), and a state
# with a long timer (a case there is waiting on purpose, not stalled).
TIMED = """\
name: ins_timed
title: {en: Timed, zh: 定时}
initial: waiting
data_schema:
  type: object
  required: [allowed]
  properties:
    allowed: {type: boolean}
states:
  - name: waiting
    title: {en: Waiting, zh: 等待}
    timers:
      - {name: chase, after: 1h, trigger: chase}
  - name: chased
    title: {en: Chased, zh: 已催办}
  - name: parked
    title: {en: Parked, zh: 搁置}
    timers:
      - {name: review, after: 30d, trigger: review}
  - name: done
    title: {en: Done, zh: 完成}
    final: true
transitions:
  - trigger: chase
    source: waiting
    dest: chased
    guard: "data.allowed"
  - trigger: park
    source: waiting
    dest: parked
  - trigger: review
    source: parked
    dest: waiting
  - trigger: finish
    source: [waiting, chased, parked]
    dest: done
"""

# A job that sends out a loaner (a child case) and waits for it to come back.
PARENT = """\
name: ins_job
title: {en: Job, zh: 工单}
initial: new
assignee: engineer
data_schema:
  type: object
  properties:
    device: {type: string}
    engineer: {type: string}
states:
  - name: new
    title: {en: New, zh: 新建}
  - name: waiting_loaner
    title: {en: Waiting for the loaner, zh: 等待备用机}
  - name: on_hold
    title: {en: On hold, zh: 挂起}
  - name: loaner_back
    title: {en: Loaner back, zh: 备用机已归还}
  - name: closed
    title: {en: Closed, zh: 已关闭}
    final: true
transitions:
  - trigger: send_loaner
    source: new
    dest: waiting_loaner
    actions:
      - spawn:
          definition: ins_loaner
          data: {device: data.device}
  - trigger: hold
    source: waiting_loaner
    dest: on_hold
  - trigger: release
    source: on_hold
    dest: waiting_loaner
  - trigger: loaner_returned
    source: waiting_loaner
    dest: loaner_back
  - trigger: close
    source: [new, waiting_loaner, on_hold, loaner_back]
    dest: closed
"""

CHILD = """\
name: ins_loaner
title: {en: Loaner, zh: 备用机}
initial: out
data_schema:
  type: object
  properties:
    device: {type: string}
states:
  - name: out
    title: {en: Out, zh: 借出}
  - name: returned
    title: {en: Returned, zh: 已归还}
    final: true
parent:
  definition: ins_job
  notify: {final: loaner_returned}
transitions:
  - trigger: return
    source: out
    dest: returned
"""


# --- helpers -----------------------------------------------------------------------------------


DEFAULTS = Settings()


def _inspect(
    sessions: sessionmaker[Session],
    now: datetime,
    *reasons: Reason,
    settings: Settings = DEFAULTS,
    limit: int = 500,
    definition: str | None = None,
) -> list[Finding]:
    with sessions() as session, session.begin():
        return inspection.inspect(
            session,
            now=now,
            settings=settings,
            limit=limit,
            reasons=reasons or None,
            definition=definition,
        )


def _ids(findings: Iterable[Finding], reason: Reason) -> list[int]:
    return [f.case_id for f in findings if f.reason is reason]


def _armed(sessions: sessionmaker[Session], case_id: int) -> dict[str, Any]:
    with sessions() as session, session.begin():
        return {
            t.name: t
            for t in timer_firing.case_timers(session, case_id)
            if t.status == TimerStatus.ARMED.value
        }


# --- SLA clocks --------------------------------------------------------------------------------


def test_a_running_clock_past_due_is_breached_and_a_stopped_late_one_is_not(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(SLA)
    running = create_case(sessions, "ins_sla").case.id  # due T0+4h, still running
    answered_late = create_case(sessions, "ins_sla").case.id
    fire(sessions, answered_late, "answer", now=T0 + 5 * HOUR)  # breached, but stopped
    on_time = create_case(sessions, "ins_sla", now=T0 + 3 * HOUR).case.id  # due T0+7h
    paused_late = create_case(sessions, "ins_sla").case.id
    fire(sessions, paused_late, "wait", now=T0 + 5 * HOUR)  # paused after its target
    paused_early = create_case(sessions, "ins_sla").case.id
    fire(sessions, paused_early, "wait", now=T0 + HOUR)  # paused within it
    closed = create_case(sessions, "ins_sla").case.id
    fire(sessions, closed, "close", now=T0 + 5 * HOUR)

    findings = _inspect(sessions, T0 + 6 * HOUR, Reason.SLA_BREACHED)

    assert sorted(_ids(findings, Reason.SLA_BREACHED)) == sorted([running, paused_late])
    first = next(f for f in findings if f.case_id == running)
    assert (first.since, first.detail, first.ref) == (T0 + 4 * HOUR, "SLA response", "response")
    assert first.definition == "ins_sla" and first.state == "open"
    assert first.action == inspection.ACTIONS[Reason.SLA_BREACHED]
    assert on_time not in _ids(findings, Reason.SLA_BREACHED)
    assert paused_early not in _ids(findings, Reason.SLA_BREACHED)


def test_a_running_clock_past_its_warning_is_found_until_it_is_due(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(SLA)
    warned = create_case(sessions, "ins_sla", now=T0 + 2 * HOUR).case.id  # warn T0+4h, due T0+6h
    not_yet = create_case(sessions, "ins_sla", now=T0 + 3 * HOUR).case.id  # warn T0+5h
    paused = create_case(sessions, "ins_sla", now=T0 + 2 * HOUR).case.id
    fire(sessions, paused, "wait", now=T0 + 4 * HOUR + MINUTE)  # past warning, but paused
    now = T0 + 4 * HOUR + 30 * MINUTE

    findings = _inspect(sessions, now, Reason.SLA_WARNING, Reason.SLA_BREACHED)

    assert _ids(findings, Reason.SLA_WARNING) == [warned]
    assert findings[0].since == T0 + 4 * HOUR
    assert not_yet not in _ids(findings, Reason.SLA_WARNING)
    assert _ids(findings, Reason.SLA_BREACHED) == []
    # Once due, the same case is breached, no longer merely warned.
    later = _inspect(sessions, T0 + 6 * HOUR, Reason.SLA_WARNING, Reason.SLA_BREACHED)
    assert warned in _ids(later, Reason.SLA_BREACHED)
    assert warned not in _ids(later, Reason.SLA_WARNING)


def test_a_warning_already_delivered_still_counts_as_past_warning(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """The warning timer fired and recorded ``sla_warning``: the clock is still past its
    threshold (the bug this guards against: the projection forgot delivered warnings)."""
    publish_workflow(SLA)
    case_id = create_case(sessions, "ins_sla").case.id
    warning = _armed(sessions, case_id)["sla:response:sla_warning:0.5"]
    deliver(sessions, warning.id, warning.due_at)
    with sessions() as session, session.begin():
        recorded = [e.event_type for e in cases.history(session, case_id)]
        row = session.execute(select(CaseSla).where(CaseSla.case_id == case_id)).scalar_one()
    assert recorded == ["created", "sla_warning"]
    assert row.warn_at == T0 + 2 * HOUR

    findings = _inspect(sessions, T0 + 3 * HOUR, Reason.SLA_WARNING)
    assert _ids(findings, Reason.SLA_WARNING) == [case_id]


def test_a_clock_paused_by_an_operator_is_found_with_its_resume_time_if_it_has_one(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """A pause by hand stops every SLA timer of its clock: unless it was given a resume time,
    nothing ends it but a person. Pauses by a state end with the state, and are not findings."""
    publish_workflow(SLA)
    supervisor = ADMIN

    def pause(case_id: int, resume_at: datetime | None) -> None:
        with sessions() as session, session.begin():
            operations.set_sla_paused(
                session,
                case_id,
                "response",
                True,
                actor=supervisor,
                reason="customer asked to wait",
                now=T0 + HOUR,
                resume_at=resume_at,
            )

    forgotten = create_case(sessions, "ins_sla").case.id
    pause(forgotten, None)
    until_tomorrow = create_case(sessions, "ins_sla").case.id
    pause(until_tomorrow, T0 + 24 * HOUR)
    by_state = create_case(sessions, "ins_sla").case.id
    fire(sessions, by_state, "wait", now=T0 + HOUR)
    closed = create_case(sessions, "ins_sla").case.id
    pause(closed, None)
    fire(sessions, closed, "close", now=T0 + 2 * HOUR)

    findings = _inspect(sessions, T0 + 3 * HOUR, Reason.SLA_PAUSED)

    assert _ids(findings, Reason.SLA_PAUSED) == [forgotten, until_tomorrow]
    found = {f.case_id: f for f in findings}
    assert (found[forgotten].since, found[forgotten].until, found[forgotten].ref) == (
        T0 + HOUR,
        None,
        "response",
    )
    assert found[forgotten].detail == "SLA response paused by an operator with no resume time"
    assert found[until_tomorrow].until == T0 + 24 * HOUR
    assert found[until_tomorrow].detail == (
        "SLA response paused by an operator until its resume time"
    )
    assert found[until_tomorrow].to_dict()["until"] == (T0 + 24 * HOUR).isoformat()

    # The resume time comes: its timer resumes the clock, and the finding is gone.
    resume = _armed(sessions, until_tomorrow)["sla:response:sla_resume"]
    assert resume.due_at == T0 + 24 * HOUR
    deliver(sessions, resume.id, resume.due_at)
    later = _inspect(sessions, T0 + 25 * HOUR, Reason.SLA_PAUSED)
    assert _ids(later, Reason.SLA_PAUSED) == [forgotten]


# --- timers ------------------------------------------------------------------------------------


def test_a_failed_timer_is_found_with_its_error(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TIMED)
    failing = create_case(sessions, "ins_timed", {"allowed": False}).case.id
    fine = create_case(sessions, "ins_timed", {"allowed": True}).case.id
    for case_id in (failing, fine):
        chase = _armed(sessions, case_id)["chase"]
        deliver(sessions, chase.id, T0 + HOUR)
    failed_id = next(t.id for t in _all_timers(sessions, failing) if t.name == "chase")

    findings = _inspect(sessions, T0 + 2 * HOUR, Reason.TIMER_FAILED)

    (finding,) = findings
    assert (finding.case_id, finding.ref, finding.since) == (failing, failed_id, T0 + HOUR)
    assert finding.detail.startswith(f"timer {failed_id}: GuardRejected:")
    # The supervisor reads which guard refused: the element and its expression.
    assert "transitions[0].guard = data.allowed" in finding.detail


def test_a_failed_timer_of_a_closed_case_is_not_a_finding(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TIMED)
    case_id = create_case(sessions, "ins_timed", {"allowed": True}).case.id
    chase = _armed(sessions, case_id)["chase"]
    with sessions() as session, session.begin():
        timer_firing.record_failure(
            session, chase.id, GuardRejected("guard said no", case_id=case_id), now=T0 + HOUR
        )
    assert _ids(_inspect(sessions, T0 + HOUR, Reason.TIMER_FAILED), Reason.TIMER_FAILED) == [
        case_id
    ]
    fire(sessions, case_id, "finish", now=T0 + 2 * HOUR)
    assert _inspect(sessions, T0 + 2 * HOUR, Reason.TIMER_FAILED) == []


def _all_timers(sessions: sessionmaker[Session], case_id: int) -> list[Any]:
    with sessions() as session, session.begin():
        return list(timer_firing.case_timers(session, case_id))


def test_an_armed_timer_overdue_beyond_the_tolerance_is_late(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(TIMED)
    late = create_case(sessions, "ins_timed", {"allowed": True}).case.id  # due T0+1h
    within_at = T0 + 8 * MINUTE  # due T0+1h08
    within = create_case(sessions, "ins_timed", {"allowed": True}, now=within_at).case.id
    settings = Settings(timer_tolerance=5 * MINUTE)
    now = T0 + HOUR + 10 * MINUTE

    findings = _inspect(sessions, now, Reason.TIMER_LATE, settings=settings)

    (finding,) = findings
    assert (finding.case_id, finding.since) == (late, T0 + HOUR)
    assert finding.ref == _armed(sessions, late)["chase"].id
    assert finding.detail == f"timer {finding.ref} not delivered"
    assert within not in _ids(findings, Reason.TIMER_LATE)
    # A wider tolerance forgives the late one too.
    assert (
        _inspect(sessions, now, Reason.TIMER_LATE, settings=Settings(timer_tolerance=15 * MINUTE))
        == []
    )


# --- silent stalls -----------------------------------------------------------------------------


def test_an_open_case_with_no_timer_and_no_recent_activity_is_a_silent_stall(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(FLOW)
    publish_workflow(TIMED)
    stalled = create_case(sessions, "ins_flow").case.id
    active = create_case(sessions, "ins_flow").case.id
    fire(sessions, active, "note", now=T0 + 3 * 24 * HOUR)  # a day before "now"
    finished = create_case(sessions, "ins_flow").case.id
    fire(sessions, finished, "finish", now=T0 + HOUR)
    parked = create_case(sessions, "ins_timed", {"allowed": True}).case.id
    fire(sessions, parked, "park", now=T0 + HOUR)  # a 30-day timer is armed
    now = T0 + 4 * 24 * HOUR

    findings = _inspect(sessions, now, Reason.SILENT_STALL)

    (finding,) = findings
    assert (finding.case_id, finding.since, finding.state) == (stalled, T0, "new")
    assert finding.detail == "no activity and no timer armed"
    assert set(_armed(sessions, parked)) == {"review"}
    # The threshold is a setting: with a week, nothing has stalled yet.
    assert (
        _inspect(
            sessions, now, Reason.SILENT_STALL, settings=Settings(stall_after=timedelta(days=7))
        )
        == []
    )


# --- dwelling ----------------------------------------------------------------------------------


def _history_of_quick_triage(sessions: sessionmaker[Session], n: int) -> list[int]:
    """``n`` cases that left ``new`` after 1, 2, ... n minutes."""
    made = []
    for i in range(n):
        case_id = create_case(sessions, "ins_flow").case.id
        fire(sessions, case_id, "triage", now=T0 + (i + 1) * MINUTE)
        made.append(case_id)
    return made


def test_a_case_in_a_state_longer_than_the_95th_percentile_is_dwelling(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(FLOW)
    _history_of_quick_triage(sessions, 10)
    slow = create_case(sessions, "ins_flow").case.id
    now = T0 + HOUR
    quick = create_case(sessions, "ins_flow", now=now - 2 * MINUTE).case.id
    with sessions() as session, session.begin():
        written = inspection.refresh_dwell_stats(session, now=now)
        stat = session.execute(select(DwellStat)).scalar_one()
    assert written == 1  # only "new" was ever left
    assert (stat.definition_name, stat.definition_version, stat.state, stat.samples) == (
        "ins_flow",
        1,
        "new",
        10,
    )
    # Dwells of 60, 120, ... 600 s: the 95th percentile interpolates 540 and 600.
    assert stat.p95_seconds == pytest.approx(573.0)
    assert stat.p50_seconds == pytest.approx(330.0)

    findings = _inspect(sessions, now, Reason.DWELLING, settings=Settings(min_dwell_samples=10))

    assert _ids(findings, Reason.DWELLING) == [slow]
    assert quick not in _ids(findings, Reason.DWELLING)
    (finding,) = findings
    assert (finding.since, finding.state, finding.ref) == (T0, "new", pytest.approx(573.0))
    assert finding.detail == "in 'new'; 95% of cases leave within 9m33s"
    # Too few samples for a percentile to mean anything: no finding.
    assert _inspect(sessions, now, Reason.DWELLING, settings=Settings(min_dwell_samples=11)) == []


def test_dwell_statistics_count_state_changes_and_forced_moves_only(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(FLOW)
    case_id = create_case(sessions, "ins_flow").case.id
    fire(sessions, case_id, "note", now=T0 + 5 * MINUTE)  # a self-loop: no dwell ends
    fire(sessions, case_id, "triage", now=T0 + 10 * MINUTE)  # new: 10 min
    fire(sessions, case_id, "note", now=T0 + 30 * MINUTE)  # triage: 20 min, back in new
    with sessions() as session, session.begin():
        operations.force_state(
            session, case_id, "triage", actor=ADMIN, reason="skip", now=T0 + 70 * MINUTE
        )  # new: 40 min, forced out
        inspection.refresh_dwell_stats(session, now=T0 + 2 * HOUR)
        stats = {
            s.state: (s.samples, s.p50_seconds)
            for s in session.execute(select(DwellStat)).scalars()
        }
    assert stats == {"new": (2, pytest.approx(1500.0)), "triage": (1, pytest.approx(1200.0))}


# --- parents and children ----------------------------------------------------------------------


def _job_with_loaner(sessions: sessionmaker[Session]) -> tuple[int, int]:
    job = create_case(sessions, "ins_job", {"device": "CT-1"}).case.id
    fire(sessions, job, "send_loaner", now=T0 + MINUTE)
    with sessions() as session, session.begin():
        (loaner,) = [c.id for c in links.children(session, job)]
    return job, loaner


def test_news_the_parent_could_not_take_is_an_orphaned_wait_until_the_parent_moves(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(PARENT)
    publish_workflow(CHILD)
    held, held_loaner = _job_with_loaner(sessions)
    waiting, waiting_loaner = _job_with_loaner(sessions)
    fire(sessions, held, "hold", now=T0 + HOUR)
    fire(sessions, held_loaner, "return", now=T0 + 2 * HOUR)  # parent on hold: not taken
    fire(sessions, waiting_loaner, "return", now=T0 + 2 * HOUR)  # parent takes it

    with sessions() as session, session.begin():
        held_events = [e.event_type for e in cases.history(session, held)]
        news = cases.history(session, held)[-1].payload
        assert cases.get_case(session, waiting).state == "loaner_back"
    assert held_events[-1] == "child_update"
    # Why the news was not taken: English for the API, and as a code and values for readers
    # in another language (engine/core/messages.py).
    assert news["not_fired"] == "invalid-trigger" and news["reason"].startswith(
        "Trigger 'loaner_returned'"
    )
    assert news["messages"]["reason"] == {
        "code": "links.news-refused",
        "params": {"error": {"code": "invalid-trigger", "message": news["reason"]}},
    }

    findings = _inspect(sessions, T0 + 3 * HOUR, Reason.ORPHANED_WAIT)
    (finding,) = findings
    assert (finding.case_id, finding.state, finding.since) == (held, "on_hold", T0 + 2 * HOUR)
    assert finding.detail.startswith(
        f"child {held_loaner} (ins_loaner) could not fire 'loaner_returned': "
    )

    fire(sessions, held, "release", now=T0 + 4 * HOUR)  # someone picks the parent up
    assert _inspect(sessions, T0 + 5 * HOUR, Reason.ORPHANED_WAIT) == []


def test_a_parent_whose_child_was_cancelled_waits_on_it_until_the_parent_moves(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(PARENT)
    publish_workflow(CHILD)
    job, loaner = _job_with_loaner(sessions)
    other, _ = _job_with_loaner(sessions)
    with sessions() as session, session.begin():
        cases.cancel_case(session, loaner, actor=ADMIN, now=T0 + HOUR, reason="lost in transit")

    findings = _inspect(sessions, T0 + 2 * HOUR, Reason.WAITING_ON_CANCELLED)
    (finding,) = findings
    assert (finding.case_id, finding.ref, finding.since) == (job, loaner, T0 + HOUR)
    assert finding.detail == f"child case {loaner} cancelled"
    assert other not in _ids(findings, Reason.WAITING_ON_CANCELLED)

    # An event that does not move the parent (here a reassignment) does not clear it.
    with sessions() as session, session.begin():
        operations.reassign(
            session, job, "Li", actor=ADMIN, reason="Wang is away", now=T0 + 3 * HOUR
        )
    assert _ids(
        _inspect(sessions, T0 + 4 * HOUR, Reason.WAITING_ON_CANCELLED), Reason.WAITING_ON_CANCELLED
    ) == [job]

    fire(sessions, job, "hold", now=T0 + 5 * HOUR)  # the parent moves on
    assert _inspect(sessions, T0 + 6 * HOUR, Reason.WAITING_ON_CANCELLED) == []


# --- filters and counts ------------------------------------------------------------------------


def _a_bit_of_everything(sessions: sessionmaker[Session], publish_workflow: Any) -> datetime:
    for source in (FLOW, SLA, TIMED, PARENT, CHILD):
        publish_workflow(source)
    _history_of_quick_triage(sessions, 4)
    for _ in range(3):
        create_case(sessions, "ins_sla")  # breached
    create_case(sessions, "ins_sla", now=T0 + 4 * 24 * HOUR - 3 * HOUR)  # past warning
    create_case(sessions, "ins_timed", {"allowed": True})  # late timer
    _, loaner = _job_with_loaner(sessions)
    with sessions() as session, session.begin():
        cases.cancel_case(session, loaner, actor=ADMIN, now=T0 + HOUR, reason="gone")
    now = T0 + 4 * 24 * HOUR
    with sessions() as session, session.begin():
        inspection.refresh_dwell_stats(session, now=now)
    return now


def test_counts_agree_with_inspect_for_every_reason(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    now = _a_bit_of_everything(sessions, publish_workflow)
    settings = Settings(min_dwell_samples=4)

    found = Counter(f.reason.value for f in _inspect(sessions, now, settings=settings))
    with sessions() as session, session.begin():
        counted = inspection.counts(session, now=now, settings=settings)

    assert set(counted) == {r.value for r in Reason}
    assert counted == {r.value: found.get(r.value, 0) for r in Reason}
    assert counted["sla_breached"] == 3 and counted["sla_warning"] == 1
    assert counted["waiting_on_cancelled"] == 1
    # Nothing delivered the timers: each breached clock's warning and breach, the warned
    # clock's warning, and the timed case's chase are all late.
    assert counted["timer_late"] == 3 * 2 + 1 + 1
    assert counted["silent_stall"] == 4 + 1  # the triaged flows and the job
    with sessions() as session, session.begin():
        only_sla = inspection.counts(session, now=now, settings=settings, definition="ins_sla")
    assert only_sla["sla_breached"] == 3 and only_sla["timer_late"] == 3 * 2 + 1
    assert only_sla["silent_stall"] == only_sla["waiting_on_cancelled"] == 0


def test_limit_and_definition_bound_each_reason(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    now = _a_bit_of_everything(sessions, publish_workflow)

    limited = _inspect(sessions, now, Reason.SLA_BREACHED, Reason.TIMER_LATE, limit=2)
    assert Counter(f.reason for f in limited) == {Reason.SLA_BREACHED: 2, Reason.TIMER_LATE: 2}
    only_flow = _inspect(
        sessions, now, definition="ins_flow", settings=Settings(min_dwell_samples=4)
    )
    assert only_flow and {f.definition for f in only_flow} == {"ins_flow"}
    assert {f.reason for f in only_flow} <= {Reason.SILENT_STALL, Reason.DWELLING}
