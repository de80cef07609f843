"""A mail as it travels through the outbox queue. Bodies may hold a code: never log one."""

from __future__ import annotations

import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class MailMessage(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    id: str = Field(default_factory=lambda: secrets.token_hex(8), pattern=r"^[A-Za-z0-9_-]{1,64}$")
    to: str = Field(min_length=3, max_length=320)
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20_000)
    kind: str = Field(default="notice", pattern=r"^[a-z_]{1,40}$")  # activation, password_changed, ...
    attempt: int = Field(default=1, ge=1)  # the delivery try this copy is for
    created_at: datetime

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    def describe(self) -> str:
        """What a log line may say about this mail: no address, no body."""
        return f"mail id={self.id} kind={self.kind} attempt={self.attempt}"
