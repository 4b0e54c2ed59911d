"""Prometheus metrics and structured JSON logs, for the web app and the workers.

Metrics are fed by committed observations (engine/store/observations.py). With several
processes on one host (gunicorn workers, RQ workers), set ``PROMETHEUS_MULTIPROC_DIR`` to a
shared empty directory before they start, as prometheus_client's multiprocess mode requires;
``svcflow run`` does. Gauges that describe the database (stuck cases, RQ queue depth) are
computed when /metrics is scraped.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from prometheus_client import Counter, Histogram
from pythonjsonlogger.json import JsonFormatter

from engine.store import observations

TRANSITIONS = Counter(
    "svcflow_transitions_total", "Transitions committed", ["definition", "trigger"]
)
EVENTS = Counter("svcflow_events_total", "History events committed", ["definition", "event_type"])
SLA_BREACHES = Counter("svcflow_sla_breaches_total", "SLA breaches recorded", ["definition", "sla"])
TIMER_LAG = Histogram(
    "svcflow_timer_lag_seconds",
    "Delay from a timer's due time to its firing",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600),
)

log = logging.getLogger("svcflow")
_installed = threading.Lock()
_done = False


def _sink(observation: observations.Observation) -> None:
    labels: dict[str, Any] = observation.labels
    if observation.kind == "timer_fired":
        TIMER_LAG.observe(max(0.0, float(labels["lag_seconds"])))
        log.info(
            "timer fired", extra={k: labels[k] for k in ("timer_id", "case_id", "lag_seconds")}
        )
        return
    definition = str(labels.get("definition"))
    event_type = str(labels.get("event_type"))
    EVENTS.labels(definition, event_type).inc()
    if event_type == "transition":
        TRANSITIONS.labels(definition, str(labels.get("trigger"))).inc()
    if event_type == "sla_breached":
        SLA_BREACHES.labels(definition, str(labels.get("sla"))).inc()
    log.info(event_type, extra={k: v for k, v in labels.items() if v is not None})


def install() -> None:
    """Register the metrics sink and JSON logging once per process."""
    global _done
    with _installed:
        if _done:
            return
        observations.add_sink(_sink)
        if os.environ.get("SVCFLOW_LOG_FORMAT", "json") == "json":
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(
                JsonFormatter(
                    "%(asctime)s %(levelname)s %(name)s %(message)s",
                    rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                )
            )
            root = logging.getLogger()
            root.handlers = [h for h in root.handlers if not isinstance(h.formatter, JsonFormatter)]
            root.addHandler(handler)
            if root.level > logging.INFO or root.level == logging.NOTSET:
                root.setLevel(logging.INFO)
            # transitions logs every trigger at INFO; our own event lines say it once.
            logging.getLogger("transitions").setLevel(logging.WARNING)
            # Web and worker processes never migrate (`svcflow db upgrade` does, without
            # this setup); Alembic's INFO lines here were an import's plugin list and two
            # lines per readiness probe, every few seconds.
            logging.getLogger("alembic").setLevel(logging.WARNING)
        _done = True
