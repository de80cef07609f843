"""Sessions: log in, log out, and token introspection for other services."""

import azure.functions as func

from functions.http import Reply, api
from functions.schemas.accounts import IntrospectionView, SessionView, SignIn, TokenQuery, UnlockRequest

bp = func.Blueprint()


@bp.route(route="api/sessions", methods=["POST"])
@api(SignIn, response=SessionView)
def login(ctx, body: SignIn) -> Reply:
    """Sign in; returns a bearer token, when it expires (idle timeout, sliding), and a
    device token to send back in `X-Device-Token` on later sign-ins from this device."""
    login = ctx.services.accounts.login(
        body.email,
        body.password,
        client_ip=ctx.client_ip,
        device_token=ctx.request.headers.get("x-device-token"),
        unlock_code=body.unlock_code,
        request_id=ctx.request_id,
    )
    message = "Signed in; change your password now." if login.session.password_expired else "Signed in."
    return Reply(message, login.as_dict(), 201)


@bp.route(route="api/sessions/unlock", methods=["POST"])
@api(UnlockRequest)
def request_unlock(ctx, body: UnlockRequest) -> Reply:
    """Mail an unlock code for signing in from a new device while sign-in from new devices
    is paused. The answer is the same whether or not the address has an account."""
    ctx.services.accounts.request_unlock(body.email, client_ip=ctx.client_ip, request_id=ctx.request_id)
    return Reply("If this address has an account, we sent it an unlock code.", {"email": body.email}, 202)


@bp.route(route="api/sessions/current", methods=["DELETE"])
@api(auth=True)
def logout(ctx) -> Reply:
    """Sign out: the bearer token stops working."""
    ctx.services.accounts.logout(ctx.session, request_id=ctx.request_id)
    return Reply("Signed out.")


@bp.route(route="api/sessions/introspect", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@api(TokenQuery, response=IntrospectionView)
def introspect(ctx, body: TokenQuery) -> Reply:
    """For other services (function key): is this token a live session? A look, not a use:
    it does not push the session's idle timeout forward."""
    result = ctx.services.accounts.introspect(body.token)
    return Reply("The token is active." if result["active"] else "The token is not active.", result)
