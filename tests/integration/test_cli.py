"""The ``svcflow`` command line on a real SQLite file, as an operator would use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.exc import IntegrityError, OperationalError

from engine.cli import main
from engine.core.validation import definition_schema
from engine.runtime.embedded_redis import free_port
from engine.store.database import (
    create_db_engine,
    is_connection_error,
    session_factory,
    unreachable,
)
from tests.conftest import ROOT, WORKFLOWS
from tests.factories import complaint_with_two_rectification_rounds

REPAIR = str(WORKFLOWS / "repair_ticket.yaml")
TICKET = {
    "customer": "Ruijin Hospital",
    "device_serial": "CT-0042",
    "fault": "no image",
    "priority": "emergency",
}


def svcflow(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database-url", url, "--actor", "cli:test", *args])


@pytest.fixture
def initialised(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'svcflow.db'}"
    result = svcflow(url, "init", "--workflows", str(WORKFLOWS))
    assert result.exit_code == 0, result.output
    return url


def test_validate_bundled_workflow(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["validate", REPAIR])

    assert result.exit_code == 0, result.output
    assert f"{REPAIR}: ok" in result.output


def test_definitions_schema_prints_the_schema_the_validator_uses() -> None:
    result = CliRunner().invoke(main, ["definitions", "schema"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == definition_schema()


def test_validate_broken_file_prints_every_problem_with_its_path(tmp_path: Path) -> None:
    source = (WORKFLOWS / "repair_ticket.yaml").read_text("utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        source.replace("dest: remote_diagnosis", "dest: remote_diagnosys", 1).replace(
            'guard: "has(data.engineer)"', 'guard: "has(data.engineer) &&"'
        ),
        "utf-8",
    )

    result = CliRunner().invoke(main, ["validate", REPAIR, str(broken)])

    assert result.exit_code == 1
    assert f"{REPAIR}: ok" in result.output
    assert "transitions[0].branches[0].dest" in result.output  # the first contact branch
    assert "remote_diagnosys" in result.output
    assert "transitions[5].guard" in result.output
    assert "Traceback" not in result.output


def test_validate_unreadable_yaml(tmp_path: Path) -> None:
    broken = tmp_path / "tabs.yaml"
    broken.write_text("name: x\nstates: [\n", "utf-8")

    result = CliRunner().invoke(main, ["validate", str(broken)])

    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith(f"{broken}:3:1: error [definition-unreadable]: ")
    assert first.endswith("(hint: Check indentation and quoting near that line.)")


def _broken_ticket(tmp_path: Path) -> Path:
    """A repair ticket with a warning written before an error: an unknown calendar, then a
    misspelt trigger in the same SLA's stop."""
    source = (WORKFLOWS / "repair_ticket.yaml").read_text("utf-8")
    source = source.replace("calendar: cn-workdays", "calendar: cn_workdays", 1)
    source = source.replace("stop: {triggers: [deliver_report]}", "stop: {triggers: [deliver]}")
    broken = tmp_path / "ticket.yaml"
    broken.write_text(source, "utf-8")
    return broken


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text("utf-8").splitlines(), 1) if text in line)


def test_validate_prints_a_line_per_problem_at_its_line_errors_first(tmp_path: Path) -> None:
    broken = _broken_ticket(tmp_path)
    stop, calendar = _line_of(broken, "[deliver]"), _line_of(broken, "cn_workdays")

    result = CliRunner().invoke(main, ["validate", str(broken)])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{broken}:{stop}:23: error [unknown-trigger] slas[6].stop.triggers[0]: SLA condition "
        "names trigger 'deliver', which no transition has. (hint: Did you mean "
        "'deliver_report'?)",
        f"{broken}:{calendar}:5: warning [unknown-calendar] slas[6].calendar: Calendar "
        "'cn_workdays' is not built in; publishing checks it against the database's calendars "
        "and refuses it if it is not there. (hint: Did you mean 'cn-workdays'?)",
        f"{broken}: 1 error(s), 1 warning(s)",
    ]
    assert calendar < stop  # written first, listed second: errors come first


def test_validate_annotates_pull_requests_in_github_format(tmp_path: Path) -> None:
    broken = _broken_ticket(tmp_path)
    stop = _line_of(broken, "[deliver]")

    result = CliRunner().invoke(main, ["validate", "--format", "github", str(broken)])

    assert result.exit_code == 1
    error, warning = result.output.splitlines()
    assert error == (
        f"::error file={broken},line={stop},col=23,title=unknown-trigger::"
        "slas[6].stop.triggers[0]: SLA condition names trigger 'deliver', which no transition "
        "has. Hint: Did you mean 'deliver_report'?"
    )
    assert warning.startswith(f"::warning file={broken},line=")


