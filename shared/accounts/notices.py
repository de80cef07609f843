"""The texts of the mails accounts send. Plain text; a code appears only in the body."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    kind: str


def activation_code(code: str, valid_seconds: int) -> Mail:
    return Mail(
        subject="Your activation code",
        text=(
            f"Your activation code is {code}.\n\n"
            f"It is valid for {valid_seconds} seconds. If it expires, ask for a new one.\n"
            "If you did not register, ignore this mail."
        ),
        kind="activation",
    )


def already_registered() -> Mail:
    return Mail(
        subject="Someone tried to register with your address",
        text=(
            "Someone tried to register a new account with this address, which already has one.\n\n"
            "If it was you, sign in with your password (or activate the account, asking for a new code).\n"
            "If not, you can ignore this mail; nothing changed."
        ),
        kind="already_registered",
    )


def password_changed() -> Mail:
    return Mail(
        subject="Your password was changed",
        text=(
            "The password of your account was just changed, and every session was signed out.\n\n"
            "If this was not you, contact support at once."
        ),
        kind="password_changed",
    )


def sign_in_paused() -> Mail:
    return Mail(
        subject="Sign-in to your account from new devices is paused",
        text=(
            "There were many failed attempts to sign in to your account from devices it has not seen "
            "before, so sign-in from new devices is paused for a while. Devices you signed in from before "
            "are not affected.\n\n"
            "To sign in from a new device now, ask for an unlock code on the sign-in page and enter it with "
            "your password.\n"
            "If these attempts were not you, someone may be guessing your password: choose a strong, unique one."
        ),
        kind="sign_in_paused",
    )


def unlock_code(code: str, valid_seconds: int) -> Mail:
    return Mail(
        subject="Your unlock code",
        text=(
            f"Your unlock code is {code}.\n\n"
            f"Enter it with your password to sign in from a new device. It works once, for "
            f"{valid_seconds // 60} minutes.\n"
            "If you did not ask for it, someone may be trying to sign in as you: you can ignore this mail, "
            "and your devices are not affected."
        ),
        kind="unlock_code",
    )
