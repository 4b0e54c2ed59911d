"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 that verifies each
request's Standard Webhooks signature and records what arrived, answering with the status a
test chooses per request."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    webhook_id: str
    body: dict[str, Any]
    verified: bool
    answered: int

    @property
    def case_id(self) -> int:
        return int(self.body["data"]["case_id"])

    @property
    def seq(self) -> int:
        return int(self.body["data"]["seq"])


@dataclass
class Receiver:
    url: str
    secret: str = ""  # set once the subscription exists
    answer: Callable[[dict[str, Any]], int] = lambda body: 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def by_case(self) -> dict[int, list[int]]:
        """The seqs each case's accepted deliveries carried, in arrival order."""
        seen: dict[int, list[int]] = {}
        for r in self.accepted():
            seen.setdefault(r.case_id, []).append(r.seq)
        return seen


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.loads(raw)
            try:
                Webhook(receiver.secret).verify(raw, dict(self.headers.items()))
                verified = True
            except WebhookVerificationError:
                verified = False
            status = receiver.answer(body) if verified else 401
            with receiver.lock:
                receiver.received.append(
                    Received(self.headers["webhook-id"], body, verified, status)
                )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks"
    try:
        yield receiver
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