def test_validate_json_carries_line_and_column(tmp_path: Path) -> None:
    broken = _broken_ticket(tmp_path)

    result = CliRunner().invoke(main, ["validate", "--format", "json", str(broken)])

    (first, _warning) = json.loads(result.output)[str(broken)]
    assert (first["code"], first["line"], first["column"]) == (
        "unknown-trigger",
        _line_of(broken, "[deliver]"),
        23,
    )


def test_init_is_idempotent(initialised: str) -> None:
    again = svcflow(initialised, "init", "--workflows", str(WORKFLOWS))

    assert again.exit_code == 0, again.output
    assert "repair_ticket: unchanged, version 1" in again.output
    listed = svcflow(initialised, "definitions", "list")
    assert listed.exit_code == 0
    assert any(
        line.split()[:3] == ["repair_ticket", "1", "1"] for line in listed.output.splitlines()
    )


def test_create_fire_show(initialised: str) -> None:
    created = svcflow(
        initialised,
        "cases",
        "create",
        "repair_ticket",
        "--data",
        json.dumps(TICKET),
        "--business-key",
        "RT-1",
    )
    assert created.exit_code == 0, created.output
    assert "case 1 [repair_ticket v1] state=logged status=open version=1" in created.output
    assert "allowed triggers: contact\n" in created.output

    fired = svcflow(
        initialised,
        "cases",
        "fire",
        "1",
        "contact",
        "--payload",
        '{"at": "2025-09-30T02:10:00Z"}',
        "--expect-version",
        "1",
    )
    assert fired.exit_code == 0, fired.output
    assert "state=remote_diagnosis" in fired.output
    assert "version=2" in fired.output

    shown = svcflow(initialised, "cases", "show", "1")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "case 1 [repair_ticket v1] key=RT-1" in lines
    assert "state: remote_diagnosis   status: open   version: 2" in lines
    header = next(i for i, line in enumerate(lines) if line.startswith("seq"))
    assert lines[header].split()[:2] == ["seq", "at"]
    assert set(lines[header + 1]) <= {"-", " "}
    rows = [line.split() for line in lines[header + 2 :] if line.strip()]
    assert [(r[0], r[3]) for r in rows] == [("1", "created"), ("2", "transition")]
    assert rows[1][4:7] == ["contact", "logged", "remote_diagnosis"]
    assert rows[1][7] == "cli:test"

    as_json = svcflow(initialised, "cases", "show", "1", "--json")
    document = json.loads(as_json.output)
    assert [e["seq"] for e in document["history"]] == [1, 2]
    # Reported more than a day late, the call counts when received: so does contacted_at.
    contacted = datetime.fromisoformat(document["case"]["data"]["contacted_at"])
    assert contacted == datetime.fromisoformat(document["history"][1]["at"])
    assert document["history"][1]["context"]["reported_at"] == "2025-09-30T02:10:00+00:00"


def test_cases_show_lists_each_round_of_a_repeating_clock(initialised: str) -> None:
    engine = create_db_engine(initialised)
    try:
        case_id = complaint_with_two_rectification_rounds(session_factory(engine))
    finally:
        engine.dispose()

    shown = svcflow(initialised, "cases", "show", str(case_id))

    assert shown.exit_code == 0, shown.output
    clocks = [line.split() for line in shown.output.splitlines()]
    feedback = [row[:4] for row in clocks if row[:1] == ["feedback"]]
    assert feedback == [
        ["feedback", "(round", "1)", "breached"],
        ["feedback", "(round", "2)", "met"],
    ]
    assert [row[:2] for row in clocks if row[:1] == ["investigation"]] == [
        ["investigation", "met"]  # a clock that runs once has no round to tell
    ]


def test_domain_error_prints_message_and_hint(initialised: str) -> None:
    svcflow(initialised, "cases", "create", "repair_ticket", "--data", json.dumps(TICKET))

    result = svcflow(initialised, "cases", "fire", "1", "sign", "--payload", '{"signed_by": "Li"}')

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "error: Trigger 'sign' cannot fire in state 'logged'." in result.stderr
    assert "hint: Triggers allowed in 'logged': contact." in result.stderr
    assert "Traceback" not in result.output
    shown = svcflow(initialised, "cases", "show", "1")
    assert "version: 1" in shown.output


