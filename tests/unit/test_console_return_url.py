"""Where the console sends a user after signing in: only back into the console."""

from __future__ import annotations

import pytest

from functions.web import login_url, minutes_text, return_url_within


@pytest.mark.parametrize(
    "kept",
    ["/admin", "/admin/", "/admin/audit?type=redeem&page=2", "/admin/users?q=a%40example.com", "/admin?x=1"],
)
def test_a_console_path_with_its_query_is_kept_exactly(kept):
    assert return_url_within(kept) == kept


@pytest.mark.parametrize(
    "refused",
    [
        None,
        "",
        "//evil.example",
        "///evil.example",
        "https://evil.example",
        "http://evil.example/admin",
        "/\\evil.example",
        "\\\\evil.example",
        "/admin\\..\\evil",
        "/\t/evil.example",
        "/\n/evil.example",
        " /admin",
        "javascript:alert(1)",
        "data:text/html,hi",
        "admin",
        "/administrator",
        "/admin@evil.example",
        "/admin/login",
        "/admin/login/?returnUrl=/admin",
        "/r/abc",
        "/" + "a" * 3000,
    ],
)
def test_anything_else_becomes_admin(refused):
    assert return_url_within(refused) == "/admin"


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/admin/./audit", "/admin/audit"),
        ("/admin/x/../users?q=a", "/admin/users?q=a"),
        ("/admin/audit/%2e%2e/jobs", "/admin/jobs"),
        ("/admin/x/.", "/admin/x/"),
        ("/admin/x/..", "/admin/"),
    ],
)
def test_dot_segments_are_resolved_as_a_browser_resolves_them(asked, kept):
    assert return_url_within(asked) == kept


@pytest.mark.parametrize(
    "refused",
    [
        "/admin/../evil",
        "/admin/..",
        "/admin/%2e%2e/x",
        "/admin/%2E%2E/evil",
        "/admin/.%2e/evil",
        "/admin/%2e./evil",
        "/admin/x/../../evil",
        "/admin/./../evil",
        "/admin/x%2f..%2f..%2fevil",
        "/admin/x%2F..%2F..%2Fevil",
        "/admin/x%5c..%5c..%5cevil",
        "/admin/x/../login",
        "/admin/audit/../../admin/../evil?next=/admin",
    ],
)
def test_a_path_that_leaves_the_console_once_resolved_becomes_admin(refused):
    assert return_url_within(refused) == "/admin"


def test_without_an_edge_rewrite_the_console_lives_under_console():
    assert return_url_within("/console/audit?page=2", "/console") == "/console/audit?page=2"
    assert return_url_within("/admin/audit", "/console") == "/console"


def test_the_login_url_carries_the_return_url_encoded_whole():
    assert (
        login_url("/admin/audit?type=redeem&page=2")
        == "/admin/login?returnUrl=%2Fadmin%2Faudit%3Ftype%3Dredeem%26page%3D2"
    )


@pytest.mark.parametrize(("seconds", "text"), [(1, "less than a minute"), (55, "a minute"), (61, "2 minutes"),
                                                (300, "5 minutes")])  # fmt: skip
def test_waits_are_told_in_whole_minutes_rounded_up(seconds, text):
    assert minutes_text(seconds) == text


def test_the_account_pages_keep_a_return_url_under_account_only():
    assert return_url_within("/account/password", "/account") == "/account/password"
    for refused in ("/admin", "/accounts", "/account/../admin", "/account/login", "https://evil.example/account"):
        assert return_url_within(refused, "/account") == "/account"
