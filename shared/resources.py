"""Resources: the files a signed-in user uploads and hands out codes for.

Each resource has an opaque, unguessable id (`secrets.token_urlsafe(16)`: 128 random
bits) that the guest link `/r/<resourceId>` carries. The bytes live in the `resources`
container under the id; the `resources` table holds

- a resource row, PartitionKey = resourceId, RowKey = "resource": the point read that
  issuing and redeeming a code make;
- an owner row per resource, PartitionKey = "owner:<userId>", RowKey = the name encoded
  for a key: listing is one query of the caller's own partition, and a second PUT of the
  same name finds the resource by a point read and replaces its bytes (the id, and every
  code issued for it, stay valid).
"""

from __future__ import annotations

import base64
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from azure.storage.blob import ContainerClient, ContentSettings

from shared import errors
from shared.clock import Clock

RESOURCE_ROW = "resource"
RESOURCE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")
NAME_MAX_LENGTH = 200
DEFAULT_CONTENT_TYPE = "application/octet-stream"
CONTENT_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}$")
# characters a file name may not hold: path separators, and what table keys and URLs refuse
_FORBIDDEN_IN_NAME = set('/\\#?%"')


@dataclass(frozen=True)
class Resource:
    resource_id: str
    owner_id: str
    name: str
    size: int
    content_type: str
    created_at: datetime
    updated_at: datetime

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


def _resource_from(entity) -> Resource:
    return Resource(
        resource_id=entity["resourceId"],
        owner_id=entity["ownerId"],
        name=entity["name"],
        size=entity["size"],
        content_type=entity["contentType"],
        created_at=entity["createdAt"],
        updated_at=entity["updatedAt"],
    )


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
        A second PUT of a name replaces the bytes and keeps the resource id."""
        name = validate_name(name)
        content_type = validate_content_type(content_type)
        if len(data) > self._max_bytes:
            raise errors.PayloadTooLarge(f"A resource may hold at most {self._max_bytes} bytes.")
        if not data:
            raise errors.InvalidInput("The body is empty; send the file's bytes.", code="empty_body")
        now = self._clock.now()
        owner_row = {
            "PartitionKey": f"owner:{owner_id}",
            "RowKey": name_key(name),
            "resourceId": secrets.token_urlsafe(16),
            "ownerId": owner_id,
            "name": name,
            "createdAt": now,
        }
        created = True
        try:
            self._table.create_entity(owner_row)
        except ResourceExistsError:
            owner_row = self._table.get_entity(owner_row["PartitionKey"], owner_row["RowKey"])
            created = False
        resource_id = owner_row["resourceId"]
        self._container.upload_blob(
            resource_id,
            data,
            overwrite=True,
            content_settings=ContentSettings(content_type=content_type),
            metadata={"owner": owner_id},
        )
        entity = {
            "PartitionKey": resource_id,
            "RowKey": RESOURCE_ROW,
            "resourceId": resource_id,
            "ownerId": owner_id,
            "name": name,
            "size": len(data),
            "contentType": content_type,
            "createdAt": owner_row["createdAt"],
            "updatedAt": now,
        }
        # the resource row last: a code can be issued only once the bytes are there
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        self._table.update_entity(
            {**{k: owner_row[k] for k in ("PartitionKey", "RowKey")}, "size": len(data), "contentType": content_type},
            mode=UpdateMode.MERGE,
        )
        return _resource_from(entity), created

    def get(self, resource_id: str) -> Resource | None:
        """One point read; None when the id is malformed or unknown."""
        if not RESOURCE_ID_PATTERN.match(resource_id or ""):
            return None
        try:
            return _resource_from(self._table.get_entity(resource_id, RESOURCE_ROW))
        except ResourceNotFoundError:
            return None

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
                updated_at=row.metadata["timestamp"],
            )
            for row in rows
            if "size" in row  # an upload still in flight has no size yet
        ]
        return sorted(resources, key=lambda resource: resource.name)
