"""What a message must not show: Python's spelling of a value (docs/api.md, "Errors").

People wrote ``null``, ``true``, ``{"a": 1}`` and ``2026-02-24T10:00:00``; Python would show
``None``, ``True``, ``{'a': 1}`` and ``datetime.datetime(2026, 2, 24, 10, 0)``. Shared by the
tests that walk error paths through the services, the simulator, the CLI and the API.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PYTHON_SPELLING = re.compile(
    r"\bNone\b|\bTrue\b|\bFalse\b"  # null, true, false
    r"|datetime\.|timedelta\(|Decimal\(|\bdate\("  # reprs of instants and numbers
    r"|\{'|\['"  # a dict or list of Python strings
)


def assert_reads_as_written(*texts: str | None) -> None:
    """No text shows a value the way Python spells it."""
    for text in _flatten(texts):
        found = PYTHON_SPELLING.search(text)
        assert found is None, f"{found.group(0)!r} in {text!r}"


def _flatten(texts: Iterable[str | None]) -> Iterable[str]:
    return (t for t in texts if t)
