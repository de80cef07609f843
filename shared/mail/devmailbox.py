"""The local dev mailbox: a mail provider that keeps mail in a table, and the reading
side behind GET /api/dev/mailbox. Only for the local environment (the settings refuse
it elsewhere).

Table `devmailbox`: PartitionKey = sha256 of the lower-cased address, RowKey = the
time it was "sent" (sortable) plus the mail id, so a listing is one partition query
in sending order, and a retried delivery overwrites instead of duplicating.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from azure.data.tables import TableClient

from shared.clock import Clock
from shared.mail.message import MailMessage


def _partition(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


class DevMailbox:
    def __init__(self, table: TableClient, clock: Clock):
        self._table = table
        self._clock = clock

    def send(self, message: MailMessage) -> None:
        sent_at: datetime = self._clock.now()
        self._table.upsert_entity(
            {
                "PartitionKey": _partition(message.to),
                # the first try's creation time keeps order stable across retries
                "RowKey": f"{message.created_at.strftime('%Y%m%dT%H%M%S.%f')}-{message.id}",
                "to": message.to,
                "subject": message.subject,
                "text": message.text,
                "kind": message.kind,
                "sentAt": sent_at,
            }
        )

    def messages(self, address: str) -> list[dict]:
        """Mail sent to `address`, oldest first (newest last)."""
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": _partition(address)})
        return [
            {
                "to": row["to"],
                "subject": row["subject"],
                "text": row["text"],
                "kind": row["kind"],
                "sentAt": row["sentAt"].isoformat(),
            }
            for row in sorted(rows, key=lambda row: row["RowKey"])
        ]
