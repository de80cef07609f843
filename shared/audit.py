"""The audit trail: one JSON line per state change, in append blobs.

Blobs are named `yyyy/mm/dd/hh/<instance>-<n>.jsonl` in the `audit` container: one
series per hour per writer instance, so writers never contend, and a new blob is
started before the 50,000-append limit. An event never holds a code, password or
token: the model has no field for one, and `details` takes only short scalar values.
Every text in an event is capped here, in one place (MAX_TEXT characters, control
characters replaced, at most MAX_DETAILS details): the audit is kept for years, and
much of what reaches it (ids, request ids) comes from callers.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobClient, ContainerClient
from pydantic import BaseModel, Field, field_validator

from shared.clock import Clock

if TYPE_CHECKING:
    from shared.auth.keys import KeyRing

Outcome = Literal["ok", "fail"]


def guest_actor(keys: KeyRing, client_ip: str) -> str:
    """How a guest appears in the audit: a keyed hash of the address, never the address."""
    return "ip:" + keys.hash("client-ip", client_ip).digest[:24]


class AuditEventType(StrEnum):
    """What an audit event records: every state change has one."""

    ISSUE = "issue"
    REDEEM = "redeem"
    REVOKE = "revoke"
    EXPIRE = "expire"
    LINK_ROTATE = "link_rotate"
    LOGIN = "login"
    LOGOUT = "logout"
    REGISTER = "register"
    ACTIVATE = "activate"
    ACTIVATION_RESEND = "activation_resend"
    PASSWORD_CHANGE = "password_change"  # noqa: S105 - an event name, not a secret
    DISPLAY_NAME = "display_name"
    LOCK = "lock"
    UNLOCK = "unlock"
    ROLE_CHANGE = "role_change"
    ADMIN_BOOTSTRAP = "admin_bootstrap"
    UNLOCK_REQUEST = "unlock_request"
    MAIL = "mail"
    VERIFIER_ENROL = "verifier_enrol"
    VERIFIER_REVOKE = "verifier_revoke"
    BAN = "ban"
    BAN_LIFT = "ban_lift"
    BAN_PUBLISH = "ban_publish"


MAX_TEXT = 256  # characters of any one text in an event
MAX_DETAILS = 20  # entries in `details`
MAX_DETAIL_NAME = 40
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def capped(value: object, limit: int = MAX_TEXT) -> object:
    """A text cut to `limit` characters with control characters replaced; else unchanged."""
    if isinstance(value, str):
        return _CONTROL.sub("\ufffd", value[:limit])
    return value


class AuditEvent(BaseModel):
    time: datetime
    type: str = Field(pattern=r"^[a-z_.]{1,40}$")  # an AuditEventType; plain text, so any stored line reads back
    outcome: Outcome
    reason: str | None = None  # why it failed: expired, used, revoked, unknown, ...
    actor: str | None = None  # a user id, or "ip:<keyed hash>" for a guest
    user_id: str | None = None  # whom the event concerns, when that is not the actor
    code_id: str | None = None  # never the code itself
    resource_id: str | None = None
    request_id: str | None = None
    details: dict[str, str | int | bool | None] = Field(default_factory=dict)

    @field_validator("reason", "actor", "user_id", "code_id", "resource_id", "request_id", mode="before")
    @classmethod
    def _capped_text(cls, value: object) -> object:
        return capped(value)

    @field_validator("details", mode="before")
    @classmethod
    def _capped_details(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        return {capped(str(name), MAX_DETAIL_NAME): capped(item) for name, item in list(value.items())[:MAX_DETAILS]}


@dataclass
class _Pending:
    lines: list[tuple[str, bytes]]  # (hour, JSON line)
    done: bool = False
    error: Exception | None = None


class AuditLog:
    # Azure allows 50,000 blocks per append blob; roll well before.
    MAX_APPENDS_PER_BLOB = 49_000
    # One append block holds at most 4 MiB; several events may share a block.
    MAX_BLOCK_BYTES = 1024 * 1024

    def __init__(self, container: ContainerClient, clock: Clock, instance_id: str):
        self._container = container
        self._clock = clock
        self._instance_id = instance_id
        # guards the queue of waiting writers; one of them at a time appends (`_flushing`)
        self._lock = threading.Condition()
        self._queue: list[_Pending] = []
        self._flushing = False
        self._hour: str | None = None
        self._sequence = 0
        self._appends = 0
        self._blob: BlobClient | None = None

    def record(self, type: AuditEventType, outcome: Outcome, **fields) -> AuditEvent:
        event = AuditEvent(time=self._clock.now(), type=type, outcome=outcome, **fields)
        self.write(event)
        return event

    def write(self, event: AuditEvent) -> None:
        self.write_many([event])

    def write_many(self, events: list[AuditEvent]) -> None:
        """Write events, one line each; returns once they are stored (or raises).

        Group commit: writers that arrive while an append is under way queue their lines,
        and the next append takes all of them in one block. Under load that is one
        storage call for many events (and far fewer of the 50,000 appends a blob allows)."""
        if not events:
            return
        mine = _Pending(
            [(e.time.strftime("%Y/%m/%d/%H"), (e.model_dump_json(exclude_none=True) + "\n").encode()) for e in events]
        )
        with self._lock:
            self._queue.append(mine)
            while not mine.done:
                if self._flushing:
                    self._lock.wait()
                    continue
                self._flushing = True
                batch, self._queue = self._queue, []
                self._lock.release()
                error: Exception | None = None
                try:
                    self._flush([line for pending in batch for line in pending.lines])
                except Exception as failure:  # noqa: BLE001 - handed to every writer in the batch
                    error = failure
                finally:
                    self._lock.acquire()
                    self._flushing = False
                    for pending in batch:
                        pending.done, pending.error = True, error
                    self._lock.notify_all()
        if mine.error is not None:
            raise mine.error

    def _flush(self, lines: list[tuple[str, bytes]]) -> None:
        """Append the lines in as few blocks as the block size allows (one flusher at a time)."""
        chunk: list[bytes] = []
        size, hour = 0, None
        for line_hour, line in lines:
            if chunk and (line_hour != hour or size + len(line) > self.MAX_BLOCK_BYTES):
                self._append(hour, b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
            hour = line_hour
        if chunk:
            self._append(hour, b"".join(chunk))

    def _append(self, hour: str, block: bytes) -> None:
        if hour != self._hour:
            self._hour, self._sequence = hour, 0
            self._open_blob()
        elif self._appends >= self.MAX_APPENDS_PER_BLOB:
            self._roll()
        try:
            self._blob.append_block(block)
        except HttpResponseError as error:
            if error.error_code != "BlockCountExceedsLimit":
                raise
            self._roll()
            self._blob.append_block(block)
        self._appends += 1

    def _roll(self) -> None:
        self._sequence += 1
        self._open_blob()

    def _open_blob(self) -> None:
        """Use the first blob of this hour's series that still has room (another process
        with the same instance id may have written some already)."""
        while True:
            blob = self._container.get_blob_client(f"{self._hour}/{self._instance_id}-{self._sequence}.jsonl")
            try:
                blob.create_append_blob(if_none_match="*")
                appends = 0
            except ResourceExistsError:
                appends = blob.get_blob_properties().append_blob_committed_block_count or 0
            if appends < self.MAX_APPENDS_PER_BLOB:
                self._blob, self._appends = blob, appends
                return
            self._sequence += 1

    def read(
        self,
        start: datetime,
        end: datetime,
        *,
        types: set[str] | None = None,
        outcome: Outcome | None = None,
        actor: str | None = None,
    ) -> list[AuditEvent]:
        """Events with start <= time < end, oldest first, optionally filtered."""
        events = [
            event
            for event in self._events_between(start, end)
            if start <= event.time < end
            and (types is None or event.type in types)
            and (outcome is None or event.outcome == outcome)
            and (actor is None or actor in (event.actor, event.user_id))
        ]
        return sorted(events, key=lambda event: event.time)

    def _events_between(self, start: datetime, end: datetime) -> Iterator[AuditEvent]:
        hour = start.replace(minute=0, second=0, microsecond=0)
        while hour < end:
            for item in self._container.list_blobs(name_starts_with=hour.strftime("%Y/%m/%d/%H/")):
                try:
                    content = self._container.download_blob(item.name).readall()
                except ResourceNotFoundError:
                    continue
                for line in content.splitlines():
                    if line.strip():
                        yield AuditEvent.model_validate(json.loads(line))
            hour += timedelta(hours=1)
