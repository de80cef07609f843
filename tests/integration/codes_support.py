"""What the codes tests share: an active issuer in the users table, a resource of theirs,
services on a clock of the test's choosing, and a way to read every audit blob."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from shared.accounts.users import User
from shared.audit import guest_actor
from shared.auth.keys import KeyedHash
from shared.clock import ManualClock
from shared.codes.models import HASH_PURPOSE, bound_to
from shared.codes.service import CodeService
from shared.codes.slots import ActiveCodeSlots
from shared.codes.store import CodeStore
from shared.housekeeping.cleanup import JOB as CLEANUP_JOB
from shared.housekeeping.expiry import ExpiryIndex
from shared.resources.store import Resource
from shared.services import Services
from shared.storage import AUDIT_CONTAINER


def add_user(svc: Services, *, status: str = "active", role: str = "user") -> str:
    """A user row as the accounts area writes it; returns the user id."""
    user_id = secrets.token_urlsafe(16)
    email = f"{secrets.token_hex(8)}@example.com"
    now = svc.clock.now()
    user = User(
        user_id=user_id,
        email=email,
        email_key=email,
        email_hash=hashlib.sha256(email.encode()).hexdigest(),
        role=role,
        status=status,
        password_hash="unused",
        password_changed_at=now,
        created_at=now,
    )
    assert svc.users.create(user)
    return user_id


def hashed(svc: Services, resource_id: str, code: str) -> KeyedHash:
    """What a code of a resource is stored under (the active key)."""
    return svc.keys.hash(HASH_PURPOSE, bound_to(resource_id, code))


def add_resource(svc: Services, owner_id: str, data: bytes = b"hello, guest", name: str = "hello.txt") -> Resource:
    resource, _ = svc.resources.put(owner_id, name, data, "text/plain")
    return resource


def services_at_real_time(settings, **overrides) -> Services:
    """Services whose clock starts at the real time: storage checks a download link's
    times against its own clock."""
    return Services(settings.model_copy(update=overrides), clock=ManualClock(datetime.now(UTC)))


def all_audit_text(svc: Services, prefix: str = "") -> str:
    container = svc.storage.container(AUDIT_CONTAINER)
    return "".join(
        container.download_blob(item.name).readall().decode()
        for item in container.list_blobs(name_starts_with=prefix or None)
    )


@pytest.fixture
def fresh_cursor(settings):
    """Cleanup's cursor is global and only moves forward; tests that run cleanup at a time
    of their own start without one and leave none behind."""
    jobs = Services(settings).storage.table("jobs")
    jobs.delete_entity("cursor", CLEANUP_JOB)
    yield
    jobs.delete_entity("cursor", CLEANUP_JOB)


def codes_service(svc: Services, *, generate: Callable[[], str], expiry: ExpiryIndex | None = None):
    """The codes service as `Services` wires it, with what a test chooses passed to the
    constructors: where code values come from (a small code space, fixed values) and the
    expiry index. Returns the service and its store, to look at the rows."""
    codes_table = svc.storage.table("codes")
    store = CodeStore(codes_table, expiry or svc.expiry, svc.pool)
    service = CodeService(
        store, svc.resources, svc.issuers, svc.downloads, svc.audit, svc.keys, svc.clock, svc.pool,
        default_ttl=timedelta(seconds=svc.settings.code_ttl_seconds),
        slots=ActiveCodeSlots(codes_table, svc.settings.max_active_codes_per_resource),
        abuse=svc.abuse, actor_for_source=partial(guest_actor, svc.keys), generate=generate,
    )  # fmt: skip
    return service, store
