"""Sessions: log in, log out, and token introspection for other services."""

import azure.functions as func

from functions.http import Reply, api
from shared.accounts.models import Credentials, IntrospectionView, SessionView, TokenQuery
from shared.services import services

bp = func.Blueprint()


@bp.route(route="api/sessions", methods=["POST"])
@api(Credentials, response=SessionView)
def login(ctx, body: Credentials) -> Reply:
    """Sign in; returns a bearer token and when it expires (idle timeout, sliding)."""
    login = services().accounts.login(body.email, body.password, client_ip=ctx.client_ip, request_id=ctx.request_id)
    message = "Signed in; change your password now." if login.session.password_expired else "Signed in."
    return Reply(message, login.as_dict(), 201)


@bp.route(route="api/sessions/current", methods=["DELETE"])
@api(auth=True)
def logout(ctx) -> Reply:
    """Sign out: the bearer token stops working."""
    services().accounts.logout(ctx.session, request_id=ctx.request_id)
    return Reply("Signed out.")


@bp.route(route="api/sessions/introspect", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@api(TokenQuery, response=IntrospectionView)
def introspect(ctx, body: TokenQuery) -> Reply:
    """For other services (function key): is this token a live session? Counts as a use."""
    result = services().accounts.introspect(body.token)
    return Reply("The token is active." if result["active"] else "The token is not active.", result)
