"""Resources: the files a signed-in user uploads and hands out codes for.

Each resource has an opaque, unguessable id (`new_resource_id`: 128 random bits) that
the guest link `/r/<resourceId>` carries. The bytes live in the `resources` container
under the row's `blobName` (the id the resource was created with; rows from
before the field: the id). The `resources` table holds

- a resource row, PartitionKey = resourceId, RowKey = "resource": the point read that
  issuing a code and the guest page make;
- an owner row per resource, PartitionKey = "owner:<userId>", RowKey = the name encoded
  for a key: listing is one query of the caller's own partition, and a second PUT of the
  same name finds the resource by a point read and replaces its bytes (the id, and every
  code issued for it, stay valid). The owner row says which id the name has now.

When a guest link leaks, the owner moves the resource to a new id (`rotate_id`): the row
under the old id stays as a tombstone (`retiredAt`, and `successor`, the new id), which
reads as no resource at all; the blob, name and type stay. Writes that race a move are
ETag-conditional on the owner row, so a PUT lands on whichever id the name has.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
import unicodedata
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from azure.storage.blob import ContainerClient, ContentSettings

from shared import errors
from shared.clock import Clock
from shared.optimistic import retry_lost_races

RESOURCE_ROW = "resource"
# A resource id: RESOURCE_ID_BYTES from the CSPRNG, URL-safe base64 without padding.
RESOURCE_ID_BYTES = 16
RESOURCE_ID_BITS = 8 * RESOURCE_ID_BYTES
RESOURCE_ID = rf"[A-Za-z0-9_-]{{{math.ceil(RESOURCE_ID_BYTES * 8 / 6)}}}"  # its shape, for patterns
RESOURCE_ID_PATTERN = re.compile(rf"^{RESOURCE_ID}$")
NAME_MAX_LENGTH = 200
DEFAULT_CONTENT_TYPE = "application/octet-stream"
CONTENT_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$")
# characters a file name may not hold: path separators, and what table keys and URLs refuse
_FORBIDDEN_IN_NAME = set('/\\#?%"')
# a retired resource row (its id was rotated away) and the id it moved to
RETIRED_AT = "retiredAt"
SUCCESSOR = "successor"
# tries of an ETag-conditional write that a concurrent PUT or move may beat
WRITE_ATTEMPTS = 5
ROTATION_BUSY = "The file changed while its link was rotated; try again."
T = TypeVar("T")


def new_resource_id() -> str:
    return secrets.token_urlsafe(RESOURCE_ID_BYTES)


@dataclass(frozen=True)
class Resource:
    resource_id: str
    owner_id: str
    name: str
    size: int
    content_type: str
    created_at: datetime
    updated_at: datetime
    blob_name: str  # where the bytes are: never changes, whatever the id

    def public(self) -> dict:
        return {
            "resourceId": self.resource_id,
            "name": self.name,
            "size": self.size,
            "contentType": self.content_type,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


def validate_name(name: str) -> str:
    """A file name: 1-200 characters, no path separators, control characters or dot-names."""
    if not name or len(name) > NAME_MAX_LENGTH or name != name.strip() or name in (".", ".."):
        raise errors.InvalidInput(
            f"A name is 1-{NAME_MAX_LENGTH} characters without surrounding spaces.", code="invalid_name"
        )
    if any(ch in _FORBIDDEN_IN_NAME or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise errors.InvalidInput(
            'A name may not contain path separators, control characters or any of # ? % ".', code="invalid_name"
        )
    return name


def validate_content_type(value: str | None) -> str:
    media_type = (value or "").split(";")[0].strip().lower()
    if not media_type:
        return DEFAULT_CONTENT_TYPE
    if not CONTENT_TYPE_PATTERN.match(media_type):
        raise errors.InvalidInput("The Content-Type header is not a media type.", code="invalid_content_type")
    return media_type


def name_key(name: str) -> str:
    """The owner row's RowKey for a name: URL-safe base64, so any allowed name is a valid key."""
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _blob_of(row) -> str:
    return row.get("blobName") or row["resourceId"]


def _resource_from(entity) -> Resource:
    return Resource(
        resource_id=entity["resourceId"],
        owner_id=entity["ownerId"],
        name=entity["name"],
        size=entity["size"],
        content_type=entity["contentType"],
        created_at=entity["createdAt"],
        updated_at=entity["updatedAt"],
        blob_name=_blob_of(entity),
    )


