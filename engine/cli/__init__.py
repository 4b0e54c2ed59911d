"""The ``svcflow`` command line. Each module registers the commands of one concern on the
group defined in :mod:`engine.cli.app`."""

from engine.cli import calendars, cases, definitions, project, timers, tokens  # noqa: F401
from engine.cli.app import main

__all__ = ["main"]
