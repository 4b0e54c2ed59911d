"""Webhooks under a real kill -9: worker processes started as the Procfile starts them (each
runs the webhook sender's loop; the lease holder sends), a real receiver on 127.0.0.1, and
the worker that holds the sender lease killed. Every event still arrives, with no human
action, once its lease has run out. Time is real here (the workers read the system clock);
every wait has a deadline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.runtime.webhook_sender import LEASE, LEASE_TTL
from engine.services import webhooks
from engine.store import leases
from engine.store.models import CaseEvent, WorkerHeartbeat
from tests.conftest import DATABASES, T0
from tests.faults import Cluster, FaultSetupError, cluster
from tests.webhook_receiver import Receiver, running_receiver

pytestmark = pytest.mark.skipif(
    "postgresql" not in DATABASES, reason="the fault tests run on PostgreSQL"
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def workers(fresh_postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(fresh_postgres_url, tmp_path, workers=2) as running:
        yield running


def _sender_index(workers: Cluster) -> int:
    with workers.runtime.sessions() as session:
        lease = leases.get(session, LEASE)
        pid = session.execute(
            select(WorkerHeartbeat.pid).where(WorkerHeartbeat.name == (lease and lease.holder))
        ).scalar_one_or_none()
    if pid is None:
        raise FaultSetupError("no worker holds the webhook sender lease")
    return workers._index_of(pid)


def _event_ids(workers: Cluster) -> set[str]:
    with workers.runtime.sessions() as session:
        return {f"evt_{p}" for p in session.execute(select(CaseEvent.position)).scalars()}


def test_kill_9_of_the_sending_worker_loses_no_delivery(
    workers: Cluster, receiver: Receiver
) -> None:
    with workers.runtime.sessions() as session, session.begin():
        _, receiver.secret = webhooks.create_subscription(
            session, url=receiver.url, events=["*"], definition=None, owner="faults",
            now=T0, allowed_hosts=None,
        )  # fmt: skip
    workers.arm(5, lead=600, spread=1)  # five cases created: five events
    workers.wait_for(lambda: len(receiver.accepted()) >= 5, "the first deliveries")
    holder = _sender_index(workers)
    workers.kill(holder)
    workers.arm(5, lead=600, spread=1)  # five more, while nobody may send
    wanted = _event_ids(workers)
    workers.wait_for(
        lambda: {r.webhook_id for r in receiver.accepted()} >= wanted,
        "every event to arrive after the kill",
        timeout=LEASE_TTL.total_seconds() + 30,
    )
    assert all(r.verified for r in receiver.received)
    assert _sender_index(workers) != holder
