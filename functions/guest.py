"""The guest's pages: `/r/<resourceId>` shows what is shared and takes the 6-digit code;
`/` takes a pasted guest link (or id) and the code. Both redeem through the codes service,
under the same rate limits as POST /api/codes/redeem, and answer every failed code with
one message. The forms work without JavaScript."""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from functions.html import render
from functions.http import RequestContext, status_of
from functions.web import form_token, form_token_valid, human_size, page, page_message, read_form
from shared import errors
from shared.resources.guest import SharedResource, resource_id_from_link

bp = func.Blueprint()

FAILED = "That code did not work. Check the digits and try again, or ask the sender for a new code."
EXPIRED_FORM = "This page was open too long. Please type the code again."
NO_LINK = "Paste the link you were sent (it contains /r/ followed by an id), or just the id."
MAX_CODE_INPUT = 64

# (status, message, extra headers) -> the form again, with that message
Again = Callable[[int, str, dict[str, str]], func.HttpResponse]


# Route "/": Azure Functions turns an empty route into the function's name, so the root is
# an optional parameter that must stay empty.
@bp.route(route="{ignored:maxlength(0)?}", methods=["GET", "POST"])
@page
def guest_home(ctx: RequestContext) -> func.HttpResponse:
    """The start page: paste the guest link or id, type the code."""
    req = ctx.request
    if req.method == "GET":
        return _home(req)
    form = read_form(req)
    link, code = form.get("link", "")[:2048], form.get("code", "")

    def again(status: int, message: str, headers: dict[str, str]) -> func.HttpResponse:
        return _home(req, status=status, error=message, link=link, headers=headers)

    if not form_token_valid(req, form):
        return again(403, EXPIRED_FORM, {})
    resource_id = resource_id_from_link(link)
    if resource_id is None:
        return again(400, NO_LINK, {})
    return _redeem(ctx, resource_id, code, again)


@bp.route(route="r/{resourceId}", methods=["GET", "POST"])
@page
def guest_resource(ctx: RequestContext) -> func.HttpResponse:
    """A guest link: what is shared (name, size, the sharer's display name if there is one)
    and the field for the code."""
    req = ctx.request
    resource_id = req.route_params.get("resourceId", "")
    shared = ctx.services.guest.shared_resource(resource_id)
    if req.method == "GET":
        return _resource(req, shared)
    form = read_form(req)

    def again(status: int, message: str, headers: dict[str, str]) -> func.HttpResponse:
        return _resource(req, shared, status=status, error=message, headers=headers)

    if not form_token_valid(req, form):
        return again(403, EXPIRED_FORM, {})
    return _redeem(ctx, resource_id, form.get("code", ""), again, shared)


def _redeem(
    ctx: RequestContext, resource_id: str, code: str, again: Again, shared: SharedResource | None = None
) -> func.HttpResponse:
    svc = ctx.services
    try:
        redemption = svc.codes.redeem(
            resource_id, code[:MAX_CODE_INPUT], source=ctx.client_ip, request_id=ctx.request_id
        )
    except errors.TooManyRequests as error:
        status, headers = status_of(error)
        return again(status, page_message(error), headers)
    except errors.InvalidInput:  # every wrong, expired, used or revoked code: one answer
        return again(400, FAILED, {})
    shared = shared or svc.guest.shared_resource(redemption.resource_id)
    return render("guest/ready.html", shared=shared, download_url=redemption.download_url,
                  expires_at=redemption.expires_at)  # fmt: skip


def _home(req, *, status: int = 200, error: str | None = None, link: str = "", headers=None) -> func.HttpResponse:
    token, cookie_headers = form_token(req)
    return render("guest/home.html", status, {**cookie_headers, **(headers or {})}, csrf_token=token, error=error,
                  link=link)  # fmt: skip


def _resource(req, shared, *, status: int = 200, error: str | None = None, headers=None) -> func.HttpResponse:
    if shared is None:
        return render("guest/missing.html", 404 if status < 400 else status, headers, error=error)
    token, cookie_headers = form_token(req)
    return render("guest/resource.html", status, {**cookie_headers, **(headers or {})}, shared=shared,
                  csrf_token=token, error=error, size=human_size(shared.size))  # fmt: skip
