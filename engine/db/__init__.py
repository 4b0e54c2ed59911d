"""Persistence adapters: SQLAlchemy models, database setup and Alembic migrations.

Nothing in the pure core (definition, validation, machine, calendar, ...) imports this package.
"""
