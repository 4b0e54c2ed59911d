"""Webhooks end to end: events committed through the services, deliveries made from the feed
and sent by the sender to a real HTTP receiver on 127.0.0.1 that verifies every signature
(tests/webhook_receiver.py). Retry and dead-letter times are skipped on a ManualClock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.core.machine import Actor
from engine.errors import DeliveryNotDead, WebhookInvalid, WebhookNotFound
from engine.runtime.clock import ManualClock
from engine.runtime.feed import FeedWaiter
from engine.runtime.webhook_sender import LEASE_TTL, WebhookSender, drain
from engine.services import webhooks
from engine.store.models import DeliveryStatus, WebhookDelivery, WebhookStatus
from tests.conftest import T0
from tests.factories import create_case, fire
from tests.webhook_receiver import Receiver, running_receiver
from tests.workflows import COUNTER

HOOKS = Actor("token:erp", frozenset({"integrator"}))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def sender(sessions: sessionmaker[Session], clock: ManualClock) -> WebhookSender:
    return WebhookSender(sessions, clock, "worker-1", hosts=["127.0.0.1"])


def _subscribe(
    sessions: sessionmaker[Session], receiver: Receiver, events: list[str] | None = None, **kw: Any
) -> int:
    with sessions() as session, session.begin():
        sub, secret = webhooks.create_subscription(
            session,
            url=receiver.url,
            events=events or ["*"],
            definition=kw.get("definition"),
            owner=HOOKS.name,
            now=T0,
            allowed_hosts=["127.0.0.1"],
        )
    receiver.secret = secret
    assert secret.startswith("whsec_")
    return sub.id


def _statuses(sessions: sessionmaker[Session]) -> dict[int, str]:
    with sessions() as session:
        rows = session.execute(select(WebhookDelivery.position, WebhookDelivery.status))
        return {int(p): s for p, s in rows}


def test_signed_deliveries_arrive_once_each_in_order_per_case(
    sessions: sessionmaker[Session],
    publish_workflow: Any,
    receiver: Receiver,
    sender: WebhookSender,
) -> None:
    publish_workflow(COUNTER)
    before = create_case(sessions, "it_counter", {"count": 0}).case.id  # before subscribing
    _subscribe(sessions, receiver)
    a = create_case(sessions, "it_counter", {"count": 0}).case.id
    b = create_case(sessions, "it_counter", {"count": 0}).case.id
    for _ in range(3):
        fire(sessions, a, "ping")
        fire(sessions, b, "ping")
    fire(sessions, before, "ping")

    assert drain(sender) == 9
    assert all(r.verified for r in receiver.received)
    assert receiver.by_case() == {a: [1, 2, 3, 4], b: [1, 2, 3, 4], before: [2]}
    ids = [r.webhook_id for r in receiver.received]
    assert len(set(ids)) == len(ids) == 9
    assert ids == [f"evt_{r.body['data']['position']}" for r in receiver.received]
    assert receiver.received[0].body["type"] == "created"
    assert set(_statuses(sessions).values()) == {"delivered"}
    assert drain(sender) == 0  # nothing is sent twice


def test_filters_by_type_and_definition(
    sessions: sessionmaker[Session],
    publish_workflow: Any,
    receiver: Receiver,
    sender: WebhookSender,
) -> None:
    publish_workflow(COUNTER)
    _subscribe(sessions, receiver, ["created"], definition="it_counter")
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    fire(sessions, case_id, "ping")
    drain(sender)
    assert [(r.case_id, r.body["type"]) for r in receiver.accepted()] == [(case_id, "created")]


def test_a_500_is_retried_with_backoff_and_holds_back_only_its_own_case(
    sessions: sessionmaker[Session],
    publish_workflow: Any,
    receiver: Receiver,
    sender: WebhookSender,
    clock: ManualClock,
) -> None:
    publish_workflow(COUNTER)
    _subscribe(sessions, receiver)
    failing = create_case(sessions, "it_counter", {"count": 0}).case.id
    healthy = create_case(sessions, "it_counter", {"count": 0}).case.id
    fire(sessions, failing, "ping")
    fire(sessions, healthy, "ping")
    refusals = iter([500, 500])
    receiver.answer = lambda body: (
        next(refusals, 200) if body["data"]["case_id"] == failing else 200
    )

    drain(sender)
    assert receiver.by_case() == {healthy: [1, 2]}  # the failing case's seq 2 waits for seq 1
    clock.advance(webhooks.retry_delay(1) - timedelta(seconds=1))
    drain(sender)
    assert failing not in receiver.by_case()  # not due yet: nothing sent early
    clock.advance(timedelta(seconds=1))
    drain(sender)  # the second attempt also gets a 500
    clock.advance(webhooks.retry_delay(2))
    drain(sender)
    assert receiver.by_case()[failing] == [1, 2]
    attempts = [r.seq for r in receiver.received if r.case_id == failing]
    assert attempts == [1, 1, 1, 2]


def test_after_the_retry_window_a_delivery_is_dead_lettered_then_redelivered(
    sessions: sessionmaker[Session],
    publish_workflow: Any,
    receiver: Receiver,
    sender: WebhookSender,
    clock: ManualClock,
) -> None:
    publish_workflow(COUNTER)
    _subscribe(sessions, receiver)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    receiver.answer = lambda body: 500
    for _ in range(100):
        drain(sender)
        if _statuses(sessions) == {1: "dead"}:
            break
        clock.advance(webhooks.LONGEST_RETRY)
    else:
        raise AssertionError("never dead-lettered")
    sent = len(receiver.received)
    assert sent >= 12  # doubling from 10 s to 2 h, then every 2 h, for 24 h
    first, last = T0, clock.now()
    assert last - first >= webhooks.RETRY_WINDOW
    clock.advance(timedelta(days=3))
    drain(sender)
    assert len(receiver.received) == sent  # a dead letter is not retried by itself

    with sessions() as session:
        (dead,) = webhooks.list_deliveries(session, actor=HOOKS, status=DeliveryStatus.DEAD)
    assert dead.case_id == case_id and dead.last_error and "HTTP 500" in dead.last_error
    receiver.answer = lambda body: 200
    with sessions() as session, session.begin():
        webhooks.redeliver(session, dead.id, actor=HOOKS, now=clock.now())
    with sessions() as session, session.begin(), pytest.raises(DeliveryNotDead):
        webhooks.redeliver(session, dead.id, actor=HOOKS, now=clock.now())
    drain(sender)
    assert receiver.by_case() == {case_id: [1]}
    assert _statuses(sessions) == {1: "delivered"}


def test_a_paused_subscription_catches_up_when_resumed(
    sessions: sessionmaker[Session],
    publish_workflow: Any,
    receiver: Receiver,
    sender: WebhookSender,
) -> None:
    publish_workflow(COUNTER)
    sub_id = _subscribe(sessions, receiver)
    with sessions() as session, session.begin():
        webhooks.set_status(session, sub_id, WebhookStatus.PAUSED, actor=HOOKS)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    drain(sender)
    assert receiver.received == []
    with sessions() as session, session.begin():
        webhooks.set_status(session, sub_id, WebhookStatus.ACTIVE, actor=HOOKS)
    drain(sender)
    assert receiver.by_case() == {case_id: [1]}


def test_a_sender_killed_before_recording_is_replaced_and_nothing_is_lost(
    sessions: sessionmaker[Session],
    publish_workflow: Any,
    receiver: Receiver,
    sender: WebhookSender,
    clock: ManualClock,
) -> None:
    """The worker dies (kill -9) after its POSTs and before it writes down that they
    succeeded: the lease expires, another worker takes it and sends them again with the same
    webhook-id, so the receiver can drop the duplicates."""
    publish_workflow(COUNTER)
    _subscribe(sessions, receiver)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    fire(sessions, case_id, "ping")

    class Killed(BaseException):
        pass

    def die(*_: Any) -> Any:
        raise Killed

    sender._record = die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        sender.run_once()
    assert len(receiver.received) == 2
    other = WebhookSender(sessions, clock, "worker-2", hosts=["127.0.0.1"])
    assert not other.run_once().held  # the dead worker's lease still runs
    clock.advance(LEASE_TTL + timedelta(seconds=1))
    assert drain(other) == 2
    ids = [r.webhook_id for r in receiver.received]
    assert ids[:2] == ids[2:]  # the same events again, with the same ids
    assert receiver.by_case() == {case_id: [1, 2, 1, 2]}
    assert set(_statuses(sessions).values()) == {"delivered"}


def test_deliveries_survive_a_redis_flushall(
    sessions: sessionmaker[Session],
    publish_workflow: Any,
    receiver: Receiver,
    clock: ManualClock,
    redis_url: str,
) -> None:
    """The sender's loop runs with a real Redis doorbell; Redis is emptied while events are
    committed: every event still arrives, since the deliveries live in the database."""
    publish_workflow(COUNTER)
    _subscribe(sessions, receiver)
    redis = Redis.from_url(redis_url)
    sender = WebhookSender(sessions, clock, "worker-1", hosts=["127.0.0.1"])
    stopping = threading.Event()
    loop = threading.Thread(
        target=sender.run, args=(stopping, FeedWaiter(redis, poll_seconds=0.05))
    )
    loop.start()
    try:
        case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
        redis.flushall()
        for _ in range(4):
            fire(sessions, case_id, "ping")
        redis.flushall()
        for _ in range(200):
            if len(receiver.accepted()) == 5:
                break
            stopping.wait(0.05)
    finally:
        stopping.set()
        loop.join(timeout=30)
        redis.close()
    assert receiver.by_case() == {case_id: [1, 2, 3, 4, 5]}


def test_bad_urls_and_hosts_outside_the_allow_list_are_refused(
    sessions: sessionmaker[Session],
) -> None:
    cases = [
        ("ftp://erp.example/hook", None, "not an http(s) URL"),
        ("file:///etc/passwd", None, "not an http(s) URL"),
        ("http:///nohost", None, "not an http(s) URL"),
        ("http://169.254.169.254/latest", ["*.hospital.example"], "allow-list"),
    ]
    for url, hosts, says in cases:
        with sessions() as session, session.begin(), pytest.raises(WebhookInvalid) as caught:
            webhooks.create_subscription(
                session,
                url=url,
                events=["*"],
                definition=None,
                owner="x",
                now=T0,
                allowed_hosts=hosts,
            )
        assert says in caught.value.message, url
    with sessions() as session, session.begin():
        made, _ = webhooks.create_subscription(
            session,
            url="https://erp.hospital.example/h",
            events=["created", "created"],
            definition=None,
            owner="x",
            now=T0,
            allowed_hosts=["*.hospital.example"],
        )
    assert made.events == ["created"]
    with sessions() as session, session.begin(), pytest.raises(WebhookInvalid):
        webhooks.create_subscription(
            session,
            url="https://a.example",
            events=["exploded"],
            definition=None,
            owner="x",
            now=T0,
            allowed_hosts=None,
        )


def test_an_integrator_sees_only_its_own_subscriptions(
    sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    mine = _subscribe(sessions, receiver)
    other = Actor("token:wechat", frozenset({"integrator"}))
    with sessions() as session:
        assert [s.id for s in webhooks.list_subscriptions(session, actor=HOOKS)] == [mine]
        assert webhooks.list_subscriptions(session, actor=other) == []
        with pytest.raises(WebhookNotFound):
            webhooks.get_subscription(session, mine, actor=other)
