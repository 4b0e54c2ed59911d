"""``svcflow`` help: ``-h`` everywhere, whole summaries in the command lists, and the root help
says which task lives in the CLI, the HTTP API or the dashboard (docs: README, "Where each
task lives")."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from engine.cli import main


def _walk(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield prefix, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _walk(command, (*prefix, name))
        else:
            yield (*prefix, name), command


COMMANDS = dict(_walk(main))
GROUPS = {path: c for path, c in COMMANDS.items() if isinstance(c, click.Group)}


def _help(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "-h"], prog_name="svcflow", terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "svcflow")
def test_every_command_answers_dash_h_with_its_help(path: tuple[str, ...]) -> None:
    short = _help(*path)
    long = CliRunner().invoke(main, [*path, "--help"], prog_name="svcflow", terminal_width=80)

    assert short == long.output
    assert short.startswith(f"Usage: svcflow {' '.join(path)}".rstrip())


@pytest.mark.parametrize("path", GROUPS, ids=lambda p: " ".join(p) or "svcflow")
def test_command_lists_show_each_summary_whole(path: tuple[str, ...]) -> None:
    listing = _help(*path).partition("Commands:")[2].partition("\n\n")[0]

    assert listing.strip()
    assert "..." not in listing
    for command in GROUPS[path].commands.values():
        first_sentence = _flat(command.help or "").split(". ")[0]
        assert first_sentence in _flat(listing), command.name


def test_root_help_says_where_each_task_lives() -> None:
    output = _flat(_help())

    where = output.partition("Where each task lives")[2]
    assert "operators and process owners" in where
    assert "integrators" in where.partition("HTTP API")[2]
    assert "http://127.0.0.1:8000/api/v1" in where
    assert "/api/docs" in where
    assert "supervisors" in where.partition("dashboard")[2]
    assert "http://127.0.0.1:8000/dashboard" in where
