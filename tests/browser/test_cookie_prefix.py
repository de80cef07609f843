"""`__Host-` cookies in Chromium, as the app sends them where cookies are Secure, and as the
Azure Functions Python worker rewrites them: it turns every Set-Cookie into a structured
cookie whose missing Domain becomes an empty one, so the browser gets `domain=`
(Azure/azure-functions-python-worker#1902). The decision this backs is in
docs/decisions.md ("Cookie prefixes")."""

from __future__ import annotations

import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def secure_host(launch_devhost, settings, app_settings_values):
    """The app with Secure cookies (the default); Chromium takes Secure cookies from
    http://127.0.0.1, a potentially trustworthy origin."""
    with launch_devhost({**app_settings_values, "COOKIE_SECURE": ""}) as running:
        yield running


def as_the_functions_host_sends_it(set_cookie: str) -> str:
    """The header after the Python worker's round trip: parsed by SimpleCookie (as
    azure.functions does), every field sent on, the absent Domain as an empty string."""
    ((name, morsel),) = SimpleCookie(set_cookie).items()
    parts = [f"{name}={morsel.value}", f"domain={morsel['domain']}", f"path={morsel['path']}"]
    if morsel["max-age"]:
        parts.append(f"max-age={morsel['max-age']}")
    parts += [part for part in ("secure", "httponly") if morsel[part]]
    parts.append(f"samesite={morsel['samesite']}")
    return "; ".join(parts)


def test_the_form_cookie_is_a_host_cookie_that_round_trips_in_chromium(browser, secure_host):
    context = browser.new_context(base_url=secure_host.url)
    try:
        page = context.new_page()
        page.goto("/")
        (nonce,) = context.cookies()
        assert nonce["name"] == "__Host-form_nonce"
        assert (nonce["path"], nonce["secure"], nonce["httpOnly"], nonce["sameSite"]) == ("/", True, True, "Strict")
        assert not nonce["domain"].startswith(".")  # host-only
        page.get_by_label("Link or id").fill("not a link")
        page.get_by_label("6-digit code").fill("123456")
        page.get_by_role("button", name="Get the file").click()
        # the form's token matched the cookie's nonce: the page names the link, not the form's age
        assert "Paste the link you were sent" in page.get_by_role("alert").inner_text()
    finally:
        context.close()


def test_chromium_keeps_a_host_cookie_with_the_empty_domain_the_functions_worker_adds(browser, secure_host):
    sent = secure_host.client.get("/").headers["set-cookie"]
    rewritten = as_the_functions_host_sends_it(sent)
    assert "domain=;" in rewritten and rewritten.startswith("__Host-form_nonce=")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Set-Cookie", rewritten)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(self.headers.get("cookie", "").encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        page.goto(url)
        assert [c["name"] for c in context.cookies()] == ["__Host-form_nonce"]
        page.goto(url)
        assert page.inner_text("body").startswith("__Host-form_nonce=")  # and sent back
    finally:
        context.close()
        server.shutdown()
