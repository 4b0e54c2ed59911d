"""One log line per outage of a dependency, however many calls fail during it.

A web process answers many requests a second; when its database stops, each of them fails the
same way, and a traceback per request buries the one fact an operator needs under thousands of
copies. :class:`OutageLog` turns the stream of failures and successes into three kinds of
line: a warning when the first call fails (what failed, since when), a reminder at most once
per ``remind_every`` while it lasts (how many calls failed meanwhile), and the recovery, with
the outage's length, when a call reaches the dependency again.

It holds a few scalars behind a lock, so any number of threads may report into one log and
its memory does not grow with the outage. Time comes from the caller (the runtime's clock).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

log = logging.getLogger(__name__)
REMIND_EVERY = timedelta(minutes=1)


class OutageLog:
    """Whether ``dependency`` is out, since when, and how many calls failed meanwhile.

    Calls overlap, so a report can be stale by the time it arrives: a statement that completes
    on a connection a stopping server has not closed yet, after other calls saw the outage
    begin; a connection attempt that a starting server turned away, reported after other calls
    saw the outage end. Taken at face value, each would split one outage into several. So a
    caller reads :attr:`epoch` before its call begins and passes it with its report: a success
    ends the outage only if no failure was reported since, and a failure starts one only if
    no outage ended since.
    """

    def __init__(self, dependency: str, *, remind_every: timedelta = REMIND_EVERY) -> None:
        self.dependency = dependency
        self.remind_every = remind_every
        self._lock = threading.Lock()
        self._since: datetime | None = None
        self._reason = ""
        self._failed = 0  # calls failed in this outage
        self._reported_at: datetime | None = None
        self._reported_failed = 0
        self._epoch = 0  # counts failures and recoveries

    @property
    def since(self) -> datetime | None:
        """When the current outage began, or None while the dependency answers."""
        return self._since

    @property
    def epoch(self) -> int:
        """Changes with every failure and every recovery (see the class's docstring)."""
        return self._epoch

    def failed(self, reason: str, now: datetime, epoch: int | None = None) -> None:
        """A call failed because ``dependency`` is out; ``reason`` says how. ``epoch``, read
        before the call began, keeps a call that began before the last recovery from starting
        an outage: the call after it will, if the dependency really is out again."""
        with self._lock:
            if self._since is None and epoch is not None and epoch != self._epoch:
                return
            self._epoch += 1
            self._failed += 1
            if self._since is None:
                self._since, self._reason = now, reason
                self._reported_at, self._reported_failed = now, 1
                log.warning(
                    "%s unavailable since %s: %s",
                    self.dependency,
                    now.isoformat(),
                    reason,
                    extra={"dependency": self.dependency, "since": now.isoformat()},
                )
            elif self._reported_at is not None and now - self._reported_at >= self.remind_every:
                log.warning(
                    "%s still unavailable since %s (%.0f s): %d calls failed since the last "
                    "report, the latest with: %s",
                    self.dependency,
                    self._since.isoformat(),
                    (now - self._since).total_seconds(),
                    self._failed - self._reported_failed,
                    reason,
                    extra={"dependency": self.dependency, "since": self._since.isoformat()},
                )
                self._reported_at, self._reported_failed = now, self._failed

    def succeeded(self, now: datetime, epoch: int | None = None) -> None:
        """A call reached ``dependency``. It ends the outage, unless ``epoch`` (read before the
        call began) shows that a failure was reported after the call began."""
        if self._since is None:  # the common case, read without the lock: nothing to end
            return
        with self._lock:
            since = self._since
            if since is None or (epoch is not None and epoch != self._epoch):
                return
            log.info(
                "%s available again after %.1f s (unavailable since %s, first with: %s); "
                "%d calls failed meanwhile",
                self.dependency,
                (now - since).total_seconds(),
                since.isoformat(),
                self._reason,
                self._failed,
                extra={
                    "dependency": self.dependency,
                    "since": since.isoformat(),
                    "outage_seconds": round((now - since).total_seconds(), 3),
                    "failed_calls": self._failed,
                },
            )
            self._since, self._reason, self._failed = None, "", 0
            self._reported_at, self._reported_failed = None, 0
            self._epoch += 1
