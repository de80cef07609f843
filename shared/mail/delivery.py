"""Delivering one outbox message: the body of the queue-triggered function.

Retries are the app's, not the host's, so they can back off exponentially: when the
provider fails, a copy with the next attempt number goes back into the outbox,
invisible for base * 2^(attempt-1) seconds (capped), and the original completes. After
MAX_ATTEMPTS failed tries the mail is parked in `mail-outbox-poison`, whole, so nothing
is lost. The host's own maxDequeueCount (5, host.json) stays as the backstop for a
crash between receiving and re-enqueueing: then the host redelivers the original.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from pydantic import ValidationError

from shared.audit import AuditEventType, AuditLog
from shared.mail.message import MailMessage
from shared.mail.outbox import Outbox
from shared.mail.providers import MailConfigError, MailDeliveryError, MailProvider

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_DELAY = timedelta(hours=1)


def backoff(attempt: int, base: timedelta) -> timedelta:
    """The wait before try `attempt + 1`: base, 2*base, 4*base, ... capped."""
    return min(base * (2 ** (attempt - 1)), MAX_DELAY)


class MailDelivery:
    def __init__(
        self,
        provider: Callable[[], MailProvider],
        outbox: Outbox,
        audit: AuditLog,
        *,
        retry_base: timedelta,
    ):
        self._provider = provider
        self._outbox = outbox
        self._audit = audit
        self._retry_base = retry_base

    def deliver(self, body: str) -> str:
        """Send one message; returns what happened: sent, retry or poisoned."""
        try:
            message = MailMessage.model_validate_json(body)
        except ValidationError:
            log.error("unreadable outbox message moved to the poison queue")
            self._outbox.give_up(body)
            self._audit.record(AuditEventType.MAIL, "fail", reason="unreadable")
            return "poisoned"
        try:
            self._provider().send(message)
        except (MailDeliveryError, MailConfigError) as error:
            return self._failed(message, error)
        log.info("%s sent", message.describe())
        self._audit.record(AuditEventType.MAIL, "ok", details={"kind": message.kind, "attempt": message.attempt})
        return "sent"

    def _failed(self, message: MailMessage, error: Exception) -> str:
        if message.attempt >= MAX_ATTEMPTS:
            self._outbox.give_up(message)
            log.error("%s failed (%s); parked in the poison queue", message.describe(), error)
            self._audit.record(
                AuditEventType.MAIL,
                "fail",
                reason="gave_up",
                details={"kind": message.kind, "attempt": message.attempt},
            )
            return "poisoned"
        delay = backoff(message.attempt, self._retry_base)
        self._outbox.retry_later(message, delay)
        log.warning("%s failed (%s); next try in %ss", message.describe(), error, int(delay.total_seconds()))
        return "retry"
