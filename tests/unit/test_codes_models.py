from datetime import UTC, datetime, timedelta

import pytest

from shared.codes.models import AccessCode, CodeState, IssuedCode, display, new_code, normalise


@pytest.mark.parametrize("typed", ["482913", "482 913", "482-913", " 48 29 13 ", "4-8-2-9-1-3", "482\u00a0913"])
def test_spaces_and_dashes_in_a_typed_code_are_ignored(typed):
    assert normalise(typed) == "482913"


@pytest.mark.parametrize("typed", ["", "48291", "4829134", "48291a", "482.913", "٤٨٢٩١٣", "482913\n", None])
def test_anything_but_exactly_six_digits_is_not_a_code(typed):
    assert normalise(typed) is None


def test_a_new_code_is_six_digits_and_codes_vary():
    codes = {new_code() for _ in range(2000)}
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert len(codes) > 1900  # 2,000 draws from 1,000,000: a handful of repeats at most


def test_a_code_is_displayed_in_two_groups_of_three():
    assert display("482913") == "482 913"


def test_the_issue_answer_carries_the_guest_link_and_the_formatted_code():
    issued = IssuedCode("000123", "cid", "r" * 22, datetime(2026, 1, 1, tzinfo=UTC), attempts=1)
    assert issued.public()["display"] == "000 123"
    assert issued.public()["redeemUrl"] == "/r/" + "r" * 22


def test_an_active_code_past_its_end_shows_as_expired_and_its_view_has_no_value():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    code = AccessCode("cid", "h" * 64, "k1", "u1", "r1", now, now + timedelta(minutes=10), CodeState.ACTIVE)
    assert code.state_at(now) is CodeState.ACTIVE
    assert code.state_at(now + timedelta(minutes=10)) is CodeState.EXPIRED
    assert "code" not in code.view(now) and "h" * 64 not in str(code.view(now))
