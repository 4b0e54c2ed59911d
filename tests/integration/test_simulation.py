"""``svcflow simulate``: scenarios on virtual time against the real engine (scratch SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from engine.cli import main
from engine.errors import ScenarioError
from engine.simulation import run_scenario, run_scenario_file
from tests.conftest import ROOT

SCENARIOS = ROOT / "tests" / "scenarios"
DEFINITIONS = SCENARIOS / "definitions"
START = "2025-09-30T10:00:00+08:00"


def _write(folder: Path, scenario: dict[str, Any], name: str = "scenario.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def _complaint(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "complaint",
        "definitions": [str(DEFINITIONS / "deadline_demo.yaml")],
        "start": START,
        "steps": [
            {"create": {"case": "c1", "definition": "deadline_demo", "data": {"customer": "医院"}}},
            *steps,
        ],
    }


BUNDLED = sorted(SCENARIOS.glob("*.yaml"))


def test_the_scenarios_are_found() -> None:
    # An empty glob would leave the parametrized test below with nothing to run: skipped,
    # not failed.
    assert len(BUNDLED) >= 4, SCENARIOS


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_every_bundled_scenario_passes(path: Path) -> None:
    report = run_scenario_file(path)
    assert report.ok, "\n".join(f"steps[{s.index}] {s.kind}: {s.message}" for s in report.failures)
    assert report.steps and len(report.steps) == len(yaml.safe_load(path.read_text())["steps"])
    assert report.timers_fired > 0


def test_a_wrong_expectation_is_a_failed_step_naming_what_differed(tmp_path: Path) -> None:
    scenario = _complaint(
        {"advance_to": "2025-10-11T10:00:01+08:00"},  # a second past the deadline
        {"expect": {"case": "c1", "state": "received", "data": {"customer": "医院"}}},
        {"expect": {"case": "c1", "triggers": ["answer"], "sla": {"answer": "met"}}},
        {"fire": {"case": "c1", "trigger": "answer", "payload": {"text": "done"}}},
    )
    report = run_scenario_file(_write(tmp_path, scenario))
    assert not report.ok
    assert [(s.index, s.kind) for s in report.failures] == [(2, "expect"), (3, "expect")]
    first, second = (s.message for s in report.failures)
    assert first == 'state is "overdue", expected "received"'
    assert 'triggers fired ["answer_overdue"], expected ["answer"]' in second
    assert 'SLA answer is "breached", expected "met"' in second
    assert report.steps[-1].ok  # a failed expectation does not stop the scenario


def test_an_engine_error_in_a_step_is_a_failed_step_and_ends_the_run(tmp_path: Path) -> None:
    scenario = _complaint(
        {"fire": {"case": "c1", "trigger": "answer", "payload": {}}},
        {"advance": "30d"},
    )
    report = run_scenario_file(_write(tmp_path, scenario))
    assert not report.ok
    (failed,) = report.failures
    assert (failed.index, failed.kind) == (1, "fire")
    assert failed.message.startswith("payload-invalid:")
    assert len(report.steps) == 2  # nothing runs after it
    assert report.timers_fired == 0


def test_expect_error_fails_when_the_step_succeeds(tmp_path: Path) -> None:
    scenario = _complaint(
        {
            "expect_error": {
                "fire": {"case": "c1", "trigger": "answer", "payload": {"text": "已回电"}},
                "code": "x",
            }
        },
    )
    report = run_scenario_file(_write(tmp_path, scenario))
    (failed,) = report.failures
    assert failed.message == "expected error x, but the step succeeded"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": None}, "A scenario is a mapping with start, definitions and steps."),
        ({"start": "2025-09-30T10:00:00"}, "start: 2025-09-30T10:00:00 has no UTC offset."),
        ({"start": "next Tuesday"}, 'start: "next Tuesday" is not an ISO 8601 instant.'),
        ({"definitions": ["missing.yaml"]}, "Definition file 'missing.yaml' not found"),
        ({"definitions": []}, "The scenario names no definition."),
        (
            {"steps": [{"advance": "1h", "fire": {"case": "c1", "trigger": "answer"}}]},
            "steps[0] must be a mapping with exactly one of: create, fire,",
        ),
        ({"steps": ["advance 1h"]}, "steps[0] must be a mapping with exactly one of"),
        ({"steps": [{"advance": "soon"}]}, "steps[0]: Duration 'soon' is not understood."),
        (
            {"steps": [{"advance_to": "2025-09-29T10:00:00+08:00"}]},
            "steps[0]: 2025-09-29T10:00:00+08:00 is in the virtual past.",
        ),
        (
            {"steps": [{"expect": {"case": "c9", "state": "received"}}]},
            'steps[0]: no case called "c9" was created earlier in the scenario.',
        ),
        ({"steps": [{"create": {"case": "c1"}}]}, "steps[0].create lacks definition."),
        (
            {"steps": [{"fire": {"case": "c1"}}]},
            "steps[0].fire lacks trigger.",
        ),
        (
            {"steps": [{"expect": {"case": "c1", "stat": "received"}}]},
            "steps[0].expect has unknown key(s) stat.",
        ),
        ({"steps": [{"expect": "c1"}]}, 'steps[0].expect must be a mapping, not "c1".'),
    ],
)
def test_a_malformed_scenario_raises_scenario_error(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    scenario = {**_complaint(), **change}
    with pytest.raises(ScenarioError) as caught:
        run_scenario_file(_write(tmp_path, scenario))
    assert message in caught.value.message


def test_a_year_of_monthly_cron_timers_for_many_devices(tmp_path: Path) -> None:
    devices = 10
    scenario = {
        "name": "a year of stock counts",
        "definitions": [str(DEFINITIONS / "stock_count_demo.yaml")],
        "start": "2027-01-01T00:00:00+08:00",
        "steps": [
            *(
                {
                    "create": {
                        "case": f"d{i}",
                        "definition": "stock_count_demo",
                        "data": {"counts": 0},
                    }
                }
                for i in range(devices)
            ),
            {"advance_to": "2028-01-01T00:00:00+08:00"},
            *({"expect": {"case": f"d{i}", "data": {"counts": 12}}} for i in range(devices)),
        ],
    }
    report = run_scenario(scenario, tmp_path)
    assert report.ok, [s.message for s in report.failures]
    assert report.timers_fired == 12 * devices


def test_the_cli_exits_0_when_every_scenario_passes_and_1_otherwise(tmp_path: Path) -> None:
    passing = SCENARIOS / "complaint_national_day.yaml"
    failing = _write(
        tmp_path,
        _complaint(
            {"advance_to": "2025-10-11T10:00:00+08:00"},
            {"expect": {"case": "c1", "state": "received"}},
        ),
        "failing.yaml",
    )
    runner = CliRunner()

    ok = runner.invoke(main, ["simulate", str(passing)])
    assert ok.exit_code == 0, ok.output
    assert "complaint deadline across National Day 2025: ok" in ok.output

    failed = runner.invoke(main, ["simulate", str(passing), str(failing)])
    assert failed.exit_code == 1
    assert "complaint: FAILED" in failed.output
    assert "FAIL steps[2] expect" in failed.output
    assert 'state is "overdue", expected "received"' in failed.output

    malformed = _write(tmp_path, {**_complaint(), "start": "tomorrow"}, "malformed.yaml")
    broken = runner.invoke(main, ["simulate", str(malformed)])
    assert broken.exit_code == 1
    assert 'error: start: "tomorrow" is not an ISO 8601 instant.' in broken.output
    assert "Traceback" not in broken.output
