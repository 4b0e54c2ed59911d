"""docs/requirements.md is what `svcflow requirements` generates now, and every catalog ID
is implemented or explained (issue: traceability of the after-sales workflows)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_requirements_doc_is_current_and_complete() -> None:
    result = CliRunner().invoke(
        main,
        [
            "requirements",
            "--check",
            "--workflows",
            str(ROOT / "workflows"),
            "--tests",
            str(ROOT / "tests"),
            "--output",
            str(ROOT / "docs" / "requirements.md"),
        ],
    )
    assert result.exit_code == 0, result.output
