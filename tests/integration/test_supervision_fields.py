"""What a definition's ``supervision`` section does on SQLite and PostgreSQL: the case row keeps
its customer, team, priority and assignee (children inheriting team and customer), and the
stuck-case rules leave cases in an expected wait alone while still finding their near misses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.definition import parse_source
from engine.services import inspection, kpis, links, operations
from engine.services.inspection import Reason, Settings
from engine.store.models import Case, DwellStat
from tests.conftest import ADMIN, T0, WORKFLOWS
from tests.factories import create_case, fire

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

JOB = """\
name: sup_job
title: {en: Job, zh: 工单}
initial: new
assignee: engineer
data_schema:
  type: object
  properties:
    hospital: {type: string}
    region: {type: string}
    urgency: {enum: [high, low]}
    engineer: {type: string}
    board:
      type: object
      properties:
        lead: {type: string}
states:
  - name: new
    title: {en: New, zh: 新建}
  - name: lent
    title: {en: Loaner out, zh: 备用机借出}
  - name: closed
    title: {en: Closed, zh: 已关闭}
    final: true
transitions:
  - trigger: lend
    source: new
    dest: lent
    actions:
      - spawn:
          definition: sup_loaner
          data: {site: "'ward 3'"}
  - trigger: move
    source: [new, lent]
    dest: new
    payload_schema:
      type: object
      properties:
        hospital: {type: string}
    actions:
      - set: {hospital: payload.hospital}
  - trigger: close
    source: [new, lent]
    dest: closed
supervision:
  customer: hospital
  team: region
  priority: urgency
"""

LOANER = """\
name: sup_loaner
title: {en: Loaner, zh: 备用机}
initial: out
data_schema:
  type: object
  properties:
    site: {type: string}
    hospital: {type: string}
states:
  - name: out
    title: {en: Out, zh: 借出}
  - name: overdue
    title: {en: Overdue, zh: 逾期}
  - name: back
    title: {en: Back, zh: 归还}
    final: true
transitions:
  - trigger: late
    source: out
    dest: overdue
  - trigger: renamed
    source: [out, overdue]
    dest: out
    payload_schema:
      type: object
      properties:
        hospital: {type: string}
    actions:
      - set: {hospital: payload.hospital}
  - trigger: return
    source: [out, overdue]
    dest: back
parent:
  definition: sup_job
supervision:
  customer: hospital
  expected_waits:
    - state: out
      reason: {en: In use at the hospital, zh: 医院使用中}
