"""The HTTP edge against junk input, through the local host: deeply nested JSON, request
ids, oversized uploads, values that can never be table keys, cookies and return URLs,
the environment's defaults (HSTS, the dev mailbox) and what a guest learns about the
sharer."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from shared.services import Services
from tests.browser.support import Account, add_account

pytestmark = pytest.mark.e2e

TEN_MB = 10 * 1024 * 1024
# What Table Storage refuses in keys: the four separators and the control characters
NOT_IN_KEYS = ["#", "/", "\\", "?", *map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0))]
SAMPLE_NOT_IN_KEYS = ["#", "/", "\\", "?", "\x00", "\n", "\x1f", "\x7f", "\x80", "\x9f"]
REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@pytest.fixture(scope="module")
def svc(settings) -> Services:
    """Services on the host's storage and keys, on the real clock."""
    return Services(settings)


@pytest.fixture(scope="module")
def owner(svc) -> Account:
    return add_account(svc, "user", name="owner")


@pytest.fixture(scope="module")
def admin(svc) -> Account:
    return add_account(svc, "admin", name="edge-admin")


def bearer(svc: Services, account: Account, role: str = "user") -> dict[str, str]:
    token, _ = svc.sessions.create(account.user_id, role)
    return {"authorization": f"Bearer {token}"}


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def assert_envelope(response, status: int | tuple[int, ...], error: str | None = None) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:200])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert {"requestObject", "message", "error"} <= body.keys()
    if error is not None:
        assert body["error"] == error
    return body


# --- nesting -------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1000, 10_000])
def test_json_nested_deeper_than_32_levels_is_a_400_invalid_json(host, depth):
    body = b'{"email": ' + nested(depth - 1) + b', "password": "x"}'
    response = host.client.post("/api/sessions", content=body, headers={"content-type": "application/json"})
    assert_envelope(response, 400, "invalid_json")


def test_json_nested_32_levels_deep_is_parsed_and_refused_by_the_model_naming_the_field(host):
    body = b'{"email": ' + nested(31) + b', "password": "x"}'
    response = host.client.post("/api/sessions", content=body, headers={"content-type": "application/json"})
    answer = assert_envelope(response, 400, "invalid_input")
    assert [d["field"] for d in answer["details"]] == ["email"]
    assert answer["requestObject"]["password"] == "***"


def test_brackets_inside_strings_do_not_count_as_nesting(host):
    body = json.dumps({"email": "[" * 5000, "password": "{" * 100}).encode()
    response = host.client.post("/api/sessions", content=body, headers={"content-type": "application/json"})
    assert assert_envelope(response, 400)["error"] != "invalid_json"


# --- request ids -----------------------------------------------------------------------------


def logout_with_request_id(host, svc: Services, account: Account, request_id: str) -> None:
    headers = {**bearer(svc, account), "x-request-id": request_id.encode("latin-1")}
    response = host.client.delete("/api/sessions/current", headers=headers)
    assert response.status_code == 200


def request_ids_of_logouts(host, svc: Services, admin: Account, user_id: str) -> list[str]:
    response = host.client.get(
        "/api/admin/audit", params={"type": "logout", "user": user_id}, headers=bearer(svc, admin, "admin")
    )
    assert response.status_code == 200, response.text
    return [event["request_id"] for event in response.json()["data"]["events"]]


def test_a_well_formed_request_id_reaches_the_audit_as_sent(host, svc, admin):
    account = add_account(svc, "user", name="rid-ok")
    logout_with_request_id(host, svc, account, "trace-0123-ABCD")
    assert request_ids_of_logouts(host, svc, admin, account.user_id) == ["trace-0123-ABCD"]


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param("a" * 65, id="65-chars"),
        pytest.param("a" * 8000, id="8000-chars"),
        "<script>alert(1)</script>",
        "id with spaces",
        "id;drop",
        "ok\tid",
        "ok.id",
        "\u00e9t\u00e9",
    ],
)
def test_a_malformed_or_oversized_request_id_is_replaced_by_a_fresh_one(host, svc, admin, sent):
    account = add_account(svc, "user", name="rid-bad")
    logout_with_request_id(host, svc, account, sent)
    (recorded,) = request_ids_of_logouts(host, svc, admin, account.user_id)
    assert recorded != sent and REQUEST_ID.match(recorded)


