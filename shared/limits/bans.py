"""Bans: a source that keeps crossing failure limits is refused at the edge for a while.

As fail2ban's findtime, maxretry and bantime: a *strike* is a source's refusal by one of
its failure limits (sign-in, activation, redemption), counted once per window of that
limit however many requests the window refuses. BAN_AFTER_STRIKES strikes within
BAN_FINDTIME_SECONDS ban the source for BAN_FIRST_SECONDS, doubled for every earlier ban
of it within BAN_MEMORY_DAYS, up to BAN_LONGEST_SECONDS. Never on a single limit hit (the
setting is at least 2), never a source inside BAN_EXEMPT_NETWORKS (the trusted proxies'
own addresses), never the pooled unparsable source.

The edge enforces bans (Front Door's WAF in Azure, published by a timer; nginx locally);
the app's own limits stay in force whatever the edge does. Table `bans`:
- `strikes:<source>` / `<limit>:<window>`: one strike; the insert makes a limit hit count once;
- `ban` / `<source>`: the source, `until`, `offences`, `bannedAt`, `liftedAt`; active while
  `until` is ahead. Rows stay for BAN_MEMORY_DAYS after they end, for the doubling.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared import errors
from shared.audit import AuditEventType, AuditLog
from shared.clock import Clock
from shared.housekeeping.expiry import ExpiryIndex, ExpiryKind, key_of
from shared.limits.sources import UNPARSABLE

BAN_PARTITION = "ban"
BANS_ACTOR = "system:bans"
MAX_REMEMBERED_STRIKES = 100_000  # the process's memory of strikes already stored
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BanRules:
    after_strikes: int
    findtime: timedelta
    first: timedelta
    longest: timedelta
    memory: timedelta
    exempt: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def length(self, earlier_bans: int) -> timedelta:
        return min(self.longest, self.first * 2**earlier_bans)

    def exempts(self, source: str) -> bool:
        if source == UNPARSABLE:
            return True
        try:
            network = ipaddress.ip_network(source)
        except ValueError:
            return True  # not a source the limits produce: nothing to ban
        return any(network.version == e.version and network.subnet_of(e) for e in self.exempt)


def parse_networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """ "10.0.0.0/8, 2001:db8::/32" -> the networks (ValueError names a malformed one)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


@dataclass(frozen=True)
class Ban:
    source: str
    until: datetime
    offences: int
    banned_at: datetime
    lifted_at: datetime | None = None

    def view(self) -> dict:
        return {
            "source": self.source, "until": self.until, "offences": self.offences,
            "bannedAt": self.banned_at, "liftedAt": self.lifted_at,
        }  # fmt: skip


def row_key(source: str) -> str:
    """A source as a table key: "/" may not stand in one."""
    return source.replace("/", "_")


def _ban_from(entity) -> Ban:
    return Ban(entity["source"], entity["until"], entity["offences"], entity["bannedAt"], entity.get("liftedAt"))


