"""``svcflow cases migrate`` and the version commands on SQLite and PostgreSQL, as a process
owner types them: a dry run that writes nothing, the migration, a roll back with promote,
retire, delete refused, versions with their cases, the diff and the diagram."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session, sessionmaker

from engine.cli import main
from engine.services import cases
from tests.factories import create_case, fire
from tests.integration.test_case_migration import TICKET_V2
from tests.workflows import TICKET


def svcflow(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database-url", url, "--actor", "cli:owner", *args])


@pytest.fixture
def two_versions(publish_workflow: Callable[[str], int]) -> None:
    assert publish_workflow(TICKET) == 1
    assert publish_workflow(TICKET_V2) == 2


MIGRATE = (
    "cases",
    "migrate",
    "service_ticket",
    "--from-version",
    "1",
    "--to-version",
    "2",
    "--map-state",
    "on_hold=waiting",
    "--set",
    "priority='normal'",
    "--drop",
    "team",
    "--params",
    "keep",
    "--reason",
    "v2 priorities",
)


@pytest.mark.usefixtures("two_versions")
def test_migrate_dry_run_then_apply(db_url: str, sessions: sessionmaker[Session]) -> None:
    held = create_case(sessions, "service_ticket", {"allowed": True, "team": "x"}, version=1)
    fire(sessions, held.case.id, "hold")

    dry = svcflow(db_url, *MIGRATE, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing is written" in dry.output
    assert "on_hold -> waiting: 1" in dry.output
    assert "would_move" in dry.output and "dropped: team" in dry.output
    with sessions() as session, session.begin():
        assert cases.get_case(session, held.case.id).definition_version == 1

    done = svcflow(db_url, *MIGRATE, "--json")
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.output.splitlines()]
    assert lines[0]["outcome"] == "moved" and lines[0]["to_state"] == "waiting"
    assert lines[-1]["summary"] == {"moved": 1}
    with sessions() as session, session.begin():
        case = cases.get_case(session, held.case.id)
    assert (case.definition_version, case.state) == (2, "waiting")

    again = svcflow(db_url, *MIGRATE)
    assert again.exit_code == 0 and "no running case on v1" in again.output


@pytest.mark.usefixtures("two_versions")
def test_migrate_exits_1_with_the_reasons_of_cases_that_cannot_move(
    db_url: str, sessions: sessionmaker[Session]
) -> None:
    held = create_case(sessions, "service_ticket", {"allowed": True}, version=1).case.id
    fire(sessions, held, "hold")
    without_map = [a for a in MIGRATE if a not in {"on_hold=waiting", "--map-state"}]
    result = svcflow(db_url, *without_map)
    assert result.exit_code == 1
    assert "(no counterpart: these cases cannot move)" in result.output
    assert "refused" in result.output and "--map-state on_hold=" in result.output


def test_migrate_refuses_a_bad_plan_with_every_problem(
    db_url: str, publish_workflow: Callable[[str], int]
) -> None:
    publish_workflow(TICKET)
    publish_workflow(TICKET_V2)
    result = svcflow(
        db_url,
        "cases",
        "migrate",
        "service_ticket",
        "--from-version",
        "1",
        "--to-version",
        "2",
        "--map-state",
        "on_hold=limbo",
        "--set",
        "colour",
        "--params",
        "keep",
        "--reason",
        "x",
    )
    assert result.exit_code != 0
    assert "--set 'colour' is not of the form NAME=VALUE" in result.output
    result = svcflow(db_url, *[("on_hold=limbo" if a == "on_hold=waiting" else a) for a in MIGRATE])
    assert result.exit_code != 0
    assert "version 2 has no state 'limbo'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("two_versions")
def test_promote_retire_delete_and_versions(db_url: str, sessions: sessionmaker[Session]) -> None:
    promoted = svcflow(
        db_url, "definitions", "promote", "service_ticket", "1", "--reason", "v2 bug"
    )
    assert promoted.exit_code == 0, promoted.output
    assert "new cases get version 1" in promoted.output
    assert create_case(sessions, "service_ticket", {"allowed": True}).case.definition_version == 1

    refused = svcflow(
        db_url, "definitions", "delete", "service_ticket", "--version", "1", "--reason", "x"
    )
    assert refused.exit_code != 0 and "1 of them running" in refused.output

    retired = svcflow(
        db_url, "definitions", "retire", "service_ticket", "--version", "1", "--reason", "old"
    )
    assert retired.exit_code == 0, retired.output
    assert "1 running case(s) continue" in retired.output

    listed = svcflow(db_url, "definitions", "versions", "service_ticket")
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.output.splitlines() if line[:1].isdigit()}
    assert "retired" in rows["1"] and "1 (received 1)" in rows["1"]
    assert "current" in rows["2"]
    assert "promoted" in listed.output and "v2 bug" in listed.output


@pytest.mark.usefixtures("two_versions")
def test_diff_summary_text_and_diagram(db_url: str, tmp_path: Path) -> None:
    summary = svcflow(db_url, "definitions", "diff", "service_ticket", "1", "2")
    assert summary.exit_code == 0, summary.output
    assert "+ state waiting" in summary.output and "- state on_hold" in summary.output
    assert "warn_at: [0.5] -> [0.75]" in summary.output
    text = svcflow(db_url, "definitions", "diff", "service_ticket", "1", "2", "--format", "text")
    assert "-    warn_at: [0.5]" in text.output and "+    warn_at: [0.75]" in text.output

    out = tmp_path / "ticket.svg"
    drawn = svcflow(
        db_url, "definitions", "diagram", "service_ticket", "--lang", "zh", "-o", str(out)
    )
    assert drawn.exit_code == 0, drawn.output
    svg = out.read_text("utf-8")
    assert "<svg" in svg and "已受理" in svg  # the zh titles
    assert "waiting" in svg and "on_hold" not in svg  # v2, the current version
    dot = svcflow(
        db_url, "definitions", "diagram", "service_ticket", "--version", "1", "--format", "dot"
    )
    assert dot.output.startswith('digraph "service_ticket"') and "on_hold" in dot.output
    assert "rankdir=LR;" in dot.output
    down = svcflow(
        db_url, "definitions", "diagram", "service_ticket", "--format", "dot", "--direction", "TB"
    )
    assert down.exit_code == 0 and "rankdir=TB;" in down.output


@pytest.mark.usefixtures("two_versions")
def test_republishing_an_earlier_document_says_how_to_roll_back(
    db_url: str, tmp_path: Path
) -> None:
    v1 = tmp_path / "ticket.yaml"
    v1.write_text(TICKET, "utf-8")
    result = svcflow(db_url, "definitions", "publish", str(v1))
    assert result.exit_code == 0, result.output
    assert "service_ticket: unchanged, version 1" in result.output
    assert "new cases get version 2" in result.output
    assert "svcflow definitions promote service_ticket 1" in result.output
