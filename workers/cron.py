"""Periodic jobs, run by ``rq cron workers/cron.py`` (RQ's own cron scheduler).

Running several cron processes is safe: the sweeper is idempotent.
"""

from rq import cron

from engine.runtime.resources import QUEUE_NAME
from workers.jobs import refresh_dwell_stats, sweep

cron.register(sweep, queue_name=QUEUE_NAME, interval=30, result_ttl=0, name="svcflow-sweep")
# Dwell percentiles move slowly; hourly keeps the `dwelling` rule current at little cost.
cron.register(
    refresh_dwell_stats,
    queue_name=QUEUE_NAME,
    interval=3600,
    result_ttl=0,
    job_timeout=1800,
    name="svcflow-dwell-stats",
)
