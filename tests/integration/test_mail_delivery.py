"""Mail delivery through the outbox queue to the provider, which is faked only at its HTTP
edge: a tiny local server speaking the ACS Email send API (POST /emails:send)."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.core.credentials import AzureKeyCredential

from shared.mail.delivery import MAX_ATTEMPTS, MailDelivery, backoff
from shared.mail.message import MailMessage
from shared.mail.outbox import Outbox
from shared.mail.providers import AcsEmail


@dataclass
class FakeAcs:
    """Answers like ACS Email: 202 + Operation-Location, or `failing` with a 503."""

    server: ThreadingHTTPServer
    failing: bool = False
    requests: list[dict] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        # (a connection string always means https to the SDK, so plain HTTP takes the
        # endpoint-plus-key form; the request and its HMAC signature are the same)
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"


@pytest.fixture
def acs() -> Iterator[FakeAcs]:
    fake: FakeAcs

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _reply(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            fake.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": json.loads(self.rfile.read(length))}
            )
            if not self.path.startswith("/emails:send"):
                return self._reply(404, {"error": {"code": "NotFound", "message": "no such route"}})
            if fake.failing:
                return self._reply(503, {"error": {"code": "ServiceUnavailable", "message": "try later"}})
            operation = str(uuid.uuid4())
            host, port = self.server.server_address[:2]
            location = f"http://{host}:{port}/emails/operations/{operation}?api-version=2023-03-31"
            self._reply(202, {"id": operation, "status": "Running"}, {"Operation-Location": location})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake = FakeAcs(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def queues(svc):
    """An outbox of its own (queue + poison), so other tests' mail does not mix in."""
    name = f"mailtest-{secrets.token_hex(4)}"
    queue, poison = svc.storage.queue(name), svc.storage.queue(f"{name}-poison")
    queue.create_queue()
    poison.create_queue()
    yield queue, poison
    queue.delete_queue()
    poison.delete_queue()


def delivery(svc, queues, acs: FakeAcs, retry_base: timedelta = timedelta(0)) -> tuple[MailDelivery, Outbox]:
    outbox = Outbox(*queues, svc.clock)
    key = AzureKeyCredential(base64.b64encode(secrets.token_bytes(32)).decode())
    provider = AcsEmail.connect(sender="noreply@example.com", endpoint=acs.endpoint, credential=key)
    return MailDelivery(lambda: provider, outbox, svc.audit, retry_base=retry_base), outbox


def waiting(queue) -> list:
    return list(queue.receive_messages(max_messages=32, visibility_timeout=1))


def test_a_mail_goes_to_acs_as_its_send_api_expects(svc, queues, acs):
    deliver, outbox = delivery(svc, queues, acs)
    message = outbox.send("someone@example.com", "Your activation code", "Your code is 1234.", kind="activation")
    [queued] = waiting(queues[0])
    assert deliver.deliver(queued.content) == "sent"
    [request] = acs.requests
    assert request["path"].startswith("/emails:send?api-version=")
    assert request["headers"].get("Authorization", "").startswith("HMAC-SHA256")
    assert request["body"]["senderAddress"] == "noreply@example.com"
    assert request["body"]["recipients"]["to"] == [{"address": "someone@example.com"}]
    assert request["body"]["content"] == {"subject": message.subject, "plainText": message.text}


def test_a_failing_provider_ends_in_the_poison_queue_after_5_tries_without_losing_the_mail(svc, queues, acs):
    acs.failing = True
    deliver, outbox = delivery(svc, queues, acs)
    original = outbox.send("someone@example.com", "Subject", "Body text", kind="notice")
    queue, poison = queues
    outcomes = []
    for _ in range(10):
        batch = waiting(queue)
        if not batch:
            break
        [queued] = batch
        outcomes.append(deliver.deliver(queued.content))
        queue.delete_message(queued)  # the trigger completes: the host deletes the original
    assert outcomes == ["retry"] * (MAX_ATTEMPTS - 1) + ["poisoned"]
    assert len(acs.requests) == MAX_ATTEMPTS
    [parked] = waiting(poison)
    parked_body = json.loads(parked.content)
    assert (parked_body["to"], parked_body["subject"], parked_body["text"]) == (
        "someone@example.com",
        "Subject",
        "Body text",
    )
    assert parked_body["id"] == original.id and parked_body["attempt"] == MAX_ATTEMPTS


def test_a_retry_waits_out_a_growing_backoff(svc, queues, acs):
    acs.failing = True
    deliver, outbox = delivery(svc, queues, acs, retry_base=timedelta(seconds=15))
    outbox.send("someone@example.com", "Subject", "Body", kind="notice")
    [queued] = waiting(queues[0])
    assert deliver.deliver(queued.content) == "retry"
    queues[0].delete_message(queued)
    assert list(queues[0].peek_messages(max_messages=32)) == []  # invisible for now
    assert [backoff(n, timedelta(seconds=15)).total_seconds() for n in (1, 2, 3, 4)] == [15, 30, 60, 120]


def test_an_unreadable_message_is_parked_not_retried(svc, queues, acs):
    deliver, _ = delivery(svc, queues, acs)
    assert deliver.deliver("not json") == "poisoned"
    [parked] = waiting(queues[1])
    assert parked.content == "not json"
    assert acs.requests == []


def test_the_dev_mailbox_shows_delivered_mail_newest_last(make_services, clock):
    svc = make_services(mail_provider="devmailbox")
    address = f"box.{secrets.token_hex(4)}@example.com"
    for subject in ("first", "second"):
        message = MailMessage(to=address, subject=subject, text="text", created_at=clock.now())
        assert svc.mail.deliver(message.to_json()) == "sent"
        clock.advance(seconds=1)
    messages = svc.dev_mailbox.messages(address.upper())
    assert [m["subject"] for m in messages] == ["first", "second"]
    assert set(messages[0]) >= {"to", "subject", "text", "sentAt"}
