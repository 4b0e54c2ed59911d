"""``/metrics`` for Prometheus: the committed-work counters and histograms, plus gauges read
at scrape time (stuck cases per reason, RQ queue depth)."""

from __future__ import annotations

import contextlib
import os

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

from api import state
from engine.services import delivery_health, inspection

blp = Blueprint("metrics", __name__)


def _stuck_counts() -> dict[str, int]:
    """Stuck cases per rule, kept for ``state.SCRAPE_CACHE_SECONDS`` (scrapes may be frequent)."""
    app = state.current()
    counts: dict[str, int] | None = app.scrapes.get("stuck")
    if counts is None:
        with app.runtime.sessions() as session:
            counts = inspection.counts(session, now=app.runtime.clock.now())
        app.scrapes["stuck"] = counts
    return counts


def _delivery_report() -> delivery_health.DeliveryReport:
    app = state.current()
    report: delivery_health.DeliveryReport | None = app.deliveries.get("report")
    if report is None:
        with app.runtime.sessions() as session:
            report = delivery_health.report(session, now=app.runtime.clock.now())
        app.deliveries["report"] = report
    return report


def delivery_gauges(registry: CollectorRegistry) -> None:
    """The gauges to alert on (docs/operations.md): how late the most overdue armed timer is,
    how long ago the sweep ran, how many workers report in."""
    overdue = Gauge(
        "svcflow_timer_oldest_overdue_seconds",
        "How far behind its expected delivery the most overdue armed timer is (0: none is)",
        registry=registry,
    )
    armed = Gauge("svcflow_timers_armed", "Armed timers", registry=registry)
    sweep_age = Gauge(
        "svcflow_timer_sweep_age_seconds",
        "Seconds since the timer sweep last ran (NaN: never)",
        registry=registry,
    )
    workers = Gauge("svcflow_workers_alive", "Workers whose heartbeat is recent", registry=registry)
    # When the database is down /readyz says so; metrics still answer without these.
    with contextlib.suppress(Exception):
        report = _delivery_report()
        overdue.set(report.overdue_seconds)
        armed.set(report.armed)
        age = report.sweep_age_seconds
        sweep_age.set(float("nan") if age is None else age)
        workers.set(sum(w.alive for w in report.workers))


@blp.route("/metrics")
def metrics() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = DEFAULT_REGISTRY
    scrape = CollectorRegistry()
    delivery_gauges(scrape)
    stuck = Gauge(
        "svcflow_stuck_cases", "Cases found by each inspection rule", ["reason"], registry=scrape
    )
    depth = Gauge("svcflow_rq_queue_depth", "Jobs waiting in the svcflow queue", registry=scrape)
    # When the database is down /healthz says so; metrics still answer.
    with contextlib.suppress(Exception):
        for reason, count in _stuck_counts().items():
            stuck.labels(reason).set(count)
    with contextlib.suppress(Exception):  # Redis is down
        depth.set(state.runtime().queue.count)
    body = generate_latest(registry) + generate_latest(scrape)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
