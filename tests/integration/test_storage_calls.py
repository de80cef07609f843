"""Storage requests per operation on the happy path, counted at the SDK's transport (one
per HTTP request: a table transaction is one), against Azurite. The ceilings are the
regression guard for the hot paths; timings live in `make bench`. docs/capacity.md builds
on these counts: change it with them.

Redemption is at its target (5). Issuance (target 6) and sign-in (target 6) are guarded at
what they make today; docs/capacity.md says what their calls are for."""

from __future__ import annotations

import secrets
import threading

import pytest

from shared.codes.models import CodeRejected
from shared.limits.sources import source_of
from shared.services import Services
from tests.integration.codes_support import add_resource, add_user

PASSWORD = "correct horse battery staple 42"
REDEEM_CEILING = 5
ISSUE_CEILING = 10  # the session read included
LOGIN_CEILINGS = {"new": 20, "known": 12}


class RequestCounter:
    """Counts the storage requests made while `counting` (every service: tables, blobs, queues)."""

    def __init__(self):
        self.counting = False
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, pipeline_request) -> None:
        if self.counting:
            request = pipeline_request.http_request
            with self._lock:
                self.requests.append(f"{request.method} {request.url.split('?')[0]}")

    def count(self, operation) -> int:
        self.requests = []
        self.counting = True
        try:
            operation()
        finally:
            self.counting = False
        return len(self.requests)


@pytest.fixture
def counted(settings, clock) -> tuple[Services, RequestCounter]:
    counter = RequestCounter()
    return Services(settings, clock=clock, storage_request_hook=counter), counter


def a_source() -> str:
    return source_of(f"2001:db8:{secrets.randbelow(9999)}::{secrets.randbelow(9999)}")


def test_a_redemption_makes_no_more_storage_requests_than_counted(counted):
    svc, counter = counted
    resource = add_resource(svc, add_user(svc))
    first, second = (svc.codes.issue(resource.owner_id, resource.resource_id) for _ in range(2))
    # the issuer's "active" is cached for a few seconds per instance (shared/codes/issuers.py),
    # so a busy instance asks the users table once in a while, not per redemption
    svc.codes.redeem(resource.resource_id, first.code, source=a_source())

    requests = counter.count(lambda: svc.codes.redeem(resource.resource_id, second.code, source=a_source()))

    assert requests <= REDEEM_CEILING, counter.requests


def test_a_wrong_guess_costs_no_more_storage_requests_than_a_redemption(counted):
    svc, counter = counted
    resource = add_resource(svc, add_user(svc))
    issued = svc.codes.issue(resource.owner_id, resource.resource_id)
    wrong = f"{(int(issued.code) + 1) % 1_000_000:06d}"

    def guess() -> None:
        with pytest.raises(CodeRejected):
            svc.codes.redeem(resource.resource_id, wrong, source=a_source())

    guess()  # the resource's attempts row and the hour's audit blob exist
    requests = counter.count(guess)

    assert requests <= REDEEM_CEILING, counter.requests


def test_an_issuance_makes_no_more_storage_requests_than_counted(counted):
    svc, counter = counted
    resource = add_resource(svc, add_user(svc))
    token, _ = svc.sessions.create(resource.owner_id, "user")

    def issue() -> None:
        session = svc.sessions.authenticate(token)
        svc.codes.issue(session.user_id, resource.resource_id, source=a_source())

    issue()  # the hour's audit blob exists on a busy instance: not counted here
    requests = counter.count(issue)

    assert requests <= ISSUE_CEILING, "\n".join(counter.requests)


@pytest.mark.parametrize("device", ["new", "known"])
def test_a_sign_in_makes_no_more_storage_requests_than_counted(counted, device):
    svc, counter = counted
    address = f"calls.{secrets.token_hex(6)}@example.com"
    svc.accounts.register(address, PASSWORD)
    svc.users.update(svc.accounts.find_user(address), status="active", activated_at=svc.clock.now())
    token = svc.accounts.login(address, PASSWORD, client_ip=a_source()).device_token if device == "known" else None

    requests = counter.count(lambda: svc.accounts.login(address, PASSWORD, client_ip=a_source(), device_token=token))

    assert requests <= LOGIN_CEILINGS[device], "\n".join(counter.requests)
