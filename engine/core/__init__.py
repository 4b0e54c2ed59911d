"""The pure core: what svcflow decides, with no I/O.

Nothing here imports SQLAlchemy, Redis, RQ or Flask, or reads the wall clock (pinned by
tests/unit/test_purity.py, which imports every module of this package with those blocked).
"""
