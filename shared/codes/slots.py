"""At most N active codes per resource, strictly, however many issue at once.

A resource has at most N slot rows in its partition of the `codes` table (RowKey
"slot:<number>", beside its codes: shared/codes/store.py); issuing a code first claims
one: an insert of a free number, or, once all N exist, an ETag-conditional take-over of a slot whose code is no
longer active (expired, redeemed, revoked, or never stored). Each claim is a single
conditional write, so two issuers never hold one slot, and N slots are N codes at most.
The brute-force figures (shared/limits/odds.py) rely on N.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.codes.store import code_partition

SLOT_PREFIX = "slot:"


def _number(slot: dict) -> int:
    return int(slot["RowKey"].removeprefix(SLOT_PREFIX))


class ActiveCodeSlots:
    def __init__(self, table: TableClient, per_resource: int):
        self._table = table
        self.per_resource = per_resource

    def held(self, resource_id: str) -> list[dict]:
        """The resource's slot rows, for `claim`."""
        return list(
            self._table.query_entities(
                "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
                parameters={"pk": code_partition(resource_id), "low": SLOT_PREFIX, "high": "slot;"},
            )
        )

    def claim(
        self, resource_id: str, slots: list[dict], holder: dict, *, now: datetime, still_active: Callable[[dict], bool]
    ) -> bool:
        """Take a slot of the resource for a code (`holder`: codeId, issuerId, expiresAt);
        False when all are held by active codes. `slots`: the rows `held` read, which may
        be out of date (every write here is conditional). `still_active(slot)` tells
        whether an unexpired slot's code is still active (a read of its code)."""
        partition = code_partition(resource_id)
        taken = {_number(slot) for slot in slots}
        for number in (n for n in range(self.per_resource) if n not in taken):
            try:
                self._table.create_entity({"PartitionKey": partition, "RowKey": f"{SLOT_PREFIX}{number:07d}", **holder})
                return True
            except ResourceExistsError:
                continue  # another issuer took it
        for slot in slots:
            if _number(slot) >= self.per_resource:
                continue  # left from a larger setting
            if slot["expiresAt"] > now and still_active(slot):
                continue
            try:
                self._table.update_entity(
                    {"PartitionKey": partition, "RowKey": slot["RowKey"], **holder},
                    mode=UpdateMode.REPLACE, etag=slot.metadata["etag"], match_condition=MatchConditions.IfNotModified,
                )  # fmt: skip
                return True
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another issuer took it over first
        return False