# --- body sizes --------------------------------------------------------------------------


def test_an_upload_declared_larger_than_resource_max_bytes_is_413_before_authentication(host):
    response = host.client.put(
        "/api/resources/big.bin", content=b"x" * (TEN_MB + 1), headers={"content-type": "application/octet-stream"}
    )
    answer = assert_envelope(response, 413, "payload_too_large")
    assert str(TEN_MB) in answer["message"]


def test_an_upload_of_resource_max_bytes_is_stored(host, svc, owner):
    response = host.client.put(
        "/api/resources/exact.bin",
        content=b"x" * TEN_MB,
        headers={**bearer(svc, owner), "content-type": "application/octet-stream"},
    )
    assert response.status_code in (200, 201), response.text[:200]
    assert response.json()["data"]["size"] == TEN_MB


def test_a_chunked_json_body_over_the_limit_is_413_in_the_envelope(host):
    def chunks():
        for _ in range(100):
            yield b" " * 1024

    response = host.client.post("/api/sessions", content=chunks(), headers={"content-type": "application/json"})
    assert_envelope(response, 413, "payload_too_large")


# --- values that can never be table keys ---------------------------------------------------


def route_cases(svc: Services, owner: Account, admin: Account):
    user, boss = bearer(svc, owner), bearer(svc, admin, "admin")
    return [
        ("DELETE", "/api/codes/{}", user, None),
        ("POST", "/api/admin/users/{}/lock", boss, None),
        ("POST", "/api/admin/users/{}/unlock", boss, None),
        ("PUT", "/api/admin/users/{}/role", boss, {"json": {"role": "user"}}),
        ("PUT", "/api/resources/{}", user, {"content": b"data"}),
        ("GET", "/r/{}", {}, None),
        ("POST", "/r/{}", {}, {"data": {"code": "123456"}}),
    ]


