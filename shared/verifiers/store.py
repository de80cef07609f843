"""The `verifiers` table: enrolled offline verifiers, the offline codes issued for them,
and the log entries they uploaded.

- `verifier:<verifierId>` / `record`: the enrolment (owner, the resource's blob, which key
  derives the secret, the scheme, the lease, revokedAt). A sync and an offline issue
  make one point read of it.
- `owner:<userId>` / `<verifierId>`: the owner's verifiers, one query to list them.
- `verifier:<verifierId>` / `code:<slot>:<index>`: an offline code handed out. The insert
  is what hands a (slot, index) out once; the row holds its issuer, expiry, revocation and
  redemption (learnt at a sync). The revocations a sync sends back are one range query.
- `verifier:<verifierId>` / `entry:<entryId>`: an uploaded log entry, `recorded` once its
  audit event is stored: what makes a second upload of it add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.housekeeping.expiry import batches
from verifier.scheme import Scheme

RECORD_ROW = "record"
SLOT_DIGITS = 12
OFFLINE_CODE_PREFIX = "off."


def verifier_partition(verifier_id: str) -> str:
    return f"verifier:{verifier_id}"


def code_row_key(slot: int, index: int) -> str:
    return f"code:{slot:0{SLOT_DIGITS}d}:{index:03d}"


def slot_index_of(row_key: str) -> tuple[int, int]:
    _, slot, index = row_key.split(":")
    return int(slot), int(index)


def offline_code_id(verifier_id: str, slot: int, index: int) -> str:
    return f"{OFFLINE_CODE_PREFIX}{verifier_id}.{slot}.{index}"


def is_offline_code_id(code_id: str) -> bool:
    return code_id.startswith(OFFLINE_CODE_PREFIX)


def parse_offline_code_id(code_id: str) -> tuple[str, int, int] | None:
    verifier_id, _, rest = code_id.removeprefix(OFFLINE_CODE_PREFIX).partition(".")
    slot, _, index = rest.partition(".")
    if not (verifier_id and slot.isdecimal() and index.isdecimal()):
        return None
    return verifier_id, int(slot), int(index)


@dataclass(frozen=True)
class Verifier:
    verifier_id: str
    owner_id: str
    blob_name: str  # the resource it belongs to: a link rotation keeps it
    label: str
    key_id: str
    scheme: Scheme
    lease_hours: int
    created_at: datetime
    revoked_at: datetime | None = None
    last_sync_at: datetime | None = None

    def public(self) -> dict:
        return {
            "verifierId": self.verifier_id,
            "label": self.label,
            "state": "revoked" if self.revoked_at else "active",
            "codeLifetimeSeconds": self.scheme.lifetime_seconds,
            "codesPerSlot": self.scheme.codes_per_slot,
            "slotSeconds": self.scheme.slot_seconds,
            "leaseHours": self.lease_hours,
            "createdAt": self.created_at,
            "revokedAt": self.revoked_at,
            "lastSyncAt": self.last_sync_at,
        }


def _verifier_from(entity) -> Verifier:
    return Verifier(
        verifier_id=entity["PartitionKey"].removeprefix("verifier:"),
        owner_id=entity["ownerId"],
        blob_name=entity["blobName"],
        label=entity["label"],
        key_id=entity["keyId"],
        scheme=Scheme(entity["lifetimeSeconds"], entity["codesPerSlot"], entity["skewSeconds"]),
        lease_hours=entity["leaseHours"],
        created_at=entity["createdAt"],
        revoked_at=entity.get("revokedAt"),
        last_sync_at=entity.get("lastSyncAt"),
    )


class VerifierStore:
    def __init__(self, table: TableClient):
        self._table = table

    # --- verifiers ---------------------------------------------------------------------

    def add(self, verifier: Verifier) -> None:
        """The record first: an owner row never names a verifier that does not exist."""
        scheme = verifier.scheme
        self._table.create_entity(
            {
                "PartitionKey": verifier_partition(verifier.verifier_id), "RowKey": RECORD_ROW,
                "ownerId": verifier.owner_id, "blobName": verifier.blob_name, "label": verifier.label,
                "keyId": verifier.key_id, "lifetimeSeconds": scheme.lifetime_seconds,
                "codesPerSlot": scheme.codes_per_slot, "skewSeconds": scheme.skew_seconds,
                "leaseHours": verifier.lease_hours, "createdAt": verifier.created_at,
            }
        )  # fmt: skip
        self._table.create_entity({"PartitionKey": f"owner:{verifier.owner_id}", "RowKey": verifier.verifier_id})

    def get(self, verifier_id: str) -> Verifier | None:
        try:
            return _verifier_from(self._table.get_entity(verifier_partition(verifier_id), RECORD_ROW))
        except ResourceNotFoundError:
            return None

    def owned_by(self, owner_id: str) -> list[str]:
        rows = self._table.query_entities("PartitionKey eq @owner", parameters={"owner": f"owner:{owner_id}"})
        return [row["RowKey"] for row in rows]

    def mark(self, verifier_id: str, **fields) -> None:
        self._table.update_entity(
            {"PartitionKey": verifier_partition(verifier_id), "RowKey": RECORD_ROW, **fields}, mode=UpdateMode.MERGE
        )

    # --- offline codes -------------------------------------------------------------------

    def hand_out(self, verifier_id: str, slot: int, index: int, **fields) -> bool:
        """Hand (slot, index) out, once: False when it already was."""
        try:
            self._table.create_entity(
                {"PartitionKey": verifier_partition(verifier_id), "RowKey": code_row_key(slot, index), **fields}
            )
        except ResourceExistsError:
            return False
        return True

    def code(self, verifier_id: str, slot: int, index: int) -> dict | None:
        try:
            return self._table.get_entity(verifier_partition(verifier_id), code_row_key(slot, index))
        except ResourceNotFoundError:
            return None

    def codes_since(self, verifier_id: str, first_slot: int) -> list[dict]:
        """The verifier's offline codes from `first_slot` on: one range query."""
        return list(
            self._table.query_entities(
                "PartitionKey eq @partition and RowKey ge @first and RowKey lt 'code;'",
                parameters={"partition": verifier_partition(verifier_id), "first": code_row_key(first_slot, 0)},
            )
        )

    def change_code(self, row: dict, **fields) -> bool:
        """Merge `fields` into a code row unless it changed since it was read."""
        try:
            self._table.update_entity(
                {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], **fields},
                mode=UpdateMode.MERGE,
                etag=row.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    # --- uploaded log entries --------------------------------------------------------------

    def claim_entry(self, verifier_id: str, entry_id: str) -> bool:
        """True when this entry still needs its audit event: new, or claimed by an upload
        whose audit write failed."""
        try:
            self._table.create_entity(
                {"PartitionKey": verifier_partition(verifier_id), "RowKey": f"entry:{entry_id}", "recorded": False}
            )
        except ResourceExistsError:
            try:
                return not self._table.get_entity(verifier_partition(verifier_id), f"entry:{entry_id}")["recorded"]
            except ResourceNotFoundError:  # purged meanwhile: long recorded
                return False
        return True

    def entries_recorded(self, verifier_id: str, entry_ids: list[str]) -> None:
        operations = [
            ("upsert", {"PartitionKey": verifier_partition(verifier_id), "RowKey": f"entry:{e}", "recorded": True})
            for e in entry_ids
        ]
        for batch in batches(operations):
            self._table.submit_transaction(batch)

    # --- cleanup -----------------------------------------------------------------------------

    def delete_row(self, partition: str, row_key: str) -> None:
        try:
            self._table.delete_entity(partition, row_key)
        except ResourceNotFoundError:
            return
