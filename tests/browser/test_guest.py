"""The guest page in a real browser: see what is shared, type the code, get the file; a
wrong code gets the one message."""

from __future__ import annotations

import pytest

from tests.browser.support import share_file

pytestmark = pytest.mark.browser


def test_a_guest_typing_the_code_downloads_the_file(page, host, member, real_time_services):
    data = b"quarterly figures\n" * 100
    resource, code = share_file(real_time_services, member, "figures.csv", data, "text/csv")

    page.goto(f"/r/{resource.resource_id}")
    main = page.inner_text("main")
    assert "figures.csv" in main and "1.8 KB" in main
    assert member.email not in main  # the sharer's address stays hidden from whoever holds the link
    field = page.get_by_label("6-digit code")
    assert field.get_attribute("inputmode") == "numeric"
    assert field.get_attribute("autocomplete") == "one-time-code"
    field.fill(f"{code[:3]} {code[3:]}")  # as shown to the sender, with its space
    page.get_by_role("button", name="Download").click()

    link = page.get_by_role("link", name="Download figures.csv")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "figures.csv"
    assert download.value.path().read_bytes() == data


def test_a_wrong_code_shows_the_message(page, host, member, real_time_services):
    resource, code = share_file(real_time_services, member, "notes.txt", b"notes")
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    page.goto(f"/r/{resource.resource_id}")
    page.get_by_label("6-digit code").fill(wrong)
    page.get_by_role("button", name="Download").click()

    assert "That code did not work" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("6-digit code").get_attribute("aria-invalid") == "true"
    assert page.get_by_role("link", name="Download notes.txt").count() == 0
