"""What a guest sees of a shared resource before typing the code: its name, its size and,
if the owner chose one, the owner's display name. Never the owner's email address (whoever
holds the link would see it: Bitwarden Send's "hide my email", on by default) and never
anything about its codes. Also: reading the resource id out of a pasted guest link.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.resources.store import RESOURCE_ID, RESOURCE_ID_PATTERN, ResourceStore

if TYPE_CHECKING:  # the guest pages import this module at start-up; the store only later
    from shared.accounts.users import UserStore

# "/r/<id>" anywhere in a pasted link (absolute or not), or the bare id
_LINK_PATH = re.compile(rf"(?:^|/)r/({RESOURCE_ID})/?$")
MAX_LINK_LENGTH = 2048


@dataclass(frozen=True)
class SharedResource:
    resource_id: str
    name: str
    size: int
    content_type: str
    shared_by: str | None  # the owner's display name; None when there is none


def resource_id_from_link(text: str | None) -> str | None:
    """The resource id in a pasted guest link ("https://host/r/<id>", "/r/<id>") or a bare
    id; None when there is none."""
    value = (text or "").strip()
    if not value or len(value) > MAX_LINK_LENGTH:
        return None
    if RESOURCE_ID_PATTERN.match(value):
        return value
    found = _LINK_PATH.search(urlsplit(value).path)
    return found.group(1) if found else None


class GuestView:
    def __init__(self, resources: ResourceStore, users: UserStore):
        self._resources = resources
        self._users = users

    def shared_resource(self, resource_id: str) -> SharedResource | None:
        """Two point reads (the resource, its owner); None for an unknown or malformed id."""
        resource = self._resources.get(resource_id)
        if resource is None:
            return None
        owner = self._users.by_id(resource.owner_id)
        return SharedResource(
            resource_id=resource.resource_id,
            name=resource.name,
            size=resource.size,
            content_type=resource.content_type,
            shared_by=owner.display_name if owner is not None else None,
        )
