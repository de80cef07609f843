"""The users table.

Each user has two rows:
- the account, PartitionKey "e:<sha256 of the normalised email>", RowKey "account": a
  point read at login; `create_entity` on it is what makes an address unique, so two
  racing registrations of one address yield one user;
- a pointer, PartitionKey "id:<user id>", RowKey "account", holding the email key: the
  way from a session's user id to the account.
The pointer is written first; a pointer whose account row names another user id (a lost
race) is ignored and removed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared import errors
from shared.auth.authorization import Role

Status = Literal["pending", "active", "locked"]
ROW = "account"


def new_user_id() -> str:
    return secrets.token_urlsafe(16)  # 128 random bits, opaque


@dataclass(frozen=True)
class User:
    user_id: str
    email: str  # display form
    email_key: str  # normalised form
    email_hash: str
    role: Role
    status: Status
    password_hash: str
    password_changed_at: datetime
    created_at: datetime
    activated_at: datetime | None = None
    notice_sent_at: datetime | None = None
    display_name: str | None = None  # what guests see as the sharer; None: nothing
    etag: str | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @classmethod
    def new(cls, address, *, role: Role, status: Status, password_hash: str, now: datetime) -> User:
        """A user not stored yet, with a fresh id; `address` is a parsed EmailAddress."""
        return cls(
            user_id=new_user_id(),
            email=address.display,
            email_key=address.key,
            email_hash=address.key_hash,
            role=role,
            status=status,
            password_hash=password_hash,
            password_changed_at=now,
            created_at=now,
            activated_at=now if status == "active" else None,
        )


def _entity(user: User) -> dict:
    entity = {
        "PartitionKey": f"e:{user.email_hash}",
        "RowKey": ROW,
        "userId": user.user_id,
        "email": user.email,
        "emailKey": user.email_key,
        "role": user.role,
        "status": user.status,
        "passwordHash": user.password_hash,
        "passwordChangedAt": user.password_changed_at,
        "createdAt": user.created_at,
    }
    if user.activated_at is not None:
        entity["activatedAt"] = user.activated_at
    if user.notice_sent_at is not None:
        entity["noticeSentAt"] = user.notice_sent_at
    if user.display_name is not None:
        entity["displayName"] = user.display_name
    return entity


def _user(entity) -> User:
    return User(
        user_id=entity["userId"],
        email=entity["email"],
        email_key=entity["emailKey"],
        email_hash=entity["PartitionKey"][2:],
        role=entity["role"],
        status=entity["status"],
        password_hash=entity["passwordHash"],
        password_changed_at=entity["passwordChangedAt"],
        created_at=entity["createdAt"],
        activated_at=entity.get("activatedAt"),
        notice_sent_at=entity.get("noticeSentAt"),
        display_name=entity.get("displayName"),
        etag=entity.metadata.get("etag"),
    )


class UserStore:
    def __init__(self, table: TableClient):
        self._table = table

    def create(self, user: User) -> bool:
        """Insert if the address is free; False (and nothing changed) when it is taken."""
        self._table.create_entity({"PartitionKey": f"id:{user.user_id}", "RowKey": ROW, "emailHash": user.email_hash})
        try:
            self._table.create_entity(_entity(user))
        except ResourceExistsError:
            self._table.delete_entity(f"id:{user.user_id}", ROW)
            return False
        return True

    def by_email_hash(self, email_hash: str) -> User | None:
        try:
            return _user(self._table.get_entity(f"e:{email_hash}", ROW))
        except ResourceNotFoundError:
            return None

    def by_id(self, user_id: str) -> User | None:
        try:
            pointer = self._table.get_entity(f"id:{user_id}", ROW)
        except ResourceNotFoundError:
            return None
        user = self.by_email_hash(pointer["emailHash"])
        return user if user is not None and user.user_id == user_id else None

    def add_pointer(self, user: User) -> None:
        """The id -> email pointer of a user about to be stored (written first)."""
        self._table.upsert_entity({"PartitionKey": f"id:{user.user_id}", "RowKey": ROW, "emailHash": user.email_hash})

    def insert_account(self, user: User) -> bool:
        """The account row, if the address is free (its pointer written before); False
        when it is taken, and the pointer is left for the caller's cleanup."""
        try:
            self._table.create_entity(_entity(user))
        except ResourceExistsError:
            return False
        return True

    def replace_account(self, old: User, new: User) -> bool:
        """Put `new` (another user id, its pointer written before) in the place of `old`,
        if nobody changed `old` since it was read (ETag); False otherwise."""
        try:
            self._table.update_entity(
                _entity(new), mode=UpdateMode.REPLACE, etag=old.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def remove(self, user: User) -> bool:
        """Delete the account row if unchanged since read (ETag), then its pointer; False
        (nothing deleted) when it changed meanwhile."""
        try:
            self._table.delete_entity(
                f"e:{user.email_hash}", ROW, etag=user.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        self.remove_pointer(user.user_id, user.email_hash)
        return True

    def remove_pointer(self, user_id: str, email_hash: str) -> None:
        """Delete a pointer row that is not (or no longer) the account's; a missing one is fine."""
        try:
            pointer = self._table.get_entity(f"id:{user_id}", ROW)
        except ResourceNotFoundError:
            return
        if pointer["emailHash"] == email_hash:
            self._table.delete_entity(f"id:{user_id}", ROW)

    def update(self, user: User, **changes) -> User:
        """Apply `changes` if nobody changed the user since it was read (ETag), else Conflict."""
        updated = replace(user, **changes)
        try:
            metadata = self._table.update_entity(
                _entity(updated), mode=UpdateMode.REPLACE, etag=user.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise errors.Conflict("The account changed meanwhile; try again.", code="account_changed") from None
        return replace(updated, etag=metadata.get("etag"))
