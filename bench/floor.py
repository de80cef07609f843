"""The storage floor: the fewest storage calls a redemption and an issuance can make,
straight through the SDK (the same `Storage` clients and connection pool as the app),
on the same Azurite and at the same concurrency as the service is driven.

- redemption: point-read the code entity, ETag-conditional MERGE to "redeemed", one
  audit append;
- issuance: point-read the caller's session (the request is authenticated), insert the
  code entity (the insert is the uniqueness check), one audit append.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.data.tables import UpdateMode

from bench.harness import call_load
from bench.stats import Run
from shared.storage import AUDIT_CONTAINER


def floor_code(now: datetime) -> dict:
    return {
        "PartitionKey": f"resource:{secrets.token_urlsafe(16)}",
        "RowKey": f"code:{secrets.token_hex(32)}:b1",
        "codeId": secrets.token_urlsafe(12),
        "issuerId": secrets.token_urlsafe(16),
        "resourceId": secrets.token_urlsafe(16),
        "createdAt": now,
        "expiresAt": now + timedelta(minutes=10),
        "state": "active",
    }


def audit_line(kind: str) -> bytes:
    event = {
        "time": datetime.now(UTC).isoformat(),
        "type": kind,
        "outcome": "ok",
        "actor": "ip:" + secrets.token_hex(12),
        "user_id": secrets.token_urlsafe(16),
        "code_id": secrets.token_urlsafe(12),
        "resource_id": secrets.token_urlsafe(16),
        "request_id": secrets.token_hex(16),
    }
    return (json.dumps(event) + "\n").encode()


class Floor:
    def __init__(self, storage):
        self._codes = storage.table("codes")
        self._sessions = storage.table("sessions")
        self._container = storage.container(AUDIT_CONTAINER)
        self._new_blob()

    def _new_blob(self) -> None:
        self._audit = self._container.get_blob_client(f"bench-floor/{secrets.token_hex(6)}.jsonl")
        self._audit.create_append_blob()
        self._appends = 0

    def _fresh_blob_if_needed(self, upcoming: int) -> None:
        # an append blob takes 50,000 blocks: start another before that
        if self._appends + upcoming > 45_000:
            self._new_blob()
        self._appends += upcoming

    def seed_codes(self, n: int, concurrency: int = 64) -> list[dict]:
        now = datetime.now(UTC)
        entities = [floor_code(now) for _ in range(n)]
        seeded = call_load(self._codes.create_entity, entities, concurrency)
        assert seeded.errors == 0, seeded.statuses()
        return entities

    def redeem(self, entity: dict) -> None:
        stored = self._codes.get_entity(entity["PartitionKey"], entity["RowKey"])
        self._codes.update_entity(
            {
                "PartitionKey": entity["PartitionKey"],
                "RowKey": entity["RowKey"],
                "state": "redeemed",
                "redeemedAt": datetime.now(UTC),
                "redeemedBy": "ip:floor",
            },
            mode=UpdateMode.MERGE,
            etag=stored.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
        self._audit.append_block(audit_line("redeem"))

    def seed_session(self) -> tuple[str, str]:
        key = (f"t:{secrets.token_hex(32)}", "b1")
        now = datetime.now(UTC)
        self._sessions.create_entity(
            {
                "PartitionKey": key[0],
                "RowKey": key[1],
                "userId": secrets.token_urlsafe(16),
                "role": "user",
                "createdAt": now,
                "lastSeenAt": now,
                "idleExpiresAt": now + timedelta(minutes=30),
                "absoluteExpiresAt": now + timedelta(hours=12),
                "passwordExpired": False,
            }
        )
        return key

    def issue(self, session_key: tuple[str, str]) -> None:
        self._sessions.get_entity(*session_key)
        self._codes.create_entity(floor_code(datetime.now(UTC)))
        self._audit.append_block(audit_line("issue"))

    def run_redeem(self, n: int, concurrency: int) -> Run:
        entities = self.seed_codes(n)
        self._fresh_blob_if_needed(n)
        for entity in self.seed_codes(10):  # warm the connections
            self.redeem(entity)
        return call_load(self.redeem, entities, concurrency)

    def run_issue(self, n: int, concurrency: int, sessions: int = 50) -> Run:
        keys = [self.seed_session() for _ in range(sessions)]
        self._fresh_blob_if_needed(n)
        for key in keys[:10]:
            self.issue(key)
        return call_load(self.issue, [keys[i % sessions] for i in range(n)], concurrency)
