"""The outbox: a Storage Queue. Requests put mail here and never wait on the provider."""

from __future__ import annotations

from datetime import timedelta

from azure.storage.queue import QueueClient

from shared.clock import Clock
from shared.mail.message import MailMessage

# A message stays in the queue at most this long (the service maximum is 7 days).
TIME_TO_LIVE = timedelta(days=7)


class Outbox:
    def __init__(self, queue: QueueClient, poison: QueueClient, clock: Clock):
        self._queue = queue
        self._poison = poison
        self._clock = clock

    def send(self, to: str, subject: str, text: str, *, kind: str) -> MailMessage:
        message = MailMessage(to=to, subject=subject, text=text, kind=kind, created_at=self._clock.now())
        self._queue.send_message(message.to_json(), time_to_live=int(TIME_TO_LIVE.total_seconds()))
        return message

    def retry_later(self, message: MailMessage, delay: timedelta) -> MailMessage:
        """Put a copy for the next try, invisible for `delay`."""
        retry = message.model_copy(update={"attempt": message.attempt + 1})
        self._queue.send_message(
            retry.to_json(),
            visibility_timeout=int(delay.total_seconds()),
            time_to_live=int(TIME_TO_LIVE.total_seconds()),
        )
        return retry

    def give_up(self, message: MailMessage | str) -> None:
        """Park a mail in the poison queue (kept until someone looks; -1 = no expiry)."""
        body = message.to_json() if isinstance(message, MailMessage) else message
        self._poison.send_message(body, time_to_live=-1)
