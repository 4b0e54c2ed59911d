"""``svcflow demo`` fills an empty database with a living desk, through the real engine on
virtual time, and refuses a database it would spoil."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.cli import main
from engine.demo import run_demo
from engine.errors import OperationInvalid
from engine.services import delivery_health, inspection
from engine.store.database import create_db_engine, session_factory
from engine.store.models import Case, CaseEvent, Timer, TimerStatus
from tests.conftest import WORKFLOWS

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Beijing, a Monday


def test_the_demo_fills_an_empty_database_with_stuck_work_of_every_workflow(
    sessions: sessionmaker[Session],
) -> None:
    report = run_demo(sessions, WORKFLOWS, now=NOW, cases_wanted=150, days=30)

    with sessions() as session, session.begin():
        by_definition = Counter(
            dict(
                session.execute(
                    select(Case.definition_name, func.count()).group_by(Case.definition_name)
                ).all()
            )
        )
        teams = set(session.execute(select(Case.team).where(Case.team.is_not(None))).scalars())
        customers = set(session.execute(select(Case.customer)).scalars()) - {None}
        first, last = session.execute(select(func.min(CaseEvent.at), func.max(CaseEvent.at))).one()
        future_timers = session.execute(
            select(func.count()).where(Timer.status == TimerStatus.ARMED.value, Timer.due_at > NOW)
        ).scalar_one()
        overdue_armed = session.execute(
            select(func.count()).where(Timer.status == TimerStatus.ARMED.value, Timer.due_at <= NOW)
        ).scalar_one()
        findings = inspection.counts(session, now=NOW)

    assert sum(by_definition.values()) >= 150
    bundled = {p.stem for p in WORKFLOWS.glob("*.yaml")}
    assert set(by_definition) == bundled  # every bundled workflow, children included
    assert len(teams) >= 3 and len(customers) >= 5
    # Back-dated: the history runs from a month ago up to now, never past it.
    assert first < NOW - timedelta(days=25)
    assert last <= NOW
    # Every timer due by now was fired at its own instant; later ones wait for the workers.
    assert overdue_armed == 0
    assert future_timers > 0
    stuck = {reason for reason, n in findings.items() if n}
    assert len(stuck) >= 4, findings
    assert {"sla_breached", "silent_stall"} <= stuck
    assert report.findings == {r: n for r, n in findings.items() if n}


def test_the_demo_is_the_same_desk_for_the_same_seed(
    sessions: sessionmaker[Session], sqlite_template: Path, tmp_path: Path
) -> None:
    shutil.copyfile(sqlite_template, tmp_path / "other.db")
    other = session_factory(create_db_engine(f"sqlite:///{tmp_path / 'other.db'}"))
    one = run_demo(sessions, WORKFLOWS, now=NOW, cases_wanted=20, days=5, seed=3)
    two = run_demo(other, WORKFLOWS, now=NOW, cases_wanted=20, days=5, seed=3)
    assert one.created == two.created and one.fired == two.fired
    assert one.findings == two.findings


def test_the_demo_refuses_a_database_with_cases_or_running_workers(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session, session.begin():
        delivery_health.beat(
            session, name="w1", hostname="h", pid=1, started_at=NOW, now=NOW, redis_ok=True
        )
    with pytest.raises(OperationInvalid) as workers:
        run_demo(sessions, WORKFLOWS, now=NOW + timedelta(seconds=5), cases_wanted=10)
    assert "Stop `make run`" in (workers.value.hint or "")

    run_demo(sessions, WORKFLOWS, now=NOW + timedelta(hours=1), cases_wanted=10, days=2)
    with pytest.raises(OperationInvalid) as full:
        run_demo(sessions, WORKFLOWS, now=NOW + timedelta(hours=2), cases_wanted=10)
    assert "empty one only" in full.value.message


def test_svcflow_demo_prints_what_it_made(fresh_sqlite_url: str) -> None:
    result = CliRunner().invoke(
        main, ["--database-url", fresh_sqlite_url, "demo", "--cases", "30", "--days", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "repair_ticket" in result.output and "stuck:" in result.output
    again = CliRunner().invoke(main, ["--database-url", fresh_sqlite_url, "demo"])
    assert again.exit_code == 1
    assert "the demo fills an empty one only" in again.output


def test_the_demo_runs_on_the_database_svcflow_init_prepared(fresh_sqlite_url: str) -> None:
    """What the README does (`make run` loads the bundled workflows and contracts, then
    `svcflow demo`): the contracts' teams land in each definition's own team field, never
    in a complaint's team of three people (which refused the complaint's creation)."""
    runner = CliRunner()
    init = runner.invoke(main, ["--database-url", fresh_sqlite_url, "init"])
    assert init.exit_code == 0, init.output
    assert "contract b3: loaded" in init.output
    result = runner.invoke(main, ["--database-url", fresh_sqlite_url, "demo"])
    assert result.exit_code == 0, result.output
    assert "complaint" in result.output
    engine = create_db_engine(fresh_sqlite_url)
    try:
        with session_factory(engine)() as session:
            teams = set(
                session.execute(
                    select(Case.team).where(Case.definition_name == "complaint")
                ).scalars()
            )
    finally:
        engine.dispose()
    assert teams and None not in teams
    assert all(not team.endswith("经理") for team in teams), teams  # teams, not people
