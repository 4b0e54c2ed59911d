"""``svcflow validate`` and ``definitions publish`` refuse a definition beyond the safety
limits with what, where and what to do, exit 1, and store nothing."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from engine.cli import main
from engine.core.limits import VALUE_MAX_CHARS
from tests.conftest import WORKFLOWS


def _bomb(path: Path) -> Path:
    lines = ["name: bomb", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_validate_refuses_an_alias_bomb_with_its_line_and_a_hint(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.yaml")
    result = CliRunner().invoke(main, ["validate", str(bomb)])
    assert result.exit_code == 1
    assert "values once its aliases are expanded: refused at line 7" in result.output
    assert "hint:" in result.output
    assert "Traceback" not in result.output


def test_publish_refuses_it_and_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'svcflow.db'}"
    runner = CliRunner()
    assert runner.invoke(main, ["--database-url", url, "db", "upgrade"]).exit_code == 0
    bomb = _bomb(tmp_path / "bomb.yaml")
    result = runner.invoke(main, ["--database-url", url, "definitions", "publish", str(bomb)])
    assert result.exit_code == 1
    assert "refused at line 7" in result.output
    assert "hint:" in result.output
    listed = runner.invoke(main, ["--database-url", url, "definitions", "list"])
    assert "bomb" not in listed.output


def test_parameters_and_json_options_are_bounded_like_case_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'svcflow.db'}"
    runner = CliRunner()
    init = runner.invoke(main, ["--database-url", url, "init", "--workflows", str(WORKFLOWS)])
    assert init.exit_code == 0, init.output
    long = "1" * (VALUE_MAX_CHARS + 1)
    args = ["--database-url", url, "definitions", "set-param", "loaner", "delivery_within", long]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert f"would hold {VALUE_MAX_CHARS + 1:,} characters" in result.output
    assert "hint:" in result.output
    for data, said in (
        ('{"fault": ' + "[" * 5000 + "]" * 5000 + "}", "more than 32 deep"),
        ('{"fault": ' + "1" * 5000 + "}", "not usable JSON"),
    ):
        created = runner.invoke(
            main, ["--database-url", url, "cases", "create", "loaner", "--data", data]
        )
        assert created.exit_code == 2, created.output
        assert said in created.output
