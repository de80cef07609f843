"""Access codes against Azurite: issue, redeem exactly once, revoke, expire, list."""

from __future__ import annotations

import re
import secrets
import socket
from datetime import timedelta

import httpx
import pytest
from azure.core.exceptions import ServiceRequestError
from pydantic import SecretStr

from bench import races
from functions.http import storage_failure
from shared import errors
from shared.codes.models import CodeRejected, RejectReason

from .codes_support import add_resource, add_user, codes_service, services_at_real_time

GUEST = "ip:guest"


@pytest.fixture
def issuer(svc) -> str:
    return add_user(svc)


@pytest.fixture
def resource(svc, issuer):
    return add_resource(svc, issuer)


def reasons_for(svc, code_id: str) -> list[str | None]:
    start = svc.clock.now() - timedelta(hours=2)
    events = svc.audit.read(start, svc.clock.now() + timedelta(hours=2), types={"redeem"})
    return [event.reason for event in events if event.code_id == code_id]


def rejection(svc, resource_id: str, code: str) -> RejectReason:
    with pytest.raises(CodeRejected) as caught:
        svc.codes.redeem(resource_id, code, source=GUEST)
    assert caught.value.code == "invalid_code" and caught.value.message == CodeRejected.message
    return caught.value.reason


def test_an_issued_code_redeems_once_and_gives_a_link_to_the_same_bytes(settings):
    svc = services_at_real_time(settings)
    owner = add_user(svc)
    resource = add_resource(svc, owner, data=b"the file's bytes", name="report.txt")
    issued = svc.codes.issue(owner, resource.resource_id)
    redemption = svc.codes.redeem(resource.resource_id, issued.display, source=GUEST)
    download = httpx.get(redemption.download_url)
    assert download.status_code == 200 and download.content == b"the file's bytes"
    assert download.headers["content-type"] == "text/plain"
    assert 'filename="report.txt"' in download.headers["content-disposition"]
    assert rejection(svc, resource.resource_id, issued.code) is RejectReason.USED


def test_a_second_redeem_fails_with_the_generic_answer_and_the_audit_says_used(svc, resource):
    issued = svc.codes.issue(resource.owner_id, resource.resource_id)
    svc.codes.redeem(resource.resource_id, issued.code, source=GUEST)
    assert rejection(svc, resource.resource_id, issued.code) is RejectReason.USED
    assert reasons_for(svc, issued.code_id) == [None, "used"]


def test_a_revoked_code_fails(svc, resource):
    issued = svc.codes.issue(resource.owner_id, resource.resource_id)
    view = svc.codes.revoke(resource.owner_id, issued.code_id)
    assert view["state"] == "revoked"
    assert rejection(svc, resource.resource_id, issued.code) is RejectReason.REVOKED


def test_an_expired_code_fails(svc, clock, resource):
    issued = svc.codes.issue(resource.owner_id, resource.resource_id, timedelta(seconds=60))
    clock.advance(seconds=59)
    svc.codes.redeem(resource.resource_id, issued.code, source=GUEST)  # still good a second before
    second = svc.codes.issue(resource.owner_id, resource.resource_id, timedelta(seconds=60))
    clock.advance(seconds=60)
    assert rejection(svc, resource.resource_id, second.code) is RejectReason.EXPIRED


def test_the_right_code_with_another_resources_id_fails_and_stays_usable(svc, resource):
    other = add_resource(svc, resource.owner_id, name="other.txt")
    issued = svc.codes.issue(resource.owner_id, resource.resource_id)
    assert rejection(svc, other.resource_id, issued.code) is RejectReason.UNKNOWN
    svc.codes.redeem(resource.resource_id, issued.code, source=GUEST)


def test_an_unknown_or_malformed_code_gets_the_same_answer(svc, resource):
    issued = svc.codes.issue(resource.owner_id, resource.resource_id)
    wrong = f"{(int(issued.code) + 1) % 1_000_000:06d}"
    assert rejection(svc, resource.resource_id, wrong) is RejectReason.UNKNOWN
    assert rejection(svc, resource.resource_id, "12345") is RejectReason.MALFORMED
    assert rejection(svc, "not-a-resource-id", issued.code) is RejectReason.UNKNOWN


def test_a_code_of_an_issuer_who_is_no_longer_active_fails(make_services):
    svc = make_services(issuer_status_cache_seconds=0)
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    issued = svc.codes.issue(owner, resource.resource_id)
    user = svc.users.by_id(owner)
    svc.users.update(user, status="locked")
    assert rejection(svc, resource.resource_id, issued.code) is RejectReason.ISSUER_INACTIVE


