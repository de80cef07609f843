"""The `codes` table and the codes' rows in the expiry index.

- A resource's partition, PartitionKey = "resource:<resource id>", holds its code rows,
  its slot rows (shared/codes/slots.py) and its attempts row. Codes are unique per
  resource, not across the service, so the 6-digit space caps no total of active codes.
- Code row: RowKey = "code:<HMAC of resource id and code>:<key id>". Inserting with
  create_entity is the uniqueness check; the row's ETag makes "redeemed" win once.
- Attempts row: RowKey = "attempts", the resource's redemption failures in the current
  windows (shared/limits/guard.py decides them). A redemption reads it with the code
  rows in one query of the partition, and writes it in one transaction with the code.
- Owner row: PartitionKey = "owner:<issuer id>", RowKey = code id, holding the code's
  hash reference and a mirror of the states the owner sets (revoked): listing and
  revoking touch only the caller's own partition.
- Index row (table `expiry`): PartitionKey = the expiry bucket, RowKey = "code:<code id>",
  with the hash, key id and issuer, so cleanup finds both rows without a scan, and the
  code as issued with its row's ETag then, so cleanup deletes an unused code unread.
"""

from __future__ import annotations

from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.auth.keys import KeyedHash
from shared.codes.models import AccessCode, CodeState
from shared.housekeeping.expiry import ExpiryIndex, ExpiryKind, batches, delete_batch, key_of

ATTEMPTS_ROW = "attempts"


def code_partition(resource_id: str) -> str:
    return f"resource:{resource_id}"


def code_row(key: KeyedHash) -> str:
    return f"code:{key.digest}:{key.key_id}"


def owner_partition(issuer_id: str) -> str:
    return f"owner:{issuer_id}"


@dataclass(frozen=True)
class StoredCode:
    code: AccessCode
    etag: str


@dataclass(frozen=True)
class RedemptionView:
    """What one query of a resource's partition gives a redemption: the code rows found
    under the candidate hashes (in their order), and the attempts row (None before the
    resource's first try)."""

    codes: list[StoredCode]
    attempts: dict | None


def _code_from(entity) -> AccessCode:
    _, code_hash, key_id = entity["RowKey"].split(":")
    return AccessCode(
        code_id=entity["codeId"],
        code_hash=code_hash,
        key_id=key_id,
        issuer_id=entity["issuerId"],
        resource_id=entity["resourceId"],
        created_at=entity["createdAt"],
        expires_at=entity["expiresAt"],
        state=CodeState(entity["state"]),
        redeemed_at=entity.get("redeemedAt"),
        revoked_at=entity.get("revokedAt"),
        resource_name=entity.get("resourceName", ""),
        content_type=entity.get("contentType", ""),
        blob_name=entity.get("blobName", ""),
    )


def _stored(entity) -> StoredCode:
    return StoredCode(_code_from(entity), entity.metadata["etag"])


def code_entity(code: AccessCode) -> dict:
    entity = {
        "PartitionKey": code_partition(code.resource_id),
        "RowKey": code_row(code.keyed_hash),
        "codeId": code.code_id,
        "issuerId": code.issuer_id,
        "resourceId": code.resource_id,
        "createdAt": code.created_at,
        "expiresAt": code.expires_at,
        "state": code.state.value,
        "resourceName": code.resource_name,
        "contentType": code.content_type,
        "blobName": code.blob,
    }
    if code.redeemed_at is not None:
        entity["redeemedAt"] = code.redeemed_at
    if code.revoked_at is not None:
        entity["revokedAt"] = code.revoked_at
    return entity


def owner_entity(code: AccessCode) -> dict:
    return {
        "PartitionKey": owner_partition(code.issuer_id),
        "RowKey": code.code_id,
        "codeHash": code.code_hash,
        "keyId": code.key_id,
        "resourceId": code.resource_id,
        "createdAt": code.created_at,
        "expiresAt": code.expires_at,
        "state": code.state.value,
    }


def index_fields(code: AccessCode, etag: str) -> dict:
    return {
        "codeHash": code.code_hash,
        "keyId": code.key_id,
        "issuerId": code.issuer_id,
        "resourceId": code.resource_id,
        "createdAt": code.created_at,
        "expiresAt": code.expires_at,
        "codeETag": etag,
    }


def _issued_view(row) -> AccessCode:
    """The code as issued, from its index row."""
    return AccessCode(
        code_id=key_of(row),
        code_hash=row["codeHash"],
        key_id=row["keyId"],
        issuer_id=row["issuerId"],
        resource_id=row["resourceId"],
        created_at=row["createdAt"],
        expires_at=row["expiresAt"],
        state=CodeState.ACTIVE,
    )