def test_stale_expected_version_and_bad_payload(initialised: str) -> None:
    svcflow(initialised, "cases", "create", "repair_ticket", "--data", json.dumps(TICKET))

    stale = svcflow(
        initialised,
        "cases",
        "fire",
        "1",
        "contact",
        "--payload",
        '{"at": "2025-09-30T02:10:00Z"}',
        "--expect-version",
        "3",
    )
    invalid = svcflow(initialised, "cases", "fire", "1", "contact", "--payload", "{}")
    not_json = svcflow(initialised, "cases", "fire", "1", "contact", "--payload", "{at:1}")

    assert stale.exit_code == 1
    assert "error: Case 1 is at version 1, not 3." in stale.stderr
    assert "hint:" in stale.stderr
    assert invalid.exit_code == 1
    assert "error: Payload for trigger 'contact' is invalid" in invalid.stderr
    assert not_json.exit_code == 2
    assert "--payload is not valid JSON" in not_json.output


def test_unmigrated_database_says_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"

    result = svcflow(url, "cases", "show", "1")

    assert result.exit_code == 1
    assert f"error: The database {url} has no svcflow schema" in result.stderr
    assert "hint: Run `svcflow db upgrade`" in result.stderr
    assert "Traceback" not in result.output


def test_runs_from_outside_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit --database-url and --workflows: nothing depends on the working directory."""
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"

    result = svcflow(url, "init", "--workflows", str(ROOT / "workflows"))

    assert result.exit_code == 0, result.output
    assert "repair_ticket: published, version 1" in result.output
    assert not (tmp_path / "var").exists()


# --- a database that cannot be reached or opened ------------------------------------------------

# The commands that open the database in each way: checking the schema first, migrating, and
# only reading the revision (the last two had no error handling of their own).
OPENING_COMMANDS = [["definitions", "list"], ["db", "upgrade"], ["db", "current"]]


def assert_error_and_hint(result: Result, error: str, hint: str) -> list[str]:
    """Exit status 1 through the CLI's own handling (an exception it missed would be the
    result's exception instead of SystemExit), and exactly an error line and a hint line."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"error: {error}"), lines
    assert lines[1].startswith(f"  hint: {hint}"), lines
    return lines


@pytest.mark.parametrize("command", OPENING_COMMANDS, ids=" ".join)
def test_a_database_server_that_cannot_be_reached_is_an_error_and_a_hint(
    command: list[str],
) -> None:
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/svcflow"

    result = svcflow(url, *command)

    lines = assert_error_and_hint(
        result,
        "Cannot reach the database at postgresql://nobody:***@127.0.0.1:",
        "Check SVCFLOW_DATABASE_URL (or --database-url), that the database server runs",
    )
    assert "Connection refused" in lines[0]
    assert "secret" not in result.output


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("not a directory", "utf-8")
    return tmp_path / "notes.txt" / "svcflow.db"


def _a_directory(tmp_path: Path) -> Path:
    return tmp_path


