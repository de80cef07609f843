"""Previously breached passwords at registration and password change, against a fake of
Have I Been Pwned's range API at its HTTP edge (a local HTTP server): what leaves the
service (5 hex characters of the SHA-1, nothing more), the refusal, and what happens when
the API is slow or down."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared import errors
from shared.accounts.addresses import parse_email

from .test_accounts import NEWER, STRONG, latest_code, new_address

BREACHED = "correct-Horse-battery-91"  # strong by zxcvbn's measure, but in the fake's corpus


def sha1(password: str) -> str:
    return hashlib.sha1(password.encode()).hexdigest().upper()  # noqa: S324 - the API's own scheme


@dataclass
class FakeRangeApi:
    """Answers GET /range/<prefix> from `corpus` (password -> times seen), padded with
    zero-count rows as the real API is with Add-Padding; records every request."""

    corpus: dict[str, int]
    delay_seconds: float = 0.0
    trickle_seconds: float = 0.0  # a pause before each row of the body, once the headers are out
    status: int = 200
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def answer(self, prefix: str) -> str:
        rows = [f"{h[5:]}:{n}" for h, n in self.corpus_by_hash.items() if h.startswith(prefix)]
        padding = [f"{sha1(f'padding-{i}')[5:]}:0" for i in range(20)]
        # the zero-count row of a password outside the corpus must not count as seen
        padding.append(f"{sha1(STRONG)[5:]}:0")
        return "\r\n".join(rows + padding)

    @property
    def corpus_by_hash(self) -> dict[str, int]:
        return {sha1(password): count for password, count in self.corpus.items()}


@pytest.fixture
def range_api() -> Iterator[FakeRangeApi]:
    fake = FakeRangeApi(corpus={BREACHED: 3, "another-Breached-one-17": 1})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append((self.path, dict(self.headers.items())))
            time.sleep(fake.delay_seconds)
            if fake.status != 200 or not self.path.startswith("/range/"):
                self.send_error(fake.status if fake.status != 200 else 404)
                return
            body = fake.answer(self.path.removeprefix("/range/").upper()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with suppress(ConnectionError):  # the service may hang up before the end
                for row in body.splitlines(keepends=True):
                    time.sleep(fake.trickle_seconds)
                    self.wfile.write(row)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def checked(make_services, range_api):
    """Services with the breach check on, against the fake."""
    return make_services(
        mail_provider="devmailbox",
        pwned_passwords_enabled=True,
        pwned_passwords_url=range_api.url,
        pwned_passwords_timeout_seconds=0.5,
    )


def test_a_breached_password_is_refused_at_registration_with_its_reason(checked, range_api):
    address = new_address()
    with pytest.raises(errors.InvalidInput) as refused:
        checked.accounts.register(address, BREACHED)
    assert refused.value.code == "password_rejected"
    assert refused.value.details["problems"] == ["breached"]
    assert "data breach" in refused.value.message
    assert checked.users.by_email_hash(parse_email(address).key_hash) is None


def test_only_five_hex_characters_of_the_hash_leave_the_service(checked, range_api):
    with pytest.raises(errors.InvalidInput):
        checked.accounts.register(new_address(), BREACHED)
    [(path, headers)] = range_api.requests
    assert path == f"/range/{sha1(BREACHED)[:5]}"
    sent = path + " ".join(f"{name}: {value}" for name, value in headers.items())
    assert sha1(BREACHED)[5:] not in sent.upper() and BREACHED not in sent
    assert headers.get("Add-Padding") == "true" and headers.get("User-Agent")


def test_a_password_outside_the_corpus_is_accepted_even_beside_a_padding_row_of_it(checked, range_api):
    address = new_address()
    checked.accounts.register(address, STRONG)
    checked.accounts.activate(address, STRONG, latest_code(checked, address))
    assert len(range_api.requests) == 1


def test_a_weak_password_is_refused_without_asking_the_api(checked, range_api):
    with pytest.raises(errors.InvalidInput) as refused:
        checked.accounts.register(new_address(), "password1")
    assert "breached" not in refused.value.details["problems"]
    assert range_api.requests == []


def test_a_breached_new_password_is_refused_at_password_change(checked, range_api):
    address = new_address()
    checked.accounts.register(address, STRONG)
    checked.accounts.activate(address, STRONG, latest_code(checked, address))
    session = checked.accounts.login(address, STRONG).session
    with pytest.raises(errors.InvalidInput) as refused:
        checked.accounts.change_password(session, STRONG, BREACHED)
    assert refused.value.details["problems"] == ["breached"]
    assert checked.accounts.change_password(session, STRONG, NEWER) >= 1


def test_when_the_api_is_too_slow_the_password_is_judged_by_the_other_rules_and_a_warning_says_so(
    checked, range_api, caplog
):
    range_api.delay_seconds = 2.0  # past the 0.5 s timeout
    address = new_address()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="shared.accounts.breaches"):
        checked.accounts.register(address, BREACHED)
    assert time.monotonic() - started < 1.9  # it did not wait for the answer
    assert latest_code(checked, address)  # registered
    [warning] = [r for r in caplog.records if r.name == "shared.accounts.breaches"]
    assert "did not answer" in warning.getMessage()
    assert BREACHED not in warning.getMessage() and sha1(BREACHED)[:5] not in warning.getMessage()


def test_an_api_that_sends_its_answer_a_row_at_a_time_holds_registration_no_longer_than_the_timeout(
    checked, range_api, caplog
):
    range_api.trickle_seconds = 0.2  # each row within the 0.5 s timeout, the whole answer in over 4 s
    address = new_address()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="shared.accounts.breaches"):
        checked.accounts.register(address, BREACHED)
    assert time.monotonic() - started < 2.5
    assert latest_code(checked, address)  # registered, judged by the other rules
    assert any("did not answer" in r.getMessage() for r in caplog.records if r.name == "shared.accounts.breaches")


def test_when_the_api_answers_an_error_registration_still_works(checked, range_api):
    range_api.status = 503
    address = new_address()
    checked.accounts.register(address, BREACHED)
    assert latest_code(checked, address)


def test_with_the_check_off_nothing_is_asked(make_services, range_api):
    svc = make_services(mail_provider="devmailbox", pwned_passwords_enabled=False, pwned_passwords_url=range_api.url)
    svc.accounts.register(new_address(), BREACHED)
    assert range_api.requests == []