def _owner_view(row) -> AccessCode:
    return AccessCode(
        code_id=row["RowKey"],
        code_hash=row["codeHash"],
        key_id=row["keyId"],
        issuer_id=row["PartitionKey"].removeprefix("owner:"),
        resource_id=row["resourceId"],
        created_at=row["createdAt"],
        expires_at=row["expiresAt"],
        state=CodeState(row["state"]),
        redeemed_at=row.get("redeemedAt"),
        revoked_at=row.get("revokedAt"),
    )


class CodeStore:
    def __init__(self, table: TableClient, expiry: ExpiryIndex, pool: Executor):
        self._table = table
        self._expiry = expiry
        self._pool = pool

    # --- issuing -----------------------------------------------------------------

    def register_expiry(self, code: AccessCode, etag: str) -> None:
        """`etag`: the code row's as issued (its insert or take-over)."""
        self._expiry.add(ExpiryKind.CODE, code.code_id, code.expires_at, **index_fields(code, etag))

    def insert(self, code: AccessCode) -> str | None:
        """Insert if absent: the new row's ETag, or None when a row holds that hash already."""
        try:
            return self._table.create_entity(code_entity(code))["etag"]
        except ResourceExistsError:
            return None

    def take_over(self, code: AccessCode, previous: StoredCode) -> str | None:
        """Replace a dead row (redeemed, revoked or expired) if nobody changed it meanwhile:
        the row's new ETag, or None."""
        try:
            return self._table.update_entity(
                code_entity(code),
                mode=UpdateMode.REPLACE,
                etag=previous.etag,
                match_condition=MatchConditions.IfNotModified,
            )["etag"]
        except (ResourceModifiedError, ResourceNotFoundError):
            return None

    def read(self, resource_id: str, key: KeyedHash) -> StoredCode | None:
        """The code row stored under a keyed hash, with its ETag; None when there is none."""
        try:
            return _stored(self._table.get_entity(code_partition(resource_id), code_row(key)))
        except ResourceNotFoundError:
            return None

    def delete_row(self, code: AccessCode) -> None:
        self._table.delete_entity(code_partition(code.resource_id), code_row(code.keyed_hash))

    def discard(self, code: AccessCode) -> None:
        """Undo an issuance that failed: its code row and its owner row."""
        self.delete_row(code)
        self._table.delete_entity(owner_partition(code.issuer_id), code.code_id)

    def add_owner_row(self, code: AccessCode) -> None:
        self._table.upsert_entity(owner_entity(code), mode=UpdateMode.REPLACE)

    # --- redeeming and revoking ------------------------------------------------------

    def redemption_view(self, resource_id: str, candidates: list[KeyedHash]) -> RedemptionView:
        """The code rows under `candidates` and the attempts row: one query of the
        resource's partition for named rows (it holds only that resource's few rows)."""
        names = {"attempts": ATTEMPTS_ROW} | {f"c{n}": code_row(key) for n, key in enumerate(candidates)}
        rows = {
            row["RowKey"]: row
            for row in self._table.query_entities(
                # the SDK substitutes @names between spaces only
                "PartitionKey eq @pk and ( " + " or ".join(f"RowKey eq @{name}" for name in names) + " )",
                parameters={"pk": code_partition(resource_id), **names},
            )
        }
        found = [_stored(rows[code_row(key)]) for key in candidates if code_row(key) in rows]
        return RedemptionView(found, rows.get(ATTEMPTS_ROW))

    def attempts(self, resource_id: str) -> dict | None:
        try:
            return self._table.get_entity(code_partition(resource_id), ATTEMPTS_ROW)
        except ResourceNotFoundError:
            return None

    def settle_attempt(
        self, resource_id: str, view: RedemptionView, counted: dict, redeem: StoredCode | None = None, **changes
    ) -> StoredCode | bool:
        """The attempts row gets `counted` on the ETag it was read with (inserted if there
        was none), and, when `redeem` is given, that code row gets `changes` on its ETag,
        both in one transaction. False when another try wrote either first (read again
        and judge again); else the redeemed code as it is now, or True. A failed try
        writes only the attempts row: one plain write, which costs the SDK a quarter of a
        transaction's work."""
        partition = code_partition(resource_id)
        row = {"PartitionKey": partition, "RowKey": ATTEMPTS_ROW, **counted}
        first = view.attempts is None
        options = {} if first else {"mode": UpdateMode.REPLACE, **_unchanged_since(view.attempts.metadata["etag"])}
        try:
            if redeem is None:
                if first:
                    self._table.create_entity(row)
                else:
                    self._table.update_entity(row, **options)
                return True
            code = {"PartitionKey": partition, "RowKey": code_row(redeem.code.keyed_hash), **changes}
            results = self._table.submit_transaction(
                [
                    ("create", row) if first else ("update", row, options),
                    ("update", code, {"mode": UpdateMode.MERGE, **_unchanged_since(redeem.etag)}),
                ]
            )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        except TableTransactionError as error:
            if error.status_code in (404, 409, 412):
                return False
            raise
        return replace(redeem, etag=results[1]["etag"])

    def transition(self, stored: StoredCode, **changes) -> StoredCode | None:
        """Merge `changes` into the row only if it is unchanged since it was read; the
        row as it is now (with its new ETag), or None when another writer came first."""
        entity = {
            "PartitionKey": code_partition(stored.code.resource_id),
            "RowKey": code_row(stored.code.keyed_hash),
            **changes,
        }
        try:
            metadata = self._table.update_entity(
                entity, mode=UpdateMode.MERGE, etag=stored.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None
        return replace(stored, etag=metadata["etag"])

    def owner_row(self, issuer_id: str, code_id: str) -> AccessCode | None:
        try:
            return _owner_view(self._table.get_entity(owner_partition(issuer_id), code_id))
        except ResourceNotFoundError:
            return None

    def owner_rows(
        self, issuer_id: str, *, resource_id: str | None = None, live_at: datetime | None = None
    ) -> list[AccessCode]:
        """The issuer's codes (their own partition), optionally only one resource's codes
        that had not expired at `live_at`."""
        query, parameters = "PartitionKey eq @pk", {"pk": owner_partition(issuer_id)}
        if resource_id is not None:
            query, parameters["rid"] = query + " and resourceId eq @rid", resource_id
        if live_at is not None:
            query, parameters["now"] = query + " and expiresAt gt @now", live_at
        return [_owner_view(row) for row in self._table.query_entities(query, parameters=parameters)]

    def mirror_state(self, code: AccessCode, state: CodeState, at: datetime) -> None:
        field = {CodeState.REVOKED: "revokedAt", CodeState.REDEEMED: "redeemedAt"}.get(state)
        entity = {"PartitionKey": owner_partition(code.issuer_id), "RowKey": code.code_id, "state": state.value}
        if field:
            entity[field] = at
        with suppress(ResourceNotFoundError):
            self._table.update_entity(entity, mode=UpdateMode.MERGE)

    # --- cleanup -----------------------------------------------------------------------

    def remove_expired(self, index_rows: list[dict]) -> list[AccessCode]:
        """Delete the code rows behind expired index rows, and their owner rows; returns
        the codes whose row this call deleted while they were still active (expired
        unused), so the caller audits each exactly once even when two cleanups run at
        the same time."""
        by_owner: dict[str, list[str]] = {}
        for row in index_rows:
            by_owner.setdefault(owner_partition(row["issuerId"]), []).append(key_of(row))
        owner_batches = [(partition, batch) for partition, ids in by_owner.items() for batch in batches(ids)]
        removed = self._pool.map(self._remove_one, index_rows)
        list(self._pool.map(lambda job: delete_batch(self._table, *job), owner_batches))
        return [code for code in removed if code is not None]

    def _remove_one(self, index_row: dict) -> AccessCode | None:
        resource_id, key = index_row["resourceId"], KeyedHash(index_row["keyId"], index_row["codeHash"])
        status = self._delete_if_unchanged(resource_id, key, index_row["codeETag"])
        if status == 204:
            return _issued_view(index_row)  # unchanged since issuing: it expired unused
        if status == 404:
            return None  # another cleanup came first
        # 412: redeemed, revoked or taken over since issuing; read what it is now
        stored = self.read(resource_id, key)
        if stored is None or stored.code.code_id != key_of(index_row):
            return None  # already gone, or the hash now belongs to a newer code
        if self._delete_if_unchanged(resource_id, key, stored.etag) != 204:
            return None
        return stored.code if stored.code.state is CodeState.ACTIVE else None

    def _delete_if_unchanged(self, resource_id: str, key: KeyedHash, etag: str) -> int:
        """Delete the code row if its ETag is still `etag`: 204 when this call deleted it,
        404 when it was gone, 412 when it changed. Of two cleanups racing for a row only
        one gets 204, so only one audits it."""
        responses = []  # delete_entity hides a 404: the status is read off the response
        try:
            self._table.delete_entity(
                code_partition(resource_id),
                code_row(key),
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
                raw_response_hook=responses.append,  # called per attempt: the last one counts
            )
        except HttpResponseError as error:
            if error.status_code != 412:
                raise
        return responses[-1].http_response.status_code


def _unchanged_since(etag: str) -> dict:
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}
