"""Mail providers: the third party that actually sends.

In Azure that is Azure Communication Services Email, called over HTTP through its SDK;
locally the dev mailbox (`shared.mail.devmailbox`). Which one is a setting
(MAIL_PROVIDER), looked up by `Services.mail_provider` (shared/services.py).
"""

from __future__ import annotations

from typing import Any, Protocol

from azure.core.exceptions import AzureError

from shared.mail.message import MailMessage


class MailDeliveryError(RuntimeError):
    """The provider did not take the mail; worth another try later."""


class MailConfigError(RuntimeError):
    """The provider is not configured (the message names the setting, never a value)."""


class MailProvider(Protocol):
    def send(self, message: MailMessage) -> None:
        """Hand the mail over, or raise MailDeliveryError."""
        ...


class AcsEmail:
    """Azure Communication Services Email. The mail counts as sent once ACS accepts it
    (202): its own queue does the rest, so we do not poll the operation to the end."""

    def __init__(self, client: Any, sender: str):
        self._client = client
        self._sender = sender

    @classmethod
    def connect(
        cls,
        *,
        sender: str | None,
        connection_string: str | None = None,
        endpoint: str | None = None,
        credential: Any = None,
        timeout_seconds: float = 10.0,
    ) -> AcsEmail:
        from azure.communication.email import EmailClient

        if not sender:
            raise MailConfigError("MAIL_SENDER is not set")
        # one try per queue delivery: the outbox retries with backoff
        options = {"retry_total": 0, "connection_timeout": timeout_seconds, "read_timeout": timeout_seconds}
        if connection_string:
            client = EmailClient.from_connection_string(connection_string, **options)
        elif endpoint and credential is not None:
            client = EmailClient(endpoint, credential, **options)
        else:
            raise MailConfigError("set MAIL_CONNECTION_STRING, or MAIL_ENDPOINT with a managed identity")
        return cls(client, sender)

    def send(self, message: MailMessage) -> None:
        body = {
            "senderAddress": self._sender,
            "recipients": {"to": [{"address": message.to}]},
            "content": {"subject": message.subject, "plainText": message.text},
            "userEngagementTrackingDisabled": True,
        }
        try:
            poller = self._client.begin_send(body, polling=False)
            status = (poller.result() or {}).get("status")
        except AzureError as error:
            raise MailDeliveryError(f"ACS refused or did not answer ({type(error).__name__})") from None
        if status in ("Failed", "Canceled"):
            raise MailDeliveryError(f"ACS reported {status}")
