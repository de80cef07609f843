"""A code's life over HTTP through the local host: log in, upload a file, issue a code; a
guest redeems it with the resource id and downloads the same bytes; a second guest with
the same code gets the generic failure; the right code with another resource's id fails."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from .test_accounts_e2e import PASSWORD, basic, bearer, wait_for_mail

pytestmark = pytest.mark.e2e


def signed_in(host) -> dict[str, str]:
    address = f"codes.{secrets.token_hex(4)}@example.com"
    assert host.client.post("/api/users", json={"email": address, "password": PASSWORD}).status_code == 202
    code = re.search(r"code is (\d+)\.", wait_for_mail(host, address, "activation")["text"]).group(1)
    activated = host.client.post("/api/users/activation", json={"code": code}, headers=basic(address, PASSWORD))
    assert activated.status_code == 200, activated.text
    login = host.client.post("/api/sessions", json={"email": address, "password": PASSWORD})
    assert login.status_code == 201, login.text
    return bearer(login.json()["data"]["token"])


def test_a_guest_redeems_a_code_once_and_downloads_the_uploaded_bytes(host):
    client, auth = host.client, signed_in(host)
    content = secrets.token_bytes(2048)
    upload = client.put(
        "/api/resources/quarterly report.pdf", content=content, headers={**auth, "content-type": "application/pdf"}
    )
    assert upload.status_code == 201, upload.text
    resource = upload.json()["data"]
    assert (resource["name"], resource["size"], resource["contentType"]) == (
        "quarterly report.pdf",
        2048,
        "application/pdf",
    )
    other = client.put("/api/resources/other.txt", content=b"other", headers={**auth, "content-type": "text/plain"})
    listing = client.get("/api/resources", headers=auth).json()["data"]["resources"]
    assert {r["resourceId"] for r in listing} == {resource["resourceId"], other.json()["data"]["resourceId"]}

    issued = client.post("/api/codes", json={"resourceId": resource["resourceId"]}, headers=auth)
    assert issued.status_code == 201, issued.text
    code = issued.json()["data"]
    assert re.fullmatch(r"\d{6}", code["code"]) and code["display"] == f"{code['code'][:3]} {code['code'][3:]}"
    assert code["redeemUrl"] == f"/r/{resource['resourceId']}"

    wrong_resource = client.post(
        "/api/codes/redeem", json={"resourceId": other.json()["data"]["resourceId"], "code": code["code"]}
    )
    guest = client.post("/api/codes/redeem", json={"resourceId": resource["resourceId"], "code": code["display"]})
    assert guest.status_code == 200, guest.text
    assert guest.json()["requestObject"]["code"] == "***"
    download = httpx.get(guest.json()["data"]["downloadUrl"])
    assert download.status_code == 200 and download.content == content
    assert download.headers["content-type"] == "application/pdf"

    second = client.post("/api/codes/redeem", json={"resourceId": resource["resourceId"], "code": code["code"]})
    for failure in (wrong_resource, second):
        assert failure.status_code == 400
        assert failure.json()["error"] == "invalid_code"
        assert failure.json()["message"] == second.json()["message"]
        assert code["code"] not in failure.text

    states = {c["codeId"]: c["state"] for c in client.get("/api/codes", headers=auth).json()["data"]["codes"]}
    assert states[code["codeId"]] == "redeemed"
    assert code["code"] not in client.get("/api/codes", headers=auth).text


def test_an_issuer_revokes_a_code_and_the_guest_then_gets_the_generic_failure(host):
    client, auth = host.client, signed_in(host)
    resource = client.put("/api/resources/a.txt", content=b"a", headers={**auth, "content-type": "text/plain"})
    resource_id = resource.json()["data"]["resourceId"]
    code = client.post("/api/codes", json={"resourceId": resource_id, "ttlSeconds": 60}, headers=auth).json()["data"]
    revoked = client.delete(f"/api/codes/{code['codeId']}", headers=auth)
    assert revoked.status_code == 200 and revoked.json()["data"]["state"] == "revoked"
    guest = client.post("/api/codes/redeem", json={"resourceId": resource_id, "code": code["code"]})
    assert guest.status_code == 400 and guest.json()["error"] == "invalid_code"


def test_bad_requests_to_the_codes_api_get_a_clear_4xx(host):
    client, auth = host.client, signed_in(host)
    assert client.post("/api/codes", json={"resourceId": "x" * 22, "extra": 1}, headers=auth).status_code == 400
    assert client.post("/api/codes", json={"resourceId": "x" * 22, "ttlSeconds": 59}, headers=auth).status_code == 400
    assert client.post("/api/codes", json={"resourceId": "x" * 22}, headers=auth).status_code == 404
    assert client.post("/api/codes", json={"resourceId": "x" * 22}).status_code == 401
    assert client.put("/api/resources/a%2Fb", content=b"a", headers=auth).status_code in (400, 404)
