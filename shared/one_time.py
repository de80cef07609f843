"""What every one-time code shares (access codes, activation codes, unlock codes): the
digits a person types, kept only as a keyed hash bound to what the code is for, and a try
counted with an ETag-conditional write before the compare (Ory Kratos' order), so racing
guesses get no more tries than allowed."""

from __future__ import annotations

import secrets
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.auth.keys import KeyedHash, KeyRing
from shared.optimistic import LostRace


def numeric_code(digits: int) -> str:
    """`digits` decimal digits from the CSPRNG, leading zeros kept."""
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def hash_fields(keys: KeyRing, purpose: str, owner: str, code: str) -> dict[str, str]:
    """The row fields that keep a code: its keyed hash, bound to its owner, and the key's id."""
    hashed = keys.hash(purpose, f"{owner}:{code}")
    return {"codeHash": hashed.digest, "keyId": hashed.key_id}


def matches(keys: KeyRing, purpose: str, owner: str, code: str, row: dict[str, Any]) -> bool:
    """Whether `code` is the one the row keeps for `owner` (constant-time)."""
    return keys.matches(purpose, f"{owner}:{code}", KeyedHash(row["keyId"], row["codeHash"]))


def count_try(table: TableClient, row: Any, counters: dict[str, Any]) -> dict[str, Any]:
    """Write `counters` onto the row only if nothing wrote since it was read; a racing try
    that counted first raises LostRace (read again and decide again). Returns the write's
    metadata (its ETag)."""
    try:
        return table.update_entity(
            {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], **counters},
            mode=UpdateMode.MERGE,
            etag=row.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except (ResourceModifiedError, ResourceNotFoundError) as error:
        raise LostRace from error
    except HttpResponseError as error:
        if error.status_code == 412:
            raise LostRace from error
        raise
