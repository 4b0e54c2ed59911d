"""The ``svcflow`` command line. Each module registers the commands of one concern on the
group defined in :mod:`engine.cli.app`."""

from engine.cli import (  # noqa: F401 (each module registers its commands)
    audit,
    calendars,
    cases,
    contracts,
    definitions,
    demo,
    kpis,
    migrations,
    project,
    run,
    supervision,
    timers,
    tokens,
    versions,
    webhooks,
)
from engine.cli.app import main

__all__ = ["main"]