def test_a_code_is_issued_only_for_a_resource_of_the_caller(svc, resource):
    stranger = add_user(svc)
    with pytest.raises(errors.NotFound):
        svc.codes.issue(stranger, resource.resource_id)
    with pytest.raises(errors.NotFound):
        svc.codes.issue(resource.owner_id, "A" * 22)


def test_the_listing_shows_each_codes_state_and_never_its_value(svc, clock, resource):
    owner = resource.owner_id
    redeemed = svc.codes.issue(owner, resource.resource_id)
    revoked = svc.codes.issue(owner, resource.resource_id)
    expiring = svc.codes.issue(owner, resource.resource_id, timedelta(seconds=60))
    active = svc.codes.issue(owner, resource.resource_id, timedelta(seconds=3600))
    svc.codes.redeem(resource.resource_id, redeemed.code, source=GUEST)
    svc.codes.revoke(owner, revoked.code_id)
    clock.advance(seconds=61)
    states = {view["codeId"]: view["state"] for view in svc.codes.list(owner)}
    assert states == {
        redeemed.code_id: "redeemed",
        revoked.code_id: "revoked",
        expiring.code_id: "expired",
        active.code_id: "active",
    }
    listing = str(svc.codes.list(owner))
    assert not any(issued.code in listing for issued in (redeemed, revoked, expiring, active))


def test_revoking_twice_is_harmless_and_a_redeemed_or_foreign_code_cannot_be_revoked(svc, resource):
    owner = resource.owner_id
    issued = svc.codes.issue(owner, resource.resource_id)
    svc.codes.revoke(owner, issued.code_id)
    assert svc.codes.revoke(owner, issued.code_id)["state"] == "revoked"
    used = svc.codes.issue(owner, resource.resource_id)
    svc.codes.redeem(resource.resource_id, used.code, source=GUEST)
    with pytest.raises(errors.Conflict):
        svc.codes.revoke(owner, used.code_id)
    live = svc.codes.issue(owner, resource.resource_id)
    with pytest.raises(errors.NotFound):
        svc.codes.revoke(add_user(svc), live.code_id)


def test_fifty_concurrent_redeems_of_one_code_give_exactly_one_success(svc):
    """Over 10 codes; `make bench` races 200 (bench/races.py)."""
    raced = races.run(svc, 10, racers=50)
    assert raced["codes_won_more_than_once"] == raced["codes_won_by_none"] == 0
    assert raced["refusals"] == {"used": 10 * 49}


def test_codes_stay_unique_among_active_codes_when_the_code_space_is_nearly_full(svc):
    """With 100 possible codes, keeping 60 active forces many collisions: every issued code is
    still distinct, and dead codes' rows are taken over. (At 100,000 active codes out of the
    real 1,000,000: bench/code_uniqueness.py.)"""
    space = [f"{n:06d}" for n in range(400_000, 400_100)]
    codes, _ = codes_service(svc, generate=lambda: secrets.choice(space))
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    first = [codes.issue(owner, resource.resource_id, timedelta(hours=1)) for _ in range(60)]
    assert len({issued.code for issued in first}) == 60
    for issued in first[:30]:
        codes.redeem(resource.resource_id, issued.code, source=GUEST)
    more = [codes.issue(owner, resource.resource_id, timedelta(hours=1)) for _ in range(30)]
    active = [issued.code for issued in first[30:] + more]
    assert len(set(active)) == len(active) == 60
    assert sum(issued.attempts - 1 for issued in first + more) > 10  # collisions did happen (about 55 expected)
    assert {issued.code for issued in more} & {issued.code for issued in first[:30]}  # dead rows taken over
    for issued in more:  # and every new code works
        codes.redeem(resource.resource_id, issued.code, source=GUEST)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_redemption_whose_audit_line_cannot_be_written_is_undone_and_can_be_retried(svc, make_services):
    resource = add_resource(svc, add_user(svc))
    issued = svc.codes.issue(resource.owner_id, resource.resource_id)
    # the same tables and keys, but the blob service (where the audit goes) is down
    connection = svc.settings.storage_connection_string.get_secret_value()
    blobs_down = re.sub(r"BlobEndpoint=http://[^/;]+", f"BlobEndpoint=http://127.0.0.1:{unused_port()}", connection)
    outage = make_services(storage_connection_string=SecretStr(blobs_down))
    with pytest.raises(ServiceRequestError) as failed:
        outage.codes.redeem(resource.resource_id, issued.code, source="ip:guest")
    assert storage_failure(failed.value)  # the guest is told 503, try again
    assert svc.codes.redeem(resource.resource_id, issued.code, source="ip:guest").resource_id == resource.resource_id
