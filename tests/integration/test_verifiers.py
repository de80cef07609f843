"""Offline verifiers in the service (Azurite, a clock of the test's choosing): who may
enrol and sync, what a slot hands out, what a key rotation and a link rotation do to a
verifier, how an upload is recorded once, and what cleanup removes.

The verifier's side is the verifier package's own `check` on a state in memory, with the
time given, as the program would run it."""

from __future__ import annotations

import base64
import secrets

import pytest
from pydantic import SecretStr

from shared import errors
from shared.services import Services
from verifier.check import Reason, check
from verifier.scheme import Scheme
from verifier.state import State

from .codes_support import add_resource, add_user, all_audit_text, fresh_cursor  # noqa: F401 - a fixture

SOURCE = "203.0.113.7"


def enrolled(svc: Services, **options) -> tuple[str, str, dict]:
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    return owner, resource.resource_id, svc.verifiers.enrol(owner, resource.resource_id, **options)


def device(svc: Services, enrolment: dict) -> State:
    """The verifier's state as `enroll` leaves it, at the service's time."""
    state = State(service_url="http://service", verifier_id=enrolment["verifierId"], secret=enrolment["secret"])
    answer = svc.verifiers.sync(enrolment["verifierId"], (enrolment["verifierId"], enrolment["secret"]), [])
    state.scheme, state.lease_until = answer["scheme"], svc.clock.now().timestamp() + answer["leaseSeconds"]
    return state


def test_only_the_owner_enrols_lists_revokes_and_issues_and_others_learn_nothing(svc):
    owner, resource_id, enrolment = enrolled(svc)
    stranger = add_user(svc)
    for attempt in (
        lambda: svc.verifiers.enrol(stranger, resource_id),
        lambda: svc.verifiers.list(stranger, resource_id),
        lambda: svc.verifiers.revoke(stranger, resource_id, enrolment["verifierId"]),
        lambda: svc.verifiers.issue(stranger, resource_id, source=SOURCE),
    ):
        with pytest.raises(errors.NotFound):
            attempt()
    own_other = add_resource(svc, stranger, name="theirs.txt")
    with pytest.raises(errors.NotFound):  # the verifier of one resource named with another
        svc.verifiers.revoke(stranger, own_other.resource_id, enrolment["verifierId"])
    [listed] = svc.verifiers.list(owner, resource_id)
    assert listed["verifierId"] == enrolment["verifierId"] and "secret" not in listed
    assert enrolment["secret"] not in all_audit_text(svc)


def test_a_sync_needs_the_verifiers_own_id_and_secret_and_a_revoked_verifier_is_refused(svc):
    owner, resource_id, enrolment = enrolled(svc)
    _, _, other = enrolled(svc)
    verifier_id, secret = enrolment["verifierId"], enrolment["secret"]
    for credentials in ((verifier_id, other["secret"]), (other["verifierId"], other["secret"]), (verifier_id, "")):
        with pytest.raises(errors.Unauthenticated):
            svc.verifiers.sync(verifier_id, credentials, [])
    with pytest.raises(errors.Unauthenticated):
        svc.verifiers.sync("unknownverifier0", ("unknownverifier0", secret), [])
    svc.verifiers.revoke(owner, resource_id, verifier_id)
    with pytest.raises(errors.Forbidden):
        svc.verifiers.sync(verifier_id, (verifier_id, secret), [])
    with pytest.raises(errors.InvalidInput):  # no active verifier left to issue for
        svc.verifiers.issue(owner, resource_id, source=SOURCE)


def test_a_slot_hands_out_its_codes_once_each_then_says_when_the_next_slot_starts(svc, clock):
    owner, resource_id, _ = enrolled(svc, codes_per_slot=2)
    slot_seconds = Scheme(600).slot_seconds
    clock.advance(seconds=slot_seconds - clock.now().timestamp() % slot_seconds + 10)  # 10 s into a slot
    issued = [svc.verifiers.issue(owner, resource_id, source=SOURCE) for _ in range(2)]
    assert len({code["code"] for code in issued}) == 2
    with pytest.raises(errors.TooManyRequests) as busy:
        svc.verifiers.issue(owner, resource_id, source=SOURCE)
    assert busy.value.retry_after_seconds == slot_seconds - 10
    clock.advance(seconds=slot_seconds)
    assert svc.verifiers.issue(owner, resource_id, source=SOURCE)["code"]
    with pytest.raises(errors.InvalidInput):
        svc.verifiers.issue(owner, resource_id, ttl_seconds=1800, source=SOURCE)


