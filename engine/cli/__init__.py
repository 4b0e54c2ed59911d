"""The ``svcflow`` command line. Each module registers the commands of one concern on the
group defined in :mod:`engine.cli.app`."""

from engine.cli import (  # noqa: F401 (each module registers its commands)
    calendars,
    cases,
    contracts,
    definitions,
    kpis,
    project,
    run,
    supervision,
    timers,
    tokens,
)
from engine.cli.app import main

__all__ = ["main"]
