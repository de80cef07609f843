"""Seeding straight into storage through the project's own stores (the same layout the
service reads): activated users with a session and a resource each. bcrypt is computed
once per run, not per user: seeding measures nothing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.harness import call_load

PASSWORD = "correct-horse-battery-staple-42"  # a bench-only password, not a secret


@dataclass(frozen=True)
class SeededUser:
    user_id: str
    email: str
    token: str
    resource_id: str


class Seeder:
    def __init__(self, services):
        from shared.accounts.passwords import PasswordHasher

        self._services = services
        self.password_hash = PasswordHasher(services.settings.bcrypt_cost).hash(PASSWORD)

    def user(self, email: str | None = None, *, with_session: bool = True, with_resource: bool = True) -> SeededUser:
        from shared.accounts.addresses import parse_email
        from shared.accounts.users import User

        svc = self._services
        address = parse_email(email or f"bench-{secrets.token_hex(8)}@example.com")
        now = datetime.now(UTC)
        user = User.new(address, role="user", status="active", password_hash=self.password_hash, now=now)
        if not svc.users.create(user):
            raise RuntimeError("seeded address taken")
        token = svc.sessions.create(user.user_id, user.role)[0] if with_session else ""
        resource_id = ""
        if with_resource:
            resource, _ = svc.resources.put(user.user_id, "report.txt", b"bench file\n" * 8, "text/plain")
            resource_id = resource.resource_id
        return SeededUser(user.user_id, user.email, token, resource_id)

    def users(self, n: int, concurrency: int = 48) -> list[SeededUser]:
        run = call_load(lambda _: self.user(), range(n), concurrency)
        failed = [c for c in run.calls if not c.ok]
        if failed:
            raise RuntimeError(f"seeding users: {len(failed)} failed, e.g. {failed[0].error}")
        return [c.data for c in run.calls]

    def resources(self, owners: list[SeededUser], n: int, concurrency: int = 48) -> list[tuple[SeededUser, str]]:
        """`n` more resources, spread round-robin over `owners`: (owner, resource id)."""

        def put(position: int) -> tuple[SeededUser, str]:
            owner = owners[position % len(owners)]
            resource, _ = self._services.resources.put(
                owner.user_id, f"file-{position}.txt", b"bench file\n" * 8, "text/plain"
            )
            return owner, resource.resource_id

        run = call_load(put, range(n), concurrency)
        failed = [c for c in run.calls if not c.ok]
        if failed:
            raise RuntimeError(f"seeding resources: {len(failed)} failed, e.g. {failed[0].error}")
        return [c.data for c in run.calls]
