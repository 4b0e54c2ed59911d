"""Times as people read them in the CLI and the simulator: the deployment's zone
(SVCFLOW_TIMEZONE, Beijing time by default), to the second, with the offset; ``--json`` keeps
UTC (docs/api.md, "Times"). Cases are set up through the services at known instants, then
read with the ``svcflow`` command on the same database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session, sessionmaker

from engine.cli import main
from tests.factories import ticket_with_failed_reminder
from tests.workflows import TICKET

CREATED = "2025-09-30 10:00:00+08:00"  # T0, 02:00 UTC
FAILED = "2025-09-30 12:00:00+08:00"  # the reminder's due instant, T0 + 2 h


def svcflow(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, ["--database-url", url, *args], env=env)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def ticket(db_url: str, sessions: sessionmaker[Session], publish_workflow: Any) -> tuple[int, int]:
    """A service ticket created at T0 whose reminder failed at T0 + 2 h: (case, timer)."""
    publish_workflow(TICKET)
    return ticket_with_failed_reminder(sessions)


def test_tables_read_in_beijing_time_to_the_second(db_url: str, ticket: tuple[int, int]) -> None:
    case_id, timer_id = ticket

    shown = svcflow(db_url, "cases", "show", str(case_id)).output
    history = shown.partition("\nhistory:")[2]
    assert history.splitlines()[3].split()[:3] == ["1", *CREATED.split()]
    timers = shown.partition("\ntimers:")[2].partition("\nhistory:")[0]
    assert any(
        line.split()[:5] == [str(timer_id), "remind", "failed", *FAILED.split()]
        for line in timers.splitlines()
    )
    assert "UTC" not in shown

    assert FAILED in svcflow(db_url, "timers", "failed").output
    assert FAILED in svcflow(db_url, "stuck", "--reason", "timer_failed").output
    # The failure is in the case history too, so the case was last updated when it failed.
    assert FAILED in svcflow(db_url, "cases", "list").output


def test_another_zone_is_a_setting_and_json_stays_utc(db_url: str, ticket: tuple[int, int]) -> None:
    case_id, timer_id = ticket

    in_utc = svcflow(db_url, "cases", "show", str(case_id), env={"SVCFLOW_TIMEZONE": "UTC"})
    urumqi = svcflow(db_url, "--timezone", "Asia/Urumqi", "cases", "show", str(case_id))
    as_json = svcflow(db_url, "cases", "show", str(case_id), "--json")

    assert "2025-09-30 02:00:00+00:00" in in_utc.output and CREATED not in in_utc.output
    assert "2025-09-30 08:00:00+06:00" in urumqi.output
    document = json.loads(as_json.output)
    assert document["history"][0]["at"] == "2025-09-30T02:00:00+00:00"
    (timer,) = [t for t in document["timers"] if t["id"] == timer_id]
    assert timer["due_at"] == "2025-09-30T04:00:00+00:00"


def test_an_unknown_zone_is_refused_before_anything_runs(db_url: str) -> None:
    result = CliRunner().invoke(
        main, ["--database-url", db_url, "--timezone", "Beijing", "cases", "list"]
    )

    assert result.exit_code == 2
    assert "Beijing is not a time zone svcflow knows." in result.output
    assert "Traceback" not in result.output


def test_the_simulator_reports_each_step_in_local_time_to_the_second(tmp_path: Path) -> None:
    scenario = tmp_path / "late.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "name": "a call one second before the hour is out",
                "definitions": [
                    str(
                        Path(__file__).parents[1]
                        / "scenarios"
                        / "definitions"
                        / "deadline_demo.yaml"
                    )
                ],
                "start": "2026-02-25T09:00:00+08:00",
                "steps": [
                    {
                        "create": {
                            "case": "c1",
                            "definition": "deadline_demo",
                            "data": {"customer": "医院"},
                        }
                    },
                    {"advance": "59m59s"},
                    {"expect": {"case": "c1", "state": "answered"}},
                ],
            }
        ),
        "utf-8",
    )

    result = CliRunner().invoke(main, ["simulate", str(scenario)])

    assert result.exit_code == 1
    assert "FAIL steps[2] expect @ 2026-02-25 09:59:59+08:00: state is" in result.output
    assert "UTC" not in result.output
