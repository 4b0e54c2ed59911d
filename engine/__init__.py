"""svcflow's engine, in layers; each imports only the layers below it (contracts in
pyproject.toml, checked by ``make lint`` and tests/unit/test_architecture.py):

- :mod:`engine.core`: the pure domain. Definitions, validation, CEL expressions, the state
  machine, durations, business calendars, timer plans, SLA clocks, replay. No database, queue
  or web package, and never the wall clock: ``now`` is an argument.
- :mod:`engine.store`: persistence. SQLAlchemy models, engines and sessions, migrations.
- :mod:`engine.services`: use cases on a session the caller owns (create, fire, inspect, ...).
- :mod:`engine.runtime`: what a running process wires together: the wall clock, the database
  engine, Redis and RQ delivery of timers, telemetry, the embedded servers.
- :mod:`engine.simulation`: scenarios on virtual time, on a scratch database.
- :mod:`engine.cli`: the ``svcflow`` command, an adapter like ``api/`` and ``workers/``.

:mod:`engine.errors`, the one error tree, sits below them all.
"""
