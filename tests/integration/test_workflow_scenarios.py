"""Every scenario shipped with the bundled workflows passes on virtual time.

The scenarios under workflows/scenarios/ are the catalog's promises written as checks (an
emergency ticket breached at 1h01m, a complaint deadline across National Day, ...). They run
through the same simulator process owners use: `svcflow simulate workflows/scenarios/*.yaml`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.simulation import run_scenario_file

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "workflows" / "scenarios").glob("*.yaml"))


def test_the_bundled_workflows_ship_scenarios() -> None:
    assert len(SCENARIOS) >= 6


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_passes(path: Path) -> None:
    report = run_scenario_file(path)
    failures = [f"steps[{s.index}] {s.kind}: {s.message}" for s in report.failures]
    assert report.ok, f"{path.name}: " + "; ".join(failures)
