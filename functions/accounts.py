"""Accounts: register, password strength, activation (HTTP Basic), the signed-in user's
profile and password change, and the admin's lock, unlock and role change."""

import azure.functions as func

from functions.http import Reply, api, basic_credentials
from functions.schemas.accounts import (
    ActivationCode,
    ActivationView,
    Credentials,
    DisplayNameChange,
    PasswordChange,
    PasswordChangedView,
    ProfileView,
    RegistrationView,
    ResendView,
    RoleChange,
    StrengthQuery,
    StrengthView,
    UserAdminView,
)

bp = func.Blueprint()


def _admin_view(user) -> dict:
    return {"userId": user.user_id, "email": user.email, "role": user.role, "status": user.status}


@bp.route(route="api/users", methods=["POST"])
@api(Credentials, response=RegistrationView)
def register(ctx, body: Credentials) -> Reply:
    """Register with email and password; an activation code goes out by mail.

    The answer is the same whether or not the address already has an account."""
    ctx.services.accounts.register(body.email, body.password, client_ip=ctx.client_ip, request_id=ctx.request_id)
    return Reply("If this address can be registered, we sent it an activation code.", {"email": body.email}, 202)


@bp.route(route="api/passwords/strength", methods=["POST"])
@api(StrengthQuery, response=StrengthView)
def password_strength(ctx, body: StrengthQuery) -> Reply:
    """Score a password (0-4) with zxcvbn feedback, for a strength meter."""
    verdict = ctx.services.accounts.password_strength(body.password, body.email)
    return Reply("Acceptable." if verdict.acceptable else "Not acceptable.", verdict.as_dict())


@bp.route(route="api/users/activation", methods=["POST"])
@api(ActivationCode, basic_auth=True, response=ActivationView)
def activate(ctx, body: ActivationCode) -> Reply:
    """Activate the account (HTTP Basic email:password) with the mailed code."""
    email, password = basic_credentials(ctx.request)
    user = ctx.services.accounts.activate(
        email, password, body.code, client_ip=ctx.client_ip, request_id=ctx.request_id
    )
    return Reply(
        "The account is active; sign in.", {"userId": user.user_id, "email": user.email, "status": user.status}
    )


@bp.route(route="api/users/activation/resend", methods=["POST"])
@api(basic_auth=True, response=ResendView)
def resend_activation(ctx) -> Reply:
    """Send a new activation code (HTTP Basic); the old one stops working."""
    email, password = basic_credentials(ctx.request)
    expires_at = ctx.services.accounts.resend_activation(
        email, password, client_ip=ctx.client_ip, request_id=ctx.request_id
    )
    return Reply("A new code is on its way; the old one no longer works.", {"codeExpiresAt": expires_at}, 202)


@bp.route(route="api/users/me", methods=["GET"])
@api(auth=True, response=ProfileView)
def me(ctx) -> Reply:
    """The signed-in user: email, role, activation and password age."""
    return Reply("Your account.", ctx.services.accounts.profile(ctx.session))


@bp.route(route="api/users/me/display-name", methods=["PUT"])
@api(DisplayNameChange, auth=True, response=ProfileView)
def set_display_name(ctx, body: DisplayNameChange) -> Reply:
    """Set the name guests see as the sharer of your files (null: they see no name; the
    email address is never shown to them)."""
    profile = ctx.services.accounts.set_display_name(ctx.session, body.display_name, request_id=ctx.request_id)
    return Reply("The display name is set." if body.display_name else "No display name is shown.", profile)


@bp.route(route="api/users/me/password", methods=["POST"])
@api(PasswordChange, auth=True, allow_expired_password=True, response=PasswordChangedView)
def change_password(ctx, body: PasswordChange) -> Reply:
    """Change the password; every session of the user ends, so sign in again."""
    ended = ctx.services.accounts.change_password(
        ctx.session, body.old_password, body.new_password, request_id=ctx.request_id
    )
    return Reply("The password is changed; sign in again.", {"sessionsEnded": ended})


@bp.route(route="api/admin/users/{userId}/lock", methods=["POST"])
@api(role="admin", response=UserAdminView)
def lock_user(ctx) -> Reply:
    """Lock an account (admin); its sessions end."""
    user = ctx.services.accounts.lock(
        ctx.request.route_params.get("userId", ""), actor=ctx.session.user_id, request_id=ctx.request_id
    )
    return Reply("The account is locked.", _admin_view(user))


@bp.route(route="api/admin/users/{userId}/unlock", methods=["POST"])
@api(role="admin", response=UserAdminView)
def unlock_user(ctx) -> Reply:
    """Unlock an account (admin)."""
    user = ctx.services.accounts.unlock(
        ctx.request.route_params.get("userId", ""), actor=ctx.session.user_id, request_id=ctx.request_id
    )
    return Reply("The account is unlocked.", _admin_view(user))


@bp.route(route="api/admin/users/{userId}/role", methods=["PUT"])
@api(RoleChange, role="admin", response=UserAdminView)
def set_user_role(ctx, body: RoleChange) -> Reply:
    """Set an account's role (admin); its sessions end so the new role applies at once."""
    user = ctx.services.accounts.set_role(
        ctx.request.route_params.get("userId", ""), body.role, actor=ctx.session.user_id, request_id=ctx.request_id
    )
    return Reply("The role is set.", _admin_view(user))
