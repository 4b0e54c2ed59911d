"""``svcflow init`` loads the bundled contracts; ``svcflow contracts ...`` and
``svcflow cases create --contract`` on a real SQLite file (issue 13's done-when)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine.cli import main
from engine.runtime.clock import ManualClock
from tests.conftest import WORKFLOWS

MARCH = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 2 March 2026, 09:00 in Beijing
TICKET = json.dumps(
    {"customer": "某医院", "device_serial": "SN-1", "fault": "黑屏", "priority": "normal"}
)


def svcflow(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database-url", url, "--actor", "cli:test", *args])


@pytest.fixture
def initialised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # The bundled contracts are in force in 2026: the commands run at a fixed instant of it.
    monkeypatch.setattr("engine.cli.app.SystemClock", lambda: ManualClock(MARCH))
    url = f"sqlite:///{tmp_path / 'svcflow.db'}"
    result = svcflow(url, "init", "--workflows", str(WORKFLOWS))
    assert result.exit_code == 0, result.output
    for name in ("b1", "b2", "b3", "b4"):
        assert f"contract {name}: loaded, version 1" in result.output
    return url


def test_init_loads_the_bundled_contracts_once_and_lists_them(initialised: str) -> None:
    again = svcflow(initialised, "init", "--workflows", str(WORKFLOWS))
    assert "contract b3: unchanged, version 1" in again.output
    listed = svcflow(initialised, "contracts", "list")
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.output.splitlines()[2:]] == ["b1", "b2", "b3", "b4"]
    shown = svcflow(initialised, "contracts", "show", "b3")
    assert "loaner_after" in shown.output and '"12h"' in shown.output


def test_tickets_created_with_b3_and_b2_carry_their_loaner_terms(initialised: str) -> None:
    made = {}
    for name in ("b3", "b2"):
        created = svcflow(
            initialised, "cases", "create", "repair_ticket", "--contract", name, "--data", TICKET
        )
        assert created.exit_code == 0, created.output
        assert f"contract={name} v1" in created.output
        made[name] = created.output.split()[1]
    for name, hours in (("b3", "12h"), ("b2", "8h")):
        shown = json.loads(svcflow(initialised, "cases", "show", made[name], "--json").output)
        assert shown["case"]["params"]["loaner_after"] == hours
        assert (
            shown["contract"]["id"] == name and shown["contract"]["terms"]["loaner_after"] == hours
        )
    text = svcflow(initialised, "cases", "show", made["b3"]).output
    assert "contract: b3 v1" in text and '"loaner_after": "12h"' in text
    listed = svcflow(initialised, "cases", "list", "--contract", "b2").output.splitlines()[2:]
    assert [line.split()[0] for line in listed] == [made["b2"]]


def test_unknown_contract_is_an_error_with_a_hint(initialised: str) -> None:
    result = svcflow(
        initialised, "cases", "create", "repair_ticket", "--contract", "b9", "--data", TICKET
    )
    assert result.exit_code == 1
    assert "No contract 'b9'." in result.output and "b1, b2, b3, b4" in result.output


def test_a_bad_contract_file_prints_each_problem_at_its_line(
    initialised: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    source = (WORKFLOWS / "contracts" / "b2.yaml").read_text("utf-8")
    bad.write_text(source.replace("valid_until: 2027-12-31", "valid_until: 2025-12-31"), "utf-8")
    result = svcflow(initialised, "contracts", "load", str(bad))
    line = source.splitlines().index("valid_until: 2027-12-31") + 1
    assert result.exit_code == 1
    assert f"line {line}, column 1, valid_until: valid_until 2025-12-31 is before" in result.output


def test_the_monthly_compliance_report_from_the_command_line(
    initialised: str, tmp_path: Path
) -> None:
    svcflow(initialised, "cases", "create", "repair_ticket", "--contract", "b2", "--data", TICKET)
    table = svcflow(initialised, "contracts", "report", "b2", "--month", "2026-03")
    assert table.exit_code == 0, table.output
    assert table.output.startswith("b2 v1 ")
    as_csv = svcflow(
        initialised, "contracts", "report", "b2", "--month", "2026-03", "--format", "csv"
    )
    assert as_csv.output.startswith("section,definition,sla,met,breached,case_id")
    page = tmp_path / "b2.html"
    written = svcflow(
        initialised,
        "contracts",
        "report",
        "b2",
        "--month",
        "2026-03",
        "--format",
        "html",
        "--output",
        str(page),
    )
    assert written.exit_code == 0, written.output
    assert "合同履约报告" in page.read_text("utf-8")
    assert "<style>" in page.read_text("utf-8")  # a file opened alone carries its styles
    bad_month = svcflow(initialised, "contracts", "report", "b2", "--month", "2026-3x")
    assert bad_month.exit_code == 1 and "is not YYYY-MM" in bad_month.output


def test_kpis_and_stuck_by_contract_from_the_command_line(
    initialised: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    svcflow(initialised, "cases", "create", "repair_ticket", "--contract", "b3", "--data", TICKET)
    # Three hours on, the ticket's first contact (1 hour) is late: a figure to group.
    later = MARCH + timedelta(hours=3)
    monkeypatch.setattr("engine.cli.app.SystemClock", lambda: ManualClock(later))
    kpis = svcflow(
        initialised,
        "kpis",
        "--month",
        "2026-03",
        "--by",
        "contract",
        "--config",
        str(WORKFLOWS / "catalog" / "kpis.yaml"),
        "--format",
        "json",
    )
    assert kpis.exit_code == 0, kpis.output
    assert {"b3", "(all)"} <= {row["group"] for row in json.loads(kpis.output)}
    stuck = svcflow(initialised, "stuck", "--contract", "b3", "--by-contract")
    assert stuck.exit_code == 0, stuck.output
    assert "contract" in stuck.output.splitlines()[0]
    assert "sla_breached" in stuck.output and "b3: " in stuck.output


def test_validate_checks_a_file_against_the_database_without_loading_it(
    initialised: str, tmp_path: Path
) -> None:
    bad = tmp_path / "b5.yaml"
    text = (WORKFLOWS / "contracts" / "b3.yaml").read_text("utf-8").replace("id: b3", "id: b5")
    bad.write_text(text, "utf-8")  # the same hospital as b3, on the same days
    result = svcflow(initialised, "contracts", "validate", str(bad))
    line = text.splitlines().index("customers: [濮阳市人民医院]") + 1
    assert result.exit_code == 1
    assert f"{bad}:{line}:" in result.output and "[covered-twice] customers[0]" in result.output
    good = svcflow(initialised, "contracts", "validate", str(WORKFLOWS / "contracts" / "b3.yaml"))
    assert good.exit_code == 0 and ": ok" in good.output
    listed = svcflow(initialised, "contracts", "list")
    assert "b5" not in listed.output