@pytest.mark.parametrize("char", NOT_IN_KEYS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_route_value_with_a_character_table_keys_refuse_is_404_or_400_never_a_server_error(host, svc, owner, admin,
                                                                                               char):  # fmt: skip
    value = quote(f"x{char}y", safe="")
    for method, template, headers, extra in route_cases(svc, owner, admin):
        response = host.client.request(method, template.format(value), headers=headers, **(extra or {}))
        # 403 only for a guest form post naming no resource (its form token is missing)
        assert response.status_code in (400, 403, 404), (method, template, response.status_code, response.text[:200])
        if not template.startswith("/r/"):
            assert_envelope(response, (400, 404))


def test_an_upload_named_with_a_hash_is_refused_not_stored_under_the_name_before_it(host, svc, owner):
    headers = bearer(svc, owner)
    response = host.client.put("/api/resources/notes%23draft.txt", content=b"data", headers=headers)
    assert_envelope(response, (400, 404))
    names = [r["name"] for r in host.client.get("/api/resources", headers=headers).json()["data"]["resources"]]
    assert "notes" not in names and "notes#draft.txt" not in names


# `#`, `/`, `\` and `?` are legal in a query value that is no key (an address, a filter)
@pytest.mark.parametrize("char", SAMPLE_NOT_IN_KEYS[4:], ids=lambda c: f"U+{ord(c):04X}")
def test_a_query_value_with_a_control_character_is_a_400(host, svc, admin, char):
    response = host.client.get(
        f"/api/admin/audit?user={quote('u' + char, safe='')}", headers=bearer(svc, admin, "admin")
    )
    assert_envelope(response, 400, "invalid_query")


def console_cookie(host, svc: Services, account: Account, role: str) -> dict[str, str]:
    token, _ = svc.sessions.create(account.user_id, role)
    return {"cookie": f"console_session={token}"}


@pytest.mark.parametrize("looked_up", ["a/b", "a#b", "a?b", "a\\b", "a\x00b", "x" * 300])
def test_the_console_finds_no_account_for_a_value_that_is_no_key_instead_of_failing(host, svc, admin, looked_up):
    response = host.client.get(
        f"/admin/users?q={quote(looked_up, safe='')}", headers=console_cookie(host, svc, admin, "admin")
    )
    assert response.status_code == 404, response.text[:300]
    assert "No account matches." in response.text


# --- return URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "landed"),
    [
        ("/admin/../evil", "/admin"),
        ("/admin/%2e%2e/evil", "/admin"),
        ("/admin/%2E%2E/%2e%2e/evil", "/admin"),
        ("/admin/.%2e/x", "/admin"),
        ("/admin/x/../../evil", "/admin"),
        ("/admin/x%2f..%2f..%2fevil", "/admin"),
        ("/admin/audit/../users?q=a", "/admin/users?q=a"),
        ("/admin/./audit", "/admin/audit"),
    ],
)
def test_a_signed_in_admin_is_sent_to_the_return_url_resolved_and_only_inside_the_console(
    host, svc, admin, asked, landed
):
    response = host.client.get(
        f"/admin/login?returnUrl={quote(asked, safe='')}",
        headers=console_cookie(host, svc, admin, "admin"),
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == landed


def test_the_console_is_served_under_admin_only_through_the_edge_rewrite(host):
    """The app routes the console under /console; the edge (Front Door in Azure,
    DEVHOST_EDGE_REWRITES here) serves it under /admin, segment-wise."""
    page = host.client.get("/admin/login")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'name="csrfToken"' in page.text and host.client.get("/console/login").status_code == 200
    near_miss = host.client.get("/administrator")
    assert (near_miss.status_code, near_miss.content) == (404, b"")
    api = host.client.get("/api/admin/audit")  # the API's own admin routes are not rewritten
    assert api.status_code == 401 and api.json()["error"]


# --- deployed like Azure: cookies, HSTS, the dev mailbox ---------------------------------------


@pytest.fixture(scope="module")
def azure_like_host(launch_devhost, settings, app_settings_values):
    """A host whose settings look like Azure's: WEBSITE_SITE_NAME set, no APP_ENVIRONMENT,
    no dev mailbox, Secure cookies (Chromium and httpx take them over http://127.0.0.1)."""
    # an empty setting counts as unset (and overrides what this process's environment says)
    unset = dict.fromkeys(("APP_ENVIRONMENT", "DEV_MAILBOX_ENABLED", "MAIL_PROVIDER", "COOKIE_SECURE"), "")
    with launch_devhost({**app_settings_values, **unset, "WEBSITE_SITE_NAME": "codes-test-app"}) as running:
        yield running


def assert_deployed_headers(host) -> None:
    """Outside the local environment every answer carries HSTS and nosniff; only HTML pages
    carry a content security policy."""
    api, page = host.client.get("/api/health"), host.client.get("/")
    assert api.status_code == 200, api.text[:300]
    assert page.headers["content-type"].startswith("text/html")
    for response in (api, page):
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_without_app_environment_the_app_behaves_as_production_and_sends_hsts(azure_like_host):
    assert_deployed_headers(azure_like_host)


@pytest.fixture(scope="module", params=["dev", "test"])
def deployed_host(request, launch_devhost, settings, app_settings_values):
    """A host in a deployed environment other than prod (no dev mailbox there)."""
    unset = dict.fromkeys(("DEV_MAILBOX_ENABLED", "MAIL_PROVIDER"), "")
    with launch_devhost({**app_settings_values, **unset, "APP_ENVIRONMENT": request.param}) as running:
        yield running


def test_dev_and_test_send_hsts_like_production(deployed_host):
    assert_deployed_headers(deployed_host)


def test_the_dev_mailbox_does_not_exist_in_azure(azure_like_host):
    """No function is registered for it, so the Functions host answers the 404 itself."""
    response = azure_like_host.client.get("/api/dev/mailbox", params={"to": "someone@example.com"})
    assert response.status_code == 404
    assert response.content == b""


def test_the_dev_mailbox_is_not_served_in_azure_even_when_the_settings_ask_for_it(launch_devhost, app_settings_values):
    with launch_devhost({**app_settings_values, "WEBSITE_SITE_NAME": "codes-test-app"}) as running:
        response = running.client.get("/api/dev/mailbox", params={"to": "someone@example.com"})
        assert response.status_code == 404, response.text[:300]


def set_cookies(response) -> list[str]:
    return response.headers.get_list("set-cookie")


def test_secure_cookies_are_host_prefixed_with_path_root_and_no_domain(azure_like_host):
    """The app sets no Domain; the Functions host writes that as an empty `domain=`
    (Azure/azure-functions-python-worker#1902), which browsers ignore
    (tests/browser/test_cookie_prefix.py)."""
    (form_cookie,) = set_cookies(azure_like_host.client.get("/"))
    assert form_cookie.startswith("__Host-form_nonce=")
    attributes = [part.strip().lower() for part in form_cookie.split(";")[1:]]
    assert "path=/" in attributes and "secure" in attributes and "httponly" in attributes
    assert [part for part in attributes if part.startswith("domain")] == ["domain="]


def test_the_console_session_cookie_is_host_prefixed_and_a_bare_one_is_ignored(azure_like_host, svc, admin):
    token, _ = svc.sessions.create(admin.user_id, "admin")
    client = azure_like_host.client
    bare = client.get("/admin", headers={"cookie": f"console_session={token}"}, follow_redirects=False)
    assert bare.status_code == 303 and bare.headers["location"].startswith("/admin/login?")
    prefixed = client.get("/admin", headers={"cookie": f"__Host-console_session={token}"}, follow_redirects=False)
    assert prefixed.status_code == 200, prefixed.text[:300]


# --- what guests learn about the sharer -------------------------------------------------------


def share(host, svc: Services, account: Account, name: str) -> str:
    response = host.client.put(
        f"/api/resources/{name}",
        content=b"shared bytes",
        headers={**bearer(svc, account), "content-type": "text/plain"},
    )
    assert response.status_code in (200, 201), response.text[:300]
    return response.json()["data"]["resourceId"]


def test_a_guest_page_shows_no_email_and_no_name_by_default(host, svc):
    account = add_account(svc, "user", name="quiet")
    page = host.client.get(f"/r/{share(host, svc, account, 'quiet.txt')}")
    assert page.status_code == 200
    assert account.email not in page.text and account.email.split("@")[0] not in page.text
    assert "Shared by" not in page.text


def test_a_guest_page_shows_the_display_name_the_owner_chose_and_never_the_email(host, svc):
    account = add_account(svc, "user", name="named")
    headers = bearer(svc, account)
    resource_id = share(host, svc, account, "named.txt")
    chosen = host.client.put("/api/users/me/display-name", json={"displayName": "Ada <Lovelace>"}, headers=headers)
    assert chosen.status_code == 200, chosen.text[:300]
    assert chosen.json()["data"]["displayName"] == "Ada <Lovelace>"
    assert host.client.get("/api/users/me", headers=headers).json()["data"]["displayName"] == "Ada <Lovelace>"
    page = host.client.get(f"/r/{resource_id}")
    assert "Ada &lt;Lovelace&gt;" in page.text and account.email not in page.text

    cleared = host.client.put("/api/users/me/display-name", json={"displayName": None}, headers=headers)
    assert cleared.status_code == 200 and cleared.json()["data"]["displayName"] is None
    assert "Ada" not in host.client.get(f"/r/{resource_id}").text


@pytest.mark.parametrize(
    "name",
    [
        "",
        " Ada",
        "Ada ",
        pytest.param("A" * 65, id="65-chars"),
        "Ada\nLovelace",
        "Ada\x00",
        "Ada\u202eecalevol",
        "Ada\u2028",
        42,
    ],
)
def test_a_display_name_that_is_empty_too_long_or_not_printable_is_refused(host, svc, owner, name):
    response = host.client.put("/api/users/me/display-name", json={"displayName": name}, headers=bearer(svc, owner))
    answer = assert_envelope(response, 400, "invalid_input")
    assert [d["field"] for d in answer["details"]] == ["displayName"]


def test_a_display_name_of_64_characters_is_taken(host, svc, owner):
    name = "Ø" * 64
    response = host.client.put("/api/users/me/display-name", json={"displayName": name}, headers=bearer(svc, owner))
    assert response.status_code == 200 and response.json()["data"]["displayName"] == name
