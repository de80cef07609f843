"""The mail outbox with a failing provider: every mail is tried, retried, and finally
parked whole in the poison queue; none is lost. Then, as a control, the same number of
mails through a working provider (the dev mailbox) all arrive.

The failing provider is the real ACS client pointed at a closed port on this machine
(connection refused on every try); retries are immediate (MAIL_RETRY_BASE_SECONDS=0)."""

from __future__ import annotations

import base64
import json
import secrets
import time

from devhost.azurite import free_port
from shared.storage import MAIL_QUEUE

WAIT_S = 120.0


def _poisoned(storage) -> list[dict]:
    poison = storage.queue(f"{MAIL_QUEUE}-poison")
    found = []
    for message in poison.receive_messages(messages_per_page=32, visibility_timeout=600):
        found.append(json.loads(message.content))
    return found


def run(stack, n: int) -> dict:
    storage = stack.storage()
    access_key = base64.b64encode(secrets.token_bytes(32)).decode()
    failing = {
        "MAIL_PROVIDER": "acs",
        "MAIL_SENDER": "bench@example.com",
        "MAIL_CONNECTION_STRING": f"endpoint=https://127.0.0.1:{free_port()}/;accesskey={access_key}",
        "MAIL_RETRY_BASE_SECONDS": "0",
    }
    host = stack.host(**failing)
    services = stack.services()
    sent = {f"failing-{i}-{secrets.token_hex(4)}@example.com" for i in range(n)}
    started = time.perf_counter()
    for address in sent:
        services.outbox.send(address, "bench", "a mail that cannot be delivered", kind="bench")
    parked: list[dict] = []
    while time.perf_counter() - started < WAIT_S and len(parked) < n:
        time.sleep(1)
        parked += _poisoned(storage)
    failing_s = time.perf_counter() - started
    host.stop()
    stack.hosts.remove(host)
    parked_to = {message.get("to") for message in parked}
    attempts = sorted({message.get("attempt") for message in parked})

    host = stack.host(MAIL_PROVIDER="devmailbox", DEV_MAILBOX_ENABLED="true")
    good = {f"working-{i}-{secrets.token_hex(4)}@example.com" for i in range(n)}
    for address in good:
        services.outbox.send(address, "bench", "a mail that arrives", kind="bench")
    started = time.perf_counter()
    delivered: set[str] = set()
    while time.perf_counter() - started < WAIT_S and len(delivered) < n:
        time.sleep(0.5)
        delivered |= {address for address in good - delivered if services.dev_mailbox.messages(address)}
    working_s = time.perf_counter() - started
    host.stop()
    stack.hosts.remove(host)

    return {
        "sent": n,
        "poisoned": len(parked_to & sent),
        "lost": len(sent - parked_to),
        "max_deliveries": max(attempts) if attempts else None,
        "attempts_seen_in_poison": attempts,
        "failing_s": round(failing_s, 1),
        "delivered_after_recovery": len(delivered),
        "lost_after_recovery": n - len(delivered),
        "working_s": round(working_s, 1),
    }