def _not_a_database(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("Meeting notes. " * 20, "utf-8")
    return tmp_path / "notes.txt"


def _in_a_read_only_directory(tmp_path: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("root may write in a read-only directory")
    tmp_path.chmod(0o555)
    return tmp_path / "svcflow.db"


@pytest.mark.parametrize(
    "where",
    [_under_a_file, _a_directory, _not_a_database, _in_a_read_only_directory],
    ids=lambda where: where.__name__.strip("_"),
)
@pytest.mark.parametrize("command", OPENING_COMMANDS, ids=" ".join)
def test_a_sqlite_file_that_cannot_be_opened_is_an_error_and_a_hint(
    tmp_path: Path, command: list[str], where: Callable[[Path], Path]
) -> None:
    path = where(tmp_path)
    try:
        result = svcflow(f"sqlite:///{path}", *command)
    finally:
        tmp_path.chmod(0o755)

    assert_error_and_hint(
        result,
        f"Cannot open the SQLite database at sqlite:///{path}: ",
        "Check SVCFLOW_DATABASE_URL (or --database-url): the file must be a svcflow database",
    )


@pytest.mark.parametrize(
    "url", ["nonsense", "postgresql://nobody:secret@localhost:port/x", "nosuchdb://x"]
)
def test_a_database_url_that_cannot_be_used_is_an_error_and_a_hint(url: str) -> None:
    result = svcflow(url, "db", "current")

    assert_error_and_hint(
        result, "The database URL cannot be used: ", "Set SVCFLOW_DATABASE_URL (or --database-url)"
    )
    assert "secret" not in result.output


def test_only_connection_failures_are_reported_as_such() -> None:
    """Anything else the database refuses is a bug (or the services' to translate): the CLI lets
    it through, traceback and all."""
    refused = OSError("connection refused")
    assert is_connection_error(OperationalError(None, None, refused))  # while connecting
    assert is_connection_error(OperationalError("SELECT 1", {}, OSError("server closed")))
    assert not is_connection_error(IntegrityError("INSERT ...", {}, OSError("UNIQUE failed")))
    locked = unreachable(
        "sqlite:///x.db", OperationalError("BEGIN", {}, OSError("database is locked"))
    )
    assert locked.message == "The database at sqlite:///x.db failed: database is locked."


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    """What an operator sees in a terminal: the real entry point, in its own process."""
    command = Path(sys.executable).with_name("svcflow")
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/x"

    done = subprocess.run(
        [command, "--database-url", url, "definitions", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: Cannot reach the database at {url}: ")
    assert "\n  hint: Check SVCFLOW_DATABASE_URL" in done.stderr
    assert done.stdout == ""


def test_a_guard_refusal_is_printed_in_the_definition_s_words_not_cel(initialised: str) -> None:
    """Closing a repair ticket before its service report: what is missing, in English and
    Chinese, instead of ``has(data.report_delivered_at)``."""
    created = svcflow(initialised, "cases", "create", "repair_ticket", "--data", json.dumps(TICKET))
    assert created.exit_code == 0, created.output
    forced = svcflow(initialised, "ops", "force", "1", "--to", "signed", "--reason", "test")
    assert forced.exit_code == 0, forced.output

    refused = svcflow(initialised, "cases", "fire", "1", "close", "--payload", '{"feedback": "ok"}')

    assert refused.exit_code == 1
    assert "error: 'close' cannot be fired in 'signed' yet: The service report has not been " in (
        refused.output
    )
    assert "服务报告尚未交付（deliver_report）。" in refused.output
    assert "has(data." not in refused.output


def test_a_pause_with_a_resume_time_is_listed_as_paused_until_then(initialised: str) -> None:
    """``ops pause-sla --resume-at``: a time without an offset or in the past is refused and
    changes nothing; a pause given one is found by ``stuck --reason sla_paused`` with it."""
    created = svcflow(initialised, "cases", "create", "repair_ticket", "--data", json.dumps(TICKET))
    assert created.exit_code == 0, created.output

    def pause(when: str) -> Result:
        return svcflow(
            initialised,
            *("ops", "pause-sla", "1", "--sla", "first_contact", "--reason", "customer away"),
            *("--resume-at", when),
        )

    no_offset = pause("2099-03-02T09:00:00")
    assert no_offset.exit_code == 2
    assert "has no UTC offset; write it as 2099-03-02T09:00:00+08:00" in no_offset.output
    beyond = pause("9999-12-31T23:00:00-14:00")
    assert beyond.exit_code == 2
    assert "is outside the range of times" in beyond.output
    past = pause("2001-03-02T09:00:00+08:00")
    assert past.exit_code == 1
    assert "0 done, 1 failed" in past.output
    assert "case 1: A resume time belongs to a pause, and must be later than now." in past.output
    nothing = svcflow(initialised, "stuck", "--reason", "sla_paused")
    assert "first_contact" not in nothing.output

    # The command runs on the wall clock: a resume time a month ahead of it.
    soon = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    paused = pause(soon.astimezone(timezone(timedelta(hours=8))).isoformat())
    assert paused.exit_code == 0, paused.output

    listed = svcflow(initialised, "stuck", "--reason", "sla_paused", "--json")
    assert listed.exit_code == 0, listed.output
    [finding] = json.loads(listed.output)
    assert (finding["case_id"], finding["ref"], finding["until"]) == (
        1,
        "first_contact",
        soon.isoformat(),
    )
    assert finding["detail"] == "SLA first_contact paused by an operator until its resume time"


def test_tokens_may_expire_and_the_list_says_when_and_whether_they_still_work(
    initialised: str,
) -> None:
    created = svcflow(
        initialised,
        "tokens", "create", "--role", "integrator", "--name", "erp",
        "--expires-at", "2099-06-30T00:00:00+08:00",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert created.output.startswith("svcf_")
    assert (
        svcflow(initialised, "tokens", "create", "--role", "admin", "--name", "ops").exit_code == 0
    )
    svcflow(initialised, "tokens", "revoke", "ops")

    listed = svcflow(initialised, "--timezone", "Asia/Shanghai", "tokens", "list")

    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines()[1:] if line.strip()}
    assert "active" in lines["erp"] and "2099-06-30 00:00:00+08:00" in lines["erp"]
    assert "revoked" in lines["ops"]
    naive = svcflow(
        initialised,
        "tokens", "create", "--role", "integrator", "--name", "x", "--expires-at", "2099-01-01",
    )  # fmt: skip
    assert naive.exit_code == 2 and "has no UTC offset" in naive.output
