"""An offline verifier against the real service: the owner enrols it through the local
host, the verifier program (`python -m verifier`, its own process) enrols, then loses
the network; codes issued meanwhile are checked offline, once; guessing makes it wait;
past the lease it refuses everything; a sync uploads its log to the audit exactly once
and brings a revocation.

The verifier's clock is moved with libfaketime (Debian's `faketime`, installed by the
Makefile), as a device whose clock runs ahead would be: nothing in the program is
replaced. Offline means the process reaches nothing: its HTTP goes to a closed port.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from shared.services import Services
from verifier.scheme import FREE_TRIES, Scheme

from .test_codes_e2e import signed_in

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# a proxy nobody listens on: every request of the process fails as without a network
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
FAKETIME = shutil.which("faketime")
CODES_PER_SLOT = 8


def verifier(state: Path, *args: str, secret: str | None = None, env: dict | None = None, ahead: str | None = None):
    """Run the verifier program; `ahead` ("+15m", "+25h") runs it with its clock that far ahead."""
    command = [sys.executable, "-m", "verifier", "--state", str(state), *args]
    if ahead:
        assert FAKETIME, "faketime is missing: make test installs it"
        command = [FAKETIME, "-f", ahead, *command]
    environment = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "no_proxy")}
    environment |= env or {}
    if secret:
        environment["VERIFIER_SECRET"] = secret
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def offline_redemptions(settings, verifier_id: str) -> list:
    svc = Services(settings)
    now = svc.clock.now()
    events = svc.audit.read(now - timedelta(hours=1), now + timedelta(hours=1), types={"redeem"})
    return [e for e in events if e.details.get("offline") and e.details.get("verifierId") == verifier_id]


def test_a_verifier_checks_codes_offline_once_waits_for_guessers_stops_at_its_lease_and_syncs_once(
    host, settings, tmp_path
):
    client, auth = host.client, signed_in(host)
    upload = client.put("/api/resources/front door", content=b"door", headers={**auth, "content-type": "text/plain"})
    resource_id = upload.json()["data"]["resourceId"]
    # several codes a minute for this test (one by default): the enrolment states the odds that gives
    wanted = {"label": "front door", "codesPerSlot": CODES_PER_SLOT}
    enrolment = client.post(f"/api/resources/{resource_id}/verifiers", json=wanted, headers=auth)
    assert enrolment.status_code == 201, enrolment.text
    enrolled = enrolment.json()["data"]
    assert enrolled["chanceWithinLifetime"] == Scheme(600, CODES_PER_SLOT).chance_within_lifetime()
    assert (enrolled["leaseHours"], enrolled["codeLifetimeSeconds"]) == (24, 600)
    verifier_id, secret = enrolled["verifierId"], enrolled["secret"]
    assert secret not in json.dumps(client.get(f"/api/resources/{resource_id}/verifiers", headers=auth).json())

    state = tmp_path / "verifier-state.json"
    status, said = verifier(state, "enroll", "--service", host.url, "--verifier-id", verifier_id, secret=secret)
    assert (status, said["enrolled"]) == (0, True), said
    assert state.stat().st_mode & 0o077 == 0  # it holds the secret: its owner's only

    # offline from here on: a sync cannot reach the service
    status, said = verifier(state, "sync", env=OFFLINE)
    assert (status, said["synced"]) == (3, False), said

    def issue() -> dict:
        issued = client.post("/api/codes", json={"resourceId": resource_id, "offline": True}, headers=auth)
        assert issued.status_code == 201, issued.text
        return issued.json()["data"]

    first = issue()
    assert first["offline"] and first["redeemUrl"] is None and first["verifierId"] == verifier_id
    assert verifier(state, "check", first["display"], env=OFFLINE) == (
        0, {"accepted": True, "reason": "accepted", "message": "The code is accepted.", "waitSeconds": 0}
    )  # fmt: skip
    status, said = verifier(state, "check", first["code"], env=OFFLINE)
    assert (status, said["reason"], said["message"]) == (1, "used", "The code is not valid.")

    # guessing: after FREE_TRIES failures the verifier waits, even for a right code
    wrong = "000000" if first["code"] != "000000" else "111111"
    for _ in range(FREE_TRIES - 1):
        assert verifier(state, "check", wrong, env=OFFLINE)[1]["reason"] == "unknown"
    second = issue()
    status, said = verifier(state, "check", second["code"], env=OFFLINE)
    assert (status, said["reason"]) == (2, "wait") and 0 < said["waitSeconds"] <= 60
    status, said = verifier(state, "check", second["code"], env=OFFLINE, ahead="+2m")
    assert (status, said["accepted"]) == (0, True), said

    # the owner revokes a code the verifier has not seen; back online, a sync uploads the log
    fourth = issue()
    assert client.delete(f"/api/codes/{fourth['codeId']}", headers=auth).json()["data"]["state"] == "revoked"
    assert offline_redemptions(settings, verifier_id) == []
    status, said = verifier(state, "sync")
    assert (status, said["synced"], said["unsent"], said["revoked"]) == (0, True, 0, 1), said
    recorded = offline_redemptions(settings, verifier_id)
    assert sorted((e.outcome, e.reason) for e in recorded) == [
        ("fail", "unknown"), ("fail", "unknown"), ("fail", "used"), ("ok", None), ("ok", None),
    ]  # fmt: skip
    assert {e.code_id for e in recorded if e.outcome == "ok"} == {first["codeId"], second["codeId"]}
    assert all(first["code"] not in e.model_dump_json() for e in recorded)
    assert verifier(state, "sync")[0] == 0
    assert len(offline_redemptions(settings, verifier_id)) == len(recorded)
    states = {c["codeId"]: c["state"] for c in client.get("/api/codes", headers=auth).json()["data"]["codes"]}
    assert (states[first["codeId"]], states[second["codeId"]], states[fourth["codeId"]]) == (
        "redeemed", "redeemed", "revoked",
    )  # fmt: skip

    # offline again: the revoked code is refused (past the wait the guesses left)
    status, said = verifier(state, "check", fourth["code"], env=OFFLINE, ahead="+2m")
    assert (status, said["reason"]) == (1, "revoked"), said
    status, said = verifier(state, "check", issue()["code"], env=OFFLINE, ahead="+15m")
    assert (status, said["reason"]) == (1, "expired"), said
    status, said = verifier(state, "check", issue()["code"], env=OFFLINE, ahead="+25h")
    assert (status, said["reason"]) == (2, "lease_expired") and "sync" in said["message"]

    # a revoked verifier is refused at its next sync, and then refuses every code
    revoked = client.delete(f"/api/resources/{resource_id}/verifiers/{verifier_id}", headers=auth)
    assert revoked.json()["data"]["state"] == "revoked"
    assert verifier(state, "sync")[0] == 3
    refused = client.post("/api/codes", json={"resourceId": resource_id, "offline": True}, headers=auth)
    assert (refused.status_code, refused.json()["error"]) == (400, "verifier_required")
    status, said = verifier(state, "check", "123456", env=OFFLINE)
    assert (status, said["reason"]) == (2, "not_enrolled")


def test_bad_enrolments_syncs_and_offline_issues_get_a_clear_4xx_and_change_nothing(host):
    client, auth = host.client, signed_in(host)
    upload = client.put("/api/resources/kiosk", content=b"kiosk", headers={**auth, "content-type": "text/plain"})
    resource_id = upload.json()["data"]["resourceId"]
    verifiers = f"/api/resources/{resource_id}/verifiers"
    for body, field in (({"codesPerSlot": 11}, "codesPerSlot"), ({"leaseHours": 0}, "leaseHours")):
        refused = client.post(verifiers, json=body, headers=auth)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_input")
        assert refused.json()["details"][0]["field"] == field
    assert client.get(verifiers, headers=auth).json()["data"]["verifiers"] == []
    assert client.post(verifiers, json={}).status_code == 401

    enrolled = client.post(verifiers, json={}, headers=auth).json()["data"]
    verifier_id, secret = enrolled["verifierId"], enrolled["secret"]
    sync = f"/api/verifiers/{verifier_id}/sync"
    for credentials in ((verifier_id, "A" * len(secret)), ("someoneelse00000", secret)):
        refused = client.post(sync, json={"entries": []}, auth=credentials)
        assert (refused.status_code, refused.json()["error"]) == (401, "verifier_unknown")
        assert secret not in refused.text
    junk = {"entryId": "x", "checkedAt": "yesterday", "outcome": "maybe", "reason": "ok"}
    accepted_without_a_code = {"entryId": "a" * 32, "checkedAt": "2026-12-02T10:00:00Z", "outcome": "ok",
                               "reason": "accepted"}  # fmt: skip
    for entry in (junk, accepted_without_a_code):
        refused = client.post(sync, json={"entries": [entry]}, auth=(verifier_id, secret))
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_input")
        assert refused.json()["requestObject"] is not None and secret not in refused.text

    wrong_ttl = client.post(
        "/api/codes", json={"resourceId": resource_id, "offline": True, "ttlSeconds": 60}, headers=auth
    )
    assert (wrong_ttl.status_code, wrong_ttl.json()["error"]) == (400, "offline_ttl_fixed")
    assert client.get("/api/codes", headers=auth).json()["data"]["codes"] == []
