"""svcflow engine: workflow definitions, validation, the state machine, and the services that
persist cases.

The pure core (``definition``, ``validation``, ``expressions``, ``machine``, ``durations``,
``calendar``, ``replay``, ``errors``) does no I/O and never reads the wall clock; ``db`` and
``services`` are the adapters to the database.
"""
