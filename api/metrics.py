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
from engine.services import inspection

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


@blp.route("/metrics")
def metrics() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = DEFAULT_REGISTRY
    scrape = CollectorRegistry()
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