def _keys(row) -> dict:
    return {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"]}


def _resource_row(owner_row, resource_id: str, updated_at: datetime) -> dict:
    """The resource row under `resource_id` for what the owner row says of the file
    (`updated_at` when the owner row does not say when the bytes last changed)."""
    return {
        "PartitionKey": resource_id,
        "RowKey": RESOURCE_ROW,
        "resourceId": resource_id,
        "blobName": _blob_of(owner_row),
        "ownerId": owner_row["ownerId"],
        "name": owner_row["name"],
        "size": owner_row["size"],
        "contentType": owner_row.get("contentType", DEFAULT_CONTENT_TYPE),
        "createdAt": owner_row["createdAt"],
        "updatedAt": owner_row.get("updatedAt") or updated_at,
    }


class RedemptionPressure(Protocol):
    """What the owner sees of guessing on one resource (shared/limits/guard.py, AbuseGuard)."""

    def redemption_pressure(self, resource_id: str) -> dict: ...


class ResourceStore:
    def __init__(self, table: TableClient, container: ContainerClient, clock: Clock, *, max_bytes: int):
        self._table = table
        self._container = container
        self._clock = clock
        self._max_bytes = max_bytes

    @property
    def container_name(self) -> str:
        return self._container.container_name

    def put(self, owner_id: str, name: str, data: bytes, content_type: str | None) -> tuple[Resource, bool]:
        """Store a file under the owner's name; returns the resource and whether it is new.
        A second PUT of a name replaces the bytes and keeps the resource id (the one the
        name has now, after any rotation)."""
        name = validate_name(name)
        content_type = validate_content_type(content_type)
        if len(data) > self._max_bytes:
            raise errors.PayloadTooLarge(f"A resource may hold at most {self._max_bytes} bytes.")
        if not data:
            raise errors.InvalidInput("The body is empty; send the file's bytes.", code="empty_body")
        now = self._clock.now()
        resource_id = new_resource_id()
        owner_row = {
            "PartitionKey": f"owner:{owner_id}",
            "RowKey": name_key(name),
            "resourceId": resource_id,
            "blobName": resource_id,
            "ownerId": owner_id,
            "name": name,
            "createdAt": now,
        }
        created = True
        try:
            etag = self._table.create_entity(owner_row)["etag"]
        except ResourceExistsError:
            owner_row, created = self._table.get_entity(owner_row["PartitionKey"], owner_row["RowKey"]), False
            etag = owner_row.metadata["etag"]
        self._container.upload_blob(
            _blob_of(owner_row),
            data,
            overwrite=True,
            content_settings=ContentSettings(content_type=content_type),
            metadata={"owner": owner_id},
        )
        file = {"size": len(data), "contentType": content_type, "updatedAt": now}

        def attempt() -> Resource:
            nonlocal owner_row, etag
            entity = _resource_row({**owner_row, **file}, owner_row["resourceId"], now)
            # the resource row before the owner row's size: a code can be issued only once
            # the bytes are there. MERGE, never REPLACE: a row retired by a move stays retired.
            self._table.upsert_entity(entity, mode=UpdateMode.MERGE)
            try:
                self._table.update_entity(
                    {**_keys(owner_row), **file},
                    mode=UpdateMode.MERGE,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                # the name moved to a new id meanwhile (or another PUT landed): write again
                owner_row = self._table.get_entity(owner_row["PartitionKey"], owner_row["RowKey"])
                etag = owner_row.metadata["etag"]
                raise
            return _resource_from(entity)

        return _against_racers(attempt, "The file changed while it was stored; try again."), created

    def get(self, resource_id: str) -> Resource | None:
        """One point read; None when the id is malformed, unknown or rotated away."""
        if not RESOURCE_ID_PATTERN.match(resource_id or ""):
            return None
        try:
            entity = self._table.get_entity(resource_id, RESOURCE_ROW)
        except ResourceNotFoundError:
            return None
        return None if RETIRED_AT in entity else _resource_from(entity)

    def owned(self, owner_id: str, resource_id: str) -> Resource:
        """The caller's resource, or NotFound (also when it belongs to someone else)."""
        resource = self.get(resource_id)
        if resource is None or resource.owner_id != owner_id:
            raise errors.NotFound("No such resource.", code="resource_not_found")
        return resource

    def list(self, owner_id: str) -> list[Resource]:
        """The owner's resources, by name: one query of the owner's partition."""
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": f"owner:{owner_id}"})
        resources = [
            Resource(
                resource_id=row["resourceId"],
                owner_id=owner_id,
                name=row["name"],
                size=row["size"],
                content_type=row.get("contentType", DEFAULT_CONTENT_TYPE),
                created_at=row["createdAt"],
                updated_at=row.get("updatedAt") or row.metadata["timestamp"],
                blob_name=_blob_of(row),
            )
            for row in rows
            if "size" in row  # an upload still in flight has no size yet
        ]
        return sorted(resources, key=lambda resource: resource.name)

    def list_with_pressure(self, owner_id: str, pressure: RedemptionPressure, pool: Executor) -> list[dict]:
        """The owner's resources as the owner sees them, each with the guessing it is under
        (`redemption`: failed attempts in the window, paused, until when); the figures of
        all resources are read side by side."""
        resources = self.list(owner_id)
        figures = pool.map(pressure.redemption_pressure, [resource.resource_id for resource in resources])
        return [{**r.public(), "redemption": figure} for r, figure in zip(resources, figures, strict=True)]

    # --- a new id for a leaked guest link --------------------------------------------------

    def rotate_id(self, owner_id: str, resource_id: str) -> Resource:
        """Move the owner's resource to a new id and return it under that id: same blob,
        name and type, nothing copied. Retires the old row first (from then on no code is
        issued for the old id and its guest page is gone), then writes the new row, then
        points the owner row at it. A call for a retired id whose owner row still names it
        (a move cut short) finishes that move with the same new id; once the owner row has
        moved, the old id is NotFound like any unknown id, the owner's included."""
        retired = self._retire(owner_id, resource_id)
        new_id = retired[SUCCESSOR]

        def attempt() -> Resource:  # a PUT of this name landing in between: copy its size and type again
            try:
                owner_row = self._table.get_entity(f"owner:{owner_id}", name_key(retired["name"]))
            except ResourceNotFoundError:
                owner_row = None
            if owner_row is None or owner_row["resourceId"] != resource_id:
                raise errors.NotFound("No such resource.", code="resource_not_found")
            entity = _resource_row(owner_row, new_id, retired["updatedAt"])
            self._table.upsert_entity(entity, mode=UpdateMode.MERGE)
            self._table.update_entity(
                {**_keys(owner_row), "resourceId": new_id, "blobName": entity["blobName"]},
                mode=UpdateMode.MERGE,
                etag=owner_row.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            return _resource_from(entity)

        return _against_racers(attempt, ROTATION_BUSY)

    def _retire(self, owner_id: str, resource_id: str) -> dict:
        """Mark the owner's resource row retired, naming its successor id: the row as it is
        then. An already retired row is returned as it is (its move is finished with it)."""
        if not RESOURCE_ID_PATTERN.match(resource_id or ""):
            raise errors.NotFound("No such resource.", code="resource_not_found")

        def attempt() -> dict:  # a PUT or another move coming first: read it again
            try:
                entity = self._table.get_entity(resource_id, RESOURCE_ROW)
            except ResourceNotFoundError:
                entity = None
            if entity is None or entity["ownerId"] != owner_id:
                raise errors.NotFound("No such resource.", code="resource_not_found")
            if SUCCESSOR in entity:
                return entity
            mark = {RETIRED_AT: self._clock.now(), SUCCESSOR: new_resource_id()}
            self._table.update_entity(
                {**_keys(entity), **mark},
                mode=UpdateMode.MERGE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            return {**entity, **mark}

        return _against_racers(attempt, ROTATION_BUSY)


def _against_racers(attempt: Callable[[], T], busy: str) -> T:
    """`attempt` again while a concurrent PUT or move changes its row first; after
    WRITE_ATTEMPTS, 409 `resource_busy` with the message `busy`."""
    conflict = errors.Conflict(busy, code="resource_busy")
    return retry_lost_races(attempt, tries=WRITE_ATTEMPTS, races=(ResourceModifiedError,), exhausted=conflict)
