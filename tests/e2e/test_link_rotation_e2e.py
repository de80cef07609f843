"""Rotating a leaked guest link over HTTP through the local host: the envelope and the
statuses of POST /api/resources/{resourceId}/link, and what the old and new ids do after."""

from __future__ import annotations

import pytest

from .test_codes_e2e import signed_in

pytestmark = pytest.mark.e2e


def test_the_owner_rotates_a_guest_link_and_only_the_new_one_works(host):
    client, auth = host.client, signed_in(host)
    upload = client.put("/api/resources/leaked.txt", content=b"leaked", headers={**auth, "content-type": "text/plain"})
    old = upload.json()["data"]["resourceId"]
    code = client.post("/api/codes", json={"resourceId": old}, headers=auth).json()["data"]

    rotated = client.post(f"/api/resources/{old}/link", headers=auth)

    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert set(body) == {"requestObject", "message", "data"}
    new = body["data"]["resourceId"]
    assert new != old and body["data"] == {"resourceId": new, "redeemUrl": f"/r/{new}"}
    stale = client.post("/api/codes/redeem", json={"resourceId": old, "code": code["code"]})
    assert (stale.status_code, stale.json()["error"]) == (400, "invalid_code")
    states = {c["codeId"]: c["state"] for c in client.get("/api/codes", headers=auth).json()["data"]["codes"]}
    assert states[code["codeId"]] == "revoked"
    [listed] = client.get("/api/resources", headers=auth).json()["data"]["resources"]
    assert (listed["resourceId"], listed["name"]) == (new, "leaked.txt")
    # the guess at the old id counts against the old id: the new link starts afresh
    assert listed["redemption"] == {"failedAttempts": 0, "paused": False, "pausedUntil": None}
    fresh = client.post("/api/codes", json={"resourceId": new}, headers=auth).json()["data"]
    assert fresh["redeemUrl"] == f"/r/{new}"
    redeemed = client.post("/api/codes/redeem", json={"resourceId": new, "code": fresh["code"]})
    assert redeemed.status_code == 200, redeemed.text
    unknown_page = client.get(f"/r/{'A' * 22}")
    old_page = client.get(f"/r/{old}")
    assert old_page.status_code == unknown_page.status_code == 404
    assert old_page.text == unknown_page.text


def test_a_stranger_an_unknown_id_a_rotated_id_and_no_session_are_refused(host):
    client, owner, stranger = host.client, signed_in(host), signed_in(host)
    upload = client.put("/api/resources/mine.txt", content=b"mine", headers={**owner, "content-type": "text/plain"})
    resource_id = upload.json()["data"]["resourceId"]

    foreign = client.post(f"/api/resources/{resource_id}/link", headers=stranger)
    unknown = client.post(f"/api/resources/{'A' * 22}/link", headers=owner)
    anonymous = client.post(f"/api/resources/{resource_id}/link")
    for refused in (foreign, unknown):
        assert refused.status_code == 404, refused.text
        assert set(refused.json()) == {"requestObject", "message", "error"}
        assert refused.json()["error"] == "resource_not_found"
    assert foreign.json()["message"] == unknown.json()["message"]
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthenticated"

    assert client.post(f"/api/resources/{resource_id}/link", headers=owner).status_code == 200
    again = client.post(f"/api/resources/{resource_id}/link", headers=owner)
    assert (again.status_code, again.json()["error"]) == (404, "resource_not_found")
