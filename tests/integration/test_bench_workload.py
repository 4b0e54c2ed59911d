"""bench/workload.py keeps running: its smoke run drives every journey of the mix through the
engine, replays the engine's writes as the baseline and checks that both left the same
cases, so a change to a bundled workflow or to what a fire writes that the bench cannot
follow fails here rather than on the day someone measures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_workload_bench_runs_its_smoke_run() -> None:
    done = subprocess.run(
        [sys.executable, "bench/workload.py", "--quick", "--databases", "sqlite"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # Exit status 2 would mean a journey step failed or the baseline's cases came out unlike
    # the engine's (it did not make the same writes); 1 is not possible in a smoke run.
    assert done.returncode == 0, done.stdout + done.stderr
    figures = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ")]
    assert "ratio" in figures, done.stdout
    assert "growth" in figures, done.stdout