def test_an_upload_is_recorded_once_marks_codes_redeemed_and_brings_revocations_back(svc, clock):
    owner, resource_id, enrolment = enrolled(svc)
    state = device(svc, enrolment)
    used = svc.verifiers.issue(owner, resource_id, source=SOURCE)
    assert check(state, used["code"], clock.now().timestamp()).accepted
    assert check(state, used["code"], clock.now().timestamp()).reason == Reason.USED
    clock.advance(seconds=Scheme(600).slot_seconds)
    revoked = svc.verifiers.issue(owner, resource_id, source=SOURCE)
    assert svc.verifiers.revoke_code(owner, revoked["codeId"])["state"] == "revoked"

    entries = [{**entry, "checkedAt": clock.now()} for entry in state.log]
    first = svc.verifiers.sync(enrolment["verifierId"], (enrolment["verifierId"], enrolment["secret"]), entries)
    again = svc.verifiers.sync(enrolment["verifierId"], (enrolment["verifierId"], enrolment["secret"]), entries)
    assert first["recorded"] == again["recorded"] == [entry["entryId"] for entry in entries]
    audit = all_audit_text(svc)
    assert all(audit.count(entry["entryId"]) == 1 for entry in entries)
    assert used["code"] not in audit and revoked["code"] not in audit

    states = {code["codeId"]: code["state"] for code in svc.verifiers.codes(owner)}
    assert (states[used["codeId"]], states[revoked["codeId"]]) == ("redeemed", "revoked")
    state.log = []
    for code in first["revoked"]:
        state.revoked[f"{code['slot']}:{code['index']}"] = code["forgetAfter"]
    assert check(state, revoked["code"], clock.now().timestamp()).reason == Reason.REVOKED
    with pytest.raises(errors.Conflict):  # redeemed at the keypad: no longer revocable
        svc.verifiers.revoke_code(owner, used["codeId"])


def test_a_link_rotation_keeps_the_verifier_and_its_codes(svc):
    owner, resource_id, enrolment = enrolled(svc)
    state = device(svc, enrolment)
    rotated = svc.codes.rotate_link(owner, resource_id)
    [listed] = svc.verifiers.list(owner, rotated.resource_id)
    assert listed["verifierId"] == enrolment["verifierId"]
    code = svc.verifiers.issue(owner, rotated.resource_id, source=SOURCE)
    assert code["resourceId"] == rotated.resource_id
    assert check(state, code["code"], svc.clock.now().timestamp()).accepted


def test_when_the_enrolment_key_leaves_the_key_ring_the_verifier_must_be_enrolled_again(make_services, settings):
    before = make_services()
    owner, resource_id, enrolment = enrolled(before)
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    after = make_services(hmac_keys=SecretStr(f"n1:{new_key}"), hmac_active_key_id="n1")
    verifier_id = enrolment["verifierId"]
    with pytest.raises(errors.Unauthenticated):
        after.verifiers.sync(verifier_id, (verifier_id, enrolment["secret"]), [])
    with pytest.raises(errors.Conflict):
        after.verifiers.issue(owner, resource_id, verifier_id=verifier_id, source=SOURCE)
    again = after.verifiers.enrol(owner, resource_id)
    assert again["secret"] != enrolment["secret"]
    assert after.verifiers.issue(owner, resource_id, verifier_id=again["verifierId"], source=SOURCE)["code"]


@pytest.mark.usefixtures("fresh_cursor")
def test_cleanup_removes_offline_codes_once_no_verifier_can_still_report_them(svc, clock):
    owner, resource_id, _ = enrolled(svc, lease_hours=1)
    code = svc.verifiers.issue(owner, resource_id, source=SOURCE)
    clock.advance(minutes=30)
    svc.cleanup.run()
    assert [c["codeId"] for c in svc.verifiers.codes(owner)] == [code["codeId"]]
    clock.advance(hours=2)
    svc.cleanup.run()
    assert svc.verifiers.codes(owner) == []
    assert svc.verifiers.list(owner, resource_id)  # the enrolment stays