"""


def _labels(sessions: sessionmaker[Session], case_id: int) -> dict[str, Any]:
    with sessions() as session, session.begin():
        row = session.execute(
            select(Case.customer, Case.team, Case.priority, Case.assignee).where(Case.id == case_id)
        ).one()
        return dict(row._mapping)


def _job_and_loaner(sessions: sessionmaker[Session], **data: Any) -> tuple[int, int]:
    job = create_case(sessions, "sup_job", data).case.id
    fire(sessions, job, "lend", now=T0 + HOUR)
    with sessions() as session, session.begin():
        (loaner,) = [c.id for c in links.children(session, job)]
    return job, loaner


def test_the_case_row_keeps_the_fields_the_definition_names(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(JOB)
    publish_workflow(LOANER)
    job = create_case(
        sessions,
        "sup_job",
        {"hospital": "Ruijin", "region": "East", "urgency": "high", "engineer": "Wang"},
    ).case.id
    bare = create_case(sessions, "sup_job", {}).case.id

    assert _labels(sessions, job) == {
        "customer": "Ruijin",
        "team": "East",
        "priority": "high",
        "assignee": "Wang",
    }
    assert _labels(sessions, bare) == dict.fromkeys(("customer", "team", "priority", "assignee"))

    # An action that sets the customer field and a reassignment both reach the row.
    fire(sessions, job, "move", {"hospital": "Huashan"}, now=T0 + HOUR)
    with sessions() as session, session.begin():
        operations.reassign(session, job, "Li", actor=ADMIN, reason="leave", now=T0 + 2 * HOUR)
    assert _labels(sessions, job) == {
        "customer": "Huashan",
        "team": "East",
        "priority": "high",
        "assignee": "Li",
    }


def test_a_child_inherits_team_and_customer_until_its_own_field_is_set(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(JOB)
    publish_workflow(LOANER)
    _, loaner = _job_and_loaner(sessions, hospital="Ruijin", region="East", urgency="low")

    # The loaner declares no team at all and gave no customer: both are the job's; its
    # priority and assignee are not inherited.
    assert _labels(sessions, loaner) == {
        "customer": "Ruijin",
        "team": "East",
        "priority": None,
        "assignee": None,
    }
    fire(sessions, loaner, "renamed", {"hospital": "Ruijin North"}, now=T0 + 2 * HOUR)
    assert _labels(sessions, loaner)["customer"] == "Ruijin North"
    # An event that sets no label field leaves what was inherited.
    fire(sessions, loaner, "late", now=T0 + 3 * HOUR)
    assert _labels(sessions, loaner) == {
        "customer": "Ruijin North",
        "team": "East",
        "priority": None,
        "assignee": None,
    }


def test_a_case_in_an_expected_wait_is_neither_stalled_nor_dwelling(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    publish_workflow(JOB)
    publish_workflow(LOANER)
    _, resting = _job_and_loaner(sessions, region="East")
    _, late = _job_and_loaner(sessions, region="East")
    fire(sessions, late, "late", now=T0 + 2 * HOUR)  # "overdue" is no expected wait
    # A history of loaners that came back within hours: "out" has a 95th percentile.
    for i in range(20):
        _, quick = _job_and_loaner(sessions)
        fire(sessions, quick, "return", now=T0 + 2 * HOUR + i * HOUR)
    now = T0 + 10 * DAY
    settings = Settings(min_dwell_samples=20)
    with sessions() as session, session.begin():
        inspection.refresh_dwell_stats(session, now=now)
        findings = inspection.inspect(
            session, now=now, settings=settings, reasons=[Reason.SILENT_STALL, Reason.DWELLING]
        )
        counts = inspection.counts(session, now=now, settings=settings)
        dwell_states = {
            (s.definition_name, s.state)
            for s in session.execute(select(DwellStat)).scalars()
            if s.samples >= 20
        }

    flagged = {(f.reason, f.case_id) for f in findings}
    assert (Reason.SILENT_STALL, late) in flagged  # the near miss: another state, same case kind
    assert not {case_id for _, case_id in flagged} & {resting}
    # The jobs waiting for their loaners are not in an expected wait of theirs: all stalled.
    stalled_jobs = {
        f.case_id for f in findings if f.reason is Reason.SILENT_STALL and f.definition == "sup_job"
    }
    assert len(stalled_jobs) == 22
    # "out" has the statistics that would make the resting loaner dwell, were it not exempt.
    assert ("sup_loaner", "out") in dwell_states
    assert counts["silent_stall"] == len([f for f in findings if f.reason is Reason.SILENT_STALL])
    assert counts["dwelling"] == len([f for f in findings if f.reason is Reason.DWELLING])


def test_expected_waits_belong_to_the_definition_version_that_lists_them(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """Cases of a version published before the state was listed are still flagged."""
    publish_workflow(JOB)
    unlisted = LOANER.replace("  expected_waits:\n", "  filters: [site]\n").split(
        "    - state: out"
    )[0]
    publish_workflow(unlisted)
    _, old = _job_and_loaner(sessions)
    publish_workflow(LOANER)
    _, new = _job_and_loaner(sessions)
    now = T0 + 10 * DAY
    with sessions() as session, session.begin():
        stalled = {
            f.case_id
            for f in inspection.inspect(session, now=now, reasons=[Reason.SILENT_STALL])
            if f.definition == "sup_loaner"
        }
    assert stalled == {old}
    assert new not in stalled


def test_kpis_group_complaints_and_surveys_by_the_team_responsible(
    sessions: sessionmaker[Session], publish_workflow: Any
) -> None:
    """A complaint's team is three people, its regional team a field; a survey has no team.
    Grouped by the case's label, both count for the team a supervisor means."""
    config = parse_source((WORKFLOWS / "catalog" / "kpis.yaml").read_text("utf-8"))
    start = datetime(2025, 10, 13, 1, 0, tzinfo=UTC)
    for name in ("complaint", "satisfaction_survey"):
        publish_workflow(f"{name}.yaml")
    team = {"manager": "Zhao", "expert": "Chen", "regional_lead": "Wu"}
    complaint = {"customer": "A", "category": "quality", "severity": "minor", "description": "x"}
    create_case(
        sessions, "complaint", {**complaint, "team": team, "regional_team": "East"}, now=start
    )
    create_case(sessions, "complaint", complaint, now=start)  # no team answered yet
    survey = create_case(
        sessions, "satisfaction_survey", {"customer": "A", "service_definition": "x"}, now=start
    ).case.id
    # The team a survey spawned by an East ticket inherits (see the inheritance test above).
    with sessions() as session, session.begin():
        session.execute(Case.__table__.update().where(Case.id == survey).values(team="East"))
    fire(sessions, survey, "score", {"score": 5}, now=start + HOUR)

    with sessions() as session, session.begin():
        rows = kpis.monthly_kpis(
            session, config, month="2025-10", group_by="team", now=start + 30 * DAY
        )
    groups = {(r.kpi, r.group) for r in rows}
    assert ("complaint_deadlines", "East") in groups
    assert ("complaint_deadlines", "(none)") in groups
    assert not any(g.startswith("{") for _, g in groups)  # no object as a group name
    assert ("satisfaction", "East") in groups