class BanList:
    def __init__(
        self,
        table: TableClient,
        expiry: ExpiryIndex,
        audit: AuditLog,
        clock: Clock,
        rules: BanRules,
        actor_for_source: Callable[[str], str],
    ):
        self._table = table
        self._expiry = expiry
        self._audit = audit
        self._clock = clock
        self.rules = rules
        self._actor_for_source = actor_for_source  # how a source appears in the audit: a keyed hash
        self._struck: set[tuple[str, str, int]] = set()
        self._struck_lock = threading.Lock()

    def strike(self, source: str, limit: str, window: int) -> None:
        """A failure limit refused `source` in `window`: count the strike (once), and ban
        the source when it has enough. A storage failure here never changes the refusal."""
        if self.rules.exempts(source):
            return
        with self._struck_lock:
            if (source, limit, window) in self._struck:
                return
            if len(self._struck) >= MAX_REMEMBERED_STRIKES:
                self._struck.clear()
            self._struck.add((source, limit, window))
        try:
            self._strike(source, f"{limit}:{window}")
        except AzureError:
            log.warning("a strike against a source could not be stored", exc_info=True)

    def _strike(self, source: str, strike_key: str) -> None:
        now = self._clock.now()
        partition = f"strikes:{row_key(source)}"
        try:
            self._table.create_entity({"PartitionKey": partition, "RowKey": strike_key, "at": now})
        except ResourceExistsError:
            return  # another instance counted this limit hit
        self._expiry.add(ExpiryKind.BAN, f"{partition}|{strike_key}", now + self.rules.findtime)
        previous = self._get(source)
        if previous is not None and previous.until > now:
            return  # banned already
        # strikes before the source's last ban led to that ban: a new one needs new strikes
        since = max(now - self.rules.findtime, previous.banned_at) if previous else now - self.rules.findtime
        recent = self._table.query_entities(
            "PartitionKey eq @partition and at gt @since", parameters={"partition": partition, "since": since}
        )
        if sum(1 for _ in recent) >= self.rules.after_strikes:
            self._ban(source, previous, now)

    def _ban(self, source: str, previous: Ban | None, now: datetime) -> None:
        earlier = previous.offences if previous and previous.until > now - self.rules.memory else 0
        length = self.rules.length(earlier)
        ban = Ban(source, now + length, earlier + 1, now)
        self._table.upsert_entity(
            {
                "PartitionKey": BAN_PARTITION, "RowKey": row_key(source), "source": source, "until": ban.until,
                "offences": ban.offences, "bannedAt": now, "liftedAt": None,
            },
            mode=UpdateMode.REPLACE,
        )  # fmt: skip
        self._expiry.add(ExpiryKind.BAN, f"{BAN_PARTITION}|{row_key(source)}", ban.until + self.rules.memory)
        self._audit.record(
            AuditEventType.BAN, "ok", actor=BANS_ACTOR, user_id=self._actor_for_source(source),
            details={"seconds": int(length.total_seconds()), "offences": ban.offences},
        )  # fmt: skip

    def _get(self, source: str) -> Ban | None:
        try:
            return _ban_from(self._table.get_entity(BAN_PARTITION, row_key(source)))
        except ResourceNotFoundError:
            return None

    def active(self) -> list[Ban]:
        """Bans in force, longest-standing offenders first: one query of the ban partition."""
        now = self._clock.now()
        rows = self._table.query_entities(
            "PartitionKey eq @partition and until gt @now", parameters={"partition": BAN_PARTITION, "now": now}
        )
        bans = [_ban_from(row) for row in rows]
        return sorted(bans, key=lambda ban: (-ban.offences, ban.banned_at))

    def lift(self, source: str, *, actor: str, request_id: str | None = None) -> dict:
        """An operator ends a ban now (it still counts for the doubling)."""
        ban = self._get(source)
        now = self._clock.now()
        if ban is None or ban.until <= now:
            raise errors.NotFound("No active ban for this source.", code="ban_not_found")
        self._table.update_entity(
            {"PartitionKey": BAN_PARTITION, "RowKey": row_key(source), "until": now, "liftedAt": now},
            mode=UpdateMode.MERGE,
        )
        self._audit.record(
            AuditEventType.BAN_LIFT, "ok", actor=actor, user_id=self._actor_for_source(source), request_id=request_id
        )
        return Ban(source, now, ban.offences, ban.banned_at, now).view()

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup: strikes past the find time, bans past their memory (unless banned again)."""
        now = self._clock.now()
        for row in index_rows:
            partition, _, key = key_of(row).partition("|")
            try:
                entity = self._table.get_entity(partition, key)
            except ResourceNotFoundError:
                continue
            if partition != BAN_PARTITION or entity["until"] + self.rules.memory <= now:
                self._table.delete_entity(partition, key)
        return len(index_rows)
