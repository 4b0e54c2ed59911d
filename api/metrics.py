"""``/metrics`` for Prometheus: the committed-work counters and histograms, plus gauges read
at scrape time (stuck cases per reason, RQ queue depth)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

from engine.services import inspection
from workers import runtime

blp = Blueprint("metrics", __name__)
CACHE_SECONDS = 30.0  # the stuck-case counts are a few COUNT queries; scrapes may be frequent
_cache: dict[str, Any] = {"at": 0.0, "stuck": {}}


def _stuck_counts() -> dict[str, int]:
    if time.monotonic() - _cache["at"] > CACHE_SECONDS:
        rt = runtime.current()
        with rt.sessions() as session:
            _cache["stuck"] = inspection.counts(session, now=rt.clock.now())
        _cache["at"] = time.monotonic()
    counts: dict[str, int] = _cache["stuck"]
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
        depth.set(runtime.current().queue.count)
    body = generate_latest(registry) + generate_latest(scrape)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
