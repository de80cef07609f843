"""Request models of the accounts and sessions endpoints.

One rule for every body: unknown fields are refused (a typo is a clear 400), field names
are camelCase on the wire. Email syntax is checked here; the password policy is checked
by the service, because its answer carries reasons (zxcvbn feedback), not just "invalid".
Password fields are bounded only loosely here, so an over-long password gets the
policy's reasons rather than a bare length error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, RootModel

from functions.schemas.base import Body, Payload
from shared.accounts.addresses import MAX_LENGTH, InvalidEmail, parse_email
from shared.auth.authorization import Role


def _valid_email(value: str) -> str:
    try:
        parse_email(value)
    except InvalidEmail as error:
        raise ValueError(str(error)) from None
    return value.strip()


Email = Annotated[str, Field(min_length=3, max_length=MAX_LENGTH + 10), AfterValidator(_valid_email)]
Password = Annotated[str, Field(min_length=1, max_length=256)]


def _printable_name(value: str) -> str:
    if value != value.strip() or not value.isprintable():
        raise ValueError("a display name is printable characters without surrounding spaces")
    return value


# What guests see as the sharer: 1-64 printable characters (no control, format or line
# separator characters, so nothing can reorder or break the page's text).
DisplayName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable_name)]


class Credentials(Body):
    """POST /api/users (register) and POST /api/sessions (login)."""

    email: Email
    password: Password


class SignIn(Body):
    """POST /api/sessions: `unlockCode` (6 digits, mailed by POST /api/sessions/unlock)
    signs a new device in while the account is paused for unknown devices."""

    email: Email
    password: Password
    unlock_code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")


class UnlockRequest(Body):
    """POST /api/sessions/unlock."""

    email: Email


class StrengthQuery(Body):
    """POST /api/passwords/strength: a strength meter's question."""

    password: Password
    email: str | None = Field(default=None, max_length=MAX_LENGTH + 10)


class ActivationCode(Body):
    """POST /api/users/activation."""

    code: str = Field(pattern=r"^[0-9]{1,12}$")


class PasswordChange(Body):
    """POST /api/users/me/password."""

    old_password: Password
    new_password: Password


class DisplayNameChange(Body):
    """PUT /api/users/me/display-name: `displayName`, or null to show guests no name."""

    display_name: DisplayName | None


class TokenQuery(Body):
    """POST /api/sessions/introspect."""

    token: str = Field(min_length=1, max_length=256)


class RoleChange(Body):
    """PUT /api/admin/users/{userId}/role."""

    role: str = Field(pattern=rf"^({'|'.join(Role)})$")


class MailboxQuery(Body):
    """GET /api/dev/mailbox?to=<email> (local only)."""

    to: str = Field(min_length=3, max_length=MAX_LENGTH + 10)


# --- what the endpoints answer in `data` (for the OpenAPI document) ---------------------


class RegistrationView(Payload):
    email: str


class StrengthView(Payload):
    score: int
    acceptable: bool
    problems: list[str]
    warning: str | None = None
    suggestions: list[str]


class ActivationView(Payload):
    user_id: str
    email: str
    status: str


class ResendView(Payload):
    code_expires_at: datetime


class SessionView(Payload):
    token: str
    device_token: str
    expires_at: datetime
    absolute_expires_at: datetime
    password_expired: bool
    user_id: str
    role: str


class ProfileView(Payload):
    user_id: str
    email: str
    role: str
    status: str
    activated: bool
    activated_at: datetime | None = None
    created_at: datetime
    password_changed_at: datetime
    password_age_days: int
    password_expires_at: datetime
    password_expired: bool
    display_name: str | None = None


class PasswordChangedView(Payload):
    sessions_ended: int


class IntrospectionView(Payload):
    active: bool
    user_id: str | None = None
    role: str | None = None
    expires_at: datetime | None = None
    password_expired: bool | None = None


class UserAdminView(Payload):
    user_id: str
    email: str
    role: str
    status: str


class MailView(Payload):
    to: str
    subject: str
    text: str
    kind: str
    sent_at: datetime


class MailboxView(RootModel[list[MailView]]):
    model_config = ConfigDict(defer_build=True)
