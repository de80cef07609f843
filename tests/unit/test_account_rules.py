"""Pure account rules: email addresses as user names, and the password policy."""

import pytest

from functions.schemas.accounts import Credentials, PasswordChange
from shared.accounts import passwords
from shared.accounts.addresses import InvalidEmail, parse_email
from shared.accounts.passwords import PasswordHasher

STRONG = "violet-Harbor-engine-42"


# --- email -------------------------------------------------------------------------------


def test_case_variants_of_an_address_share_one_key_and_keep_their_display_form():
    upper, lower = parse_email("Smith@X.com"), parse_email("smith@x.com")
    assert upper.key == lower.key == "smith@x.com"
    assert upper.key_hash == lower.key_hash
    assert upper.display == "Smith@X.com"


@pytest.mark.parametrize(
    "address",
    [
        "no-at-sign.example.com",
        "two@at@example.com",
        "@example.com",
        "someone@",
        '"quoted"@example.com',
        "o'brien@example.com",
        "back`tick@example.com",
        "nul\x00@example.com",
        "tab\t@example.com",
        "bell\x07@example.com",
        "someone@exa_mple.com",
        "someone@exam!ple.com",
        "someone@münchen.de",
        "a" * 64 + "@example.com",
        "someone@" + "a" * 250 + ".com",
        "someone@example",
    ],
)
def test_an_address_that_breaks_a_rule_is_refused(address):
    with pytest.raises(InvalidEmail):
        parse_email(address)


def test_a_local_part_of_63_characters_is_accepted_and_total_length_is_capped_at_254():
    assert parse_email("a" * 63 + "@example.com").key.startswith("a" * 63)
    domain = ".".join(["b" * 60] * 4)[:240] + ".com"  # labels of at most 63
    with pytest.raises(InvalidEmail):
        parse_email("a" * 20 + "@" + domain)


def test_unknown_fields_in_a_body_are_refused():
    with pytest.raises(ValueError, match="extra"):
        Credentials.model_validate({"email": "a@example.com", "password": "x", "admin": True})


def test_password_change_takes_camel_case_field_names_only():
    body = PasswordChange.model_validate({"oldPassword": "a", "newPassword": "b"})
    assert (body.old_password, body.new_password) == ("a", "b")
    with pytest.raises(ValueError):
        PasswordChange.model_validate({"old_password": "a", "new_password": "b"})


# --- passwords ---------------------------------------------------------------------------


def test_a_strong_password_is_acceptable():
    verdict = passwords.check(STRONG, "smith@example.com")
    assert verdict.acceptable, verdict
    assert verdict.score >= 3


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Ab3$xyz", "too_short"),
        ("Zq7!" * 16 + "x", "too_long"),
        ("password1", "too_common"),
        ("qwertyuiop", "too_weak"),
    ],
)
def test_a_password_breaking_a_rule_is_refused_with_the_reason(password, problem):
    verdict = passwords.check(password)
    assert not verdict.acceptable
    assert problem in verdict.problems


def test_a_refused_weak_password_comes_with_zxcvbn_feedback():
    verdict = passwords.check("password1")
    assert verdict.warning
    assert verdict.suggestions


def test_the_email_counts_as_user_input_for_the_strength_score():
    assert passwords.check("quixotic.zephyr!").acceptable
    verdict = passwords.check("quixotic.zephyr!", "quixotic.zephyr@example.com")
    assert "too_weak" in verdict.problems


def _password_of_bytes(total: int) -> str:
    """A strong password made of 3-byte characters plus ASCII, exactly `total` UTF-8 bytes."""
    head = "Kite-Valley-" + "€" * 18  # 12 + 54 bytes, 30 characters
    tail_bytes = total - len(head.encode())
    return head + "zq7Rw!mXp"[:tail_bytes]


def test_72_utf8_bytes_are_accepted_even_in_fewer_characters():
    password = _password_of_bytes(72)
    assert len(password.encode()) == 72 and len(password) < 64
    verdict = passwords.check(password)
    assert "too_many_bytes" not in verdict.problems
    assert verdict.acceptable, verdict


def test_73_utf8_bytes_are_refused_even_in_under_64_characters():
    password = _password_of_bytes(73)
    assert len(password.encode()) == 73 and len(password) < 64
    assert "too_many_bytes" in passwords.check(password).problems


def test_a_multibyte_character_crossing_72_bytes_is_refused_not_truncated():
    password = "Kite-Valley-" + "€" * 20  # 12 + 60 = 72 bytes: fits
    assert passwords.fits_bcrypt(password)
    assert not passwords.fits_bcrypt(password + "é")  # 74 bytes


def test_bcrypt_never_truncates_so_a_longer_password_sharing_72_bytes_does_not_match():
    hasher = PasswordHasher(10)
    password = _password_of_bytes(72)
    stored = hasher.hash(password)
    assert hasher.verify(password, stored)
    assert not hasher.verify(password + "x", stored)


def test_bcrypt_cost_below_10_is_refused():
    with pytest.raises(ValueError):
        PasswordHasher(9)


def test_an_unknown_user_is_checked_against_a_dummy_hash_and_fails():
    assert PasswordHasher(10).verify(STRONG, None) is False


def test_passwords_are_nfkc_normalised_before_hashing():
    hasher = PasswordHasher(10)
    composed, decomposed = "Caf\u00e9-Harbor-engine-42", "Cafe\u0301-Harbor-engine-42"
    assert hasher.verify(decomposed, hasher.hash(composed))
