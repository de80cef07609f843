"""The signed-in user's pages under /account: register (with a live strength meter),
activate, sign in (with the unlock-code path), the files and their codes (upload, issue,
revoke, a new guest link), change the password, sign out.

They call the same services as the API, under the same rules and limits. Sessions are
the API's (AccountService.login) in an HttpOnly, SameSite=Strict cookie of their own
(`__Host-account_session` where cookies are Secure, a bare `account_session` scoped to
/account on plain http://localhost), so signing in to the console does not sign in here.
Every POST carries a CSRF token: the form nonce's on anonymous forms, the session's on
signed-in pages. No secret travels in a URL: a code is shown once, in the answer to the
form that issued it. The forms work without JavaScript; /static/account.js adds the live
strength meter, the copy button, the resend countdown, and uploads by drag and drop with
a progress bar."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import azure.functions as func

from functions.html import render
from functions.http import RequestContext, status_of
from functions.web import (
    ACCOUNT_SESSION_COOKIE,
    DEVICE_COOKIE,
    SignedInHandler,
    cookie,
    form_token,
    form_token_valid,
    human_size,
    minutes_text,
    page,
    page_message,
    read_cookie,
    read_form,
    redirect,
    return_url_within,
    session_of,
    signed_in_page,
)
from shared import errors
from shared.codes.models import LONGEST_TTL_SECONDS, SHORTEST_TTL_SECONDS, display, guest_link

bp = func.Blueprint()

BASE = "/account"
EXPIRED_FORM = "This page was open too long. Please try again."
REFUSED = "The form's security token is missing or not valid, so nothing was changed. Reload the page and try again."
TTL_MINUTES = (1, 5, 10, 15, 30, 60)  # the lifetimes offered, within the allowed bounds
# What a redirect after a change says on /account (?done=...): names, never values
DONE = {
    "uploaded": "The file is stored.",
    "revoked": "The code is revoked.",
    "rotated": "The file has a new guest link; the old one no longer works and its codes are revoked.",
}


def route(rest: str = "") -> str:
    return f"account/{rest}" if rest else "account"


def account_base() -> str:
    return BASE


def refused(ctx: RequestContext) -> func.HttpResponse:
    return render("error.html", 403, title="Refused", message=REFUSED)


def account_page(*, upload: bool = False, password_page: bool = False) -> Callable[[SignedInHandler], Callable]:
    """A signed-in page. A session whose password expired may only change it: every
    other page sends it to /account/password."""

    def decorate(handler: SignedInHandler) -> Callable:
        def current(ctx: RequestContext, form: dict[str, str] | None) -> func.HttpResponse:
            if ctx.session.password_expired and not password_page:
                return redirect(f"{BASE}/password")
            return handler(ctx, form)

        current.__name__ = handler.__name__
        current.__doc__ = handler.__doc__
        return signed_in_page(
            ACCOUNT_SESSION_COOKIE, account_base, refused, allow_expired_password=True, upload=upload
        )(current)

    return decorate


def anonymous_render(ctx: RequestContext, template: str, status: int = 200, headers=None, **context):
    """A page with an anonymous form: its CSRF token, and the nonce cookie when new."""
    token, cookie_headers = form_token(ctx.request)
    return render(template, status, {**cookie_headers, **(headers or {})}, form_token=token, base=BASE, **context)


def account_render(ctx: RequestContext, template: str, status: int = 200, headers=None, **context):
    """A signed-in page: the layout gets the nav and the sign-out form's CSRF token."""
    return render(
        template,
        status,
        headers,
        session=ctx.session,
        csrf_token=ctx.services.csrf.for_session(ctx.session),
        base=BASE,
        path=urlsplit(ctx.request.url).path.rstrip("/"),
        **context,
    )


def failure(error: errors.DomainError) -> tuple[int, dict[str, str], str]:
    """Status, headers and the words a form shows for a refusal."""
    status, headers = status_of(error)
    return status, headers, page_message(error)


# --- register and activate ---------------------------------------------------------------


@bp.route(route=route("register"), methods=["GET", "POST"])
@page
def account_register(ctx: RequestContext) -> func.HttpResponse:
    """Email and password (the strength meter beside it); then the activation page. The
    answer is the same whether the address is free, pending or taken."""
    req = ctx.request
    if req.method == "GET":
        return anonymous_render(ctx, "account/register.html")
    form = read_form(req)
    email = form.get("email", "")[:254]
    if not form_token_valid(req, form):
        return anonymous_render(ctx, "account/register.html", 403, error=EXPIRED_FORM, email=email)
    try:
        ctx.services.accounts.register(
            email, form.get("password", "")[:1024], client_ip=ctx.client_ip, request_id=ctx.request_id
        )
    except (errors.InvalidInput, errors.TooManyRequests) as error:
        status, headers, message = failure(error)
        field = {"invalid_email": "email", "password_rejected": "password"}.get(error.code)
        return anonymous_render(
            ctx, "account/register.html", status, headers, error=message, field=field, email=email,
            verdict=error.details if error.code == "password_rejected" else None,
        )  # fmt: skip
    return _activation_form(ctx, email=email, notice=_code_sent(ctx), wait=_resend_wait(ctx))


@bp.route(route=route("activate"), methods=["GET", "POST"])
@page
def account_activate(ctx: RequestContext) -> func.HttpResponse:
    """The code from the mail, with email and password (activation checks them); tries
    left after a wrong code; a new code once the cooldown has passed."""
    req = ctx.request
    if req.method == "GET":
        return _activation_form(ctx)
    form = read_form(req)
    email, password = form.get("email", "")[:254], form.get("password", "")[:1024]
    if not form_token_valid(req, form):
        return _activation_form(ctx, 403, email=email, error=EXPIRED_FORM)
    accounts = ctx.services.accounts
    try:
        if form.get("action") == "resend":
            accounts.resend_activation(email, password, client_ip=ctx.client_ip, request_id=ctx.request_id)
            return _activation_form(ctx, email=email, notice=_code_sent(ctx), wait=_resend_wait(ctx))
        accounts.activate(email, password, form.get("code", "")[:32], client_ip=ctx.client_ip,
                          request_id=ctx.request_id)  # fmt: skip
    except (errors.InvalidInput, errors.Unauthenticated, errors.Gone, errors.Conflict, errors.Forbidden,
            errors.TooManyRequests) as error:  # fmt: skip
        status, headers, message = failure(error)
        field = "code" if error.code == "code_invalid" else None
        if error.code == "code_invalid":
            left = error.details.get("attemptsLeft", 0)
            message = f"The code is not right: {left} {'try' if left == 1 else 'tries'} left."
        wait = error.retry_after_seconds if isinstance(error, errors.TooManyRequests) else None
        return _activation_form(ctx, status, headers, email=email, error=message, field=field, wait=wait)
    return _login_form(ctx, email=email, notice="Your account is active. Sign in.")


def _activation_form(ctx, status: int = 200, headers=None, **context) -> func.HttpResponse:
    return anonymous_render(ctx, "account/activate.html", status, headers, **context)


def _code_sent(ctx: RequestContext) -> str:
    seconds = ctx.services.settings.activation_code_ttl_seconds
    return (
        "If this address can be registered, a code is on its way to it. "
        f"It works for {minutes_text(seconds) if seconds >= 60 else f'{seconds} seconds'}."
    )


def _resend_wait(ctx: RequestContext) -> int:
    return ctx.services.settings.activation_resend_cooldown_seconds


# --- sign in, unlock, sign out -------------------------------------------------------------


@bp.route(route=route("login"), methods=["GET", "POST"])
@page
def account_login(ctx: RequestContext) -> func.HttpResponse:
    """Sign in; then back to `returnUrl` (a path under /account). Sets the known-device
    cookie. While sign-in from new devices is paused, offers the unlock code."""
    req = ctx.request
    if req.method == "GET":
        return_url = return_url_within(req.params.get("returnUrl"), BASE)
        if session_of(ctx, ACCOUNT_SESSION_COOKIE) is not None:
            return redirect(return_url)
        return _login_form(ctx, return_url=return_url)
    form = read_form(req)
    return_url = return_url_within(form.get("returnUrl"), BASE)
    email = form.get("email", "")[:254]
    unlock_code = form.get("unlockCode", "").strip()[:32] or None
    if not form_token_valid(req, form):
        return _login_form(ctx, 403, email=email, return_url=return_url, error=EXPIRED_FORM)
    try:
        login = ctx.services.accounts.login(
            email, form.get("password", "")[:1024], client_ip=ctx.client_ip,
            device_token=read_cookie(req, DEVICE_COOKIE), unlock_code=unlock_code, request_id=ctx.request_id,
        )  # fmt: skip
    except (errors.TooManyRequests, errors.Unauthenticated, errors.Forbidden, errors.InvalidInput) as error:
        status, headers, message = failure(error)
        return _login_form(
            ctx, status, headers, email=email, return_url=return_url, error=message,
            paused=error.code == "sign_in_paused" or unlock_code is not None,
            pending=error.code == "account_not_activated",
        )  # fmt: skip
    response = redirect(return_url, headers={"Set-Cookie": cookie(ACCOUNT_SESSION_COOKIE, login.token, path=BASE)})
    # the known-device cookie: strangers' failed sign-ins never hold this browser back
    device_age = ctx.services.settings.device_token_days * 24 * 3600
    response.headers.add_header("Set-Cookie", cookie(DEVICE_COOKIE, login.device_token, max_age=device_age))
    return response


@bp.route(route=route("unlock"), methods=["POST"])
@page
def account_unlock(ctx: RequestContext) -> func.HttpResponse:
    """Mail an unlock code (the same answer whether or not the address has an account)."""
    form = read_form(ctx.request)
    email = form.get("email", "")[:254]
    if not form_token_valid(ctx.request, form):
        return _login_form(ctx, 403, email=email, error=EXPIRED_FORM, paused=True)
    try:
        ctx.services.accounts.request_unlock(email, client_ip=ctx.client_ip, request_id=ctx.request_id)
    except (errors.TooManyRequests, errors.InvalidInput) as error:
        status, headers, message = failure(error)
        return _login_form(ctx, status, headers, email=email, error=message, paused=True)
    notice = "If this address has an account, an unlock code is on its way to it. Type it below with your password."
    return _login_form(ctx, email=email, notice=notice, paused=True)


def _login_form(ctx, status: int = 200, headers=None, *, return_url: str = BASE, **context) -> func.HttpResponse:
    return anonymous_render(ctx, "account/login.html", status, headers, return_url=return_url, **context)


@bp.route(route=route("logout"), methods=["POST"])
@account_page(password_page=True)
def account_logout(ctx: RequestContext, form) -> func.HttpResponse:
    """Sign out: the session ends and its cookie is cleared."""
    ctx.services.accounts.logout(ctx.session, request_id=ctx.request_id)
    return redirect(f"{BASE}/login", headers={"Set-Cookie": _cleared_session()})


def _cleared_session() -> str:
    return cookie(ACCOUNT_SESSION_COOKIE, "", path=BASE, max_age=0)


# --- files and codes -----------------------------------------------------------------------


@bp.route(route=route(), methods=["GET"])
@account_page()
def account_home(ctx: RequestContext, form) -> func.HttpResponse:
    """The user's files, each with its codes, and the forms that change them."""
    return _home(ctx, notice=DONE.get(ctx.request.params.get("done", "")))


@bp.route(route=route("files"), methods=["POST"])
@account_page(upload=True)
def account_upload(ctx: RequestContext, form) -> func.HttpResponse:
    """Upload a file (a name already used is replaced, and keeps its guest link)."""
    upload = ctx.request.files.get("file")
    if upload is None or not upload.filename:
        return _home(ctx, 400, error="Choose a file to upload.", field="file")
    try:
        ctx.services.resources.put(ctx.session.user_id, upload.filename, upload.read(), upload.mimetype or None)
    except (errors.InvalidInput, errors.PayloadTooLarge) as error:
        status, headers, message = failure(error)
        return _home(ctx, status, headers, error=message, field="file")
    return redirect(f"{BASE}?done=uploaded")


@bp.route(route=route("codes"), methods=["POST"])
@account_page()
def account_issue(ctx: RequestContext, form) -> func.HttpResponse:
    """Issue a code for one of the user's files: shown once, here, with the guest link and
    its QR code."""
    resource_id = form.get("resourceId", "")[:64]
    try:
        minutes = int(form.get("ttlMinutes", ""))
        ttl = timedelta(minutes=minutes)
        if not SHORTEST_TTL_SECONDS <= ttl.total_seconds() <= LONGEST_TTL_SECONDS:
            raise ValueError
    except ValueError:
        return _home(ctx, 400, error="Choose how long the code should work.")
    try:
        issued = ctx.services.codes.issue(
            ctx.session.user_id, resource_id, ttl, source=ctx.client_ip, request_id=ctx.request_id
        )
    except (errors.InvalidInput, errors.NotFound, errors.Conflict, errors.TooManyRequests) as error:
        status, headers, message = failure(error)
        return _home(ctx, status, headers, error=message)
    link = public_origin(ctx) + guest_link(issued.resource_id)
    shown = {"code": display(issued.code), "link": link, "qr": qr_svg(link), "expires_at": issued.expires_at,
             "resource_id": issued.resource_id, "minutes": minutes}  # fmt: skip
    return _home(ctx, 201, issued=shown)


@bp.route(route=route("codes/revoke"), methods=["POST"])
@account_page()
def account_revoke(ctx: RequestContext, form) -> func.HttpResponse:
    """Revoke one of the user's codes."""
    code_id = form.get("codeId", "")[:64]
    return _changed(ctx, lambda: ctx.services.codes.revoke(ctx.session.user_id, code_id, request_id=ctx.request_id),
                    "revoked")  # fmt: skip


@bp.route(route=route("files/link"), methods=["POST"])
@account_page()
def account_rotate(ctx: RequestContext, form) -> func.HttpResponse:
    """Give a file a new guest link (the old one leaked): its codes are revoked."""
    resource_id = form.get("resourceId", "")[:64]
    return _changed(ctx, lambda: ctx.services.codes.rotate_link(ctx.session.user_id, resource_id,
                                                                request_id=ctx.request_id), "rotated")  # fmt: skip


def _changed(ctx: RequestContext, change: Callable[[], object], done: str) -> func.HttpResponse:
    """Make the change, then back to /account saying so (`DONE`); a refusal is shown there."""
    try:
        change()
    except (errors.InvalidInput, errors.NotFound, errors.Conflict) as error:
        status, headers, message = failure(error)
        return _home(ctx, status, headers, error=message)
    return redirect(f"{BASE}?done={done}")


def _home(ctx: RequestContext, status: int = 200, headers=None, **context) -> func.HttpResponse:
    svc = ctx.services
    user_id = ctx.session.user_id
    files = svc.resources.list_with_pressure(user_id, svc.codes, svc.pool)
    codes: dict[str, list[dict]] = {}
    for code in svc.codes.list(user_id):
        codes.setdefault(code["resourceId"], []).append(code)
    default_minutes = svc.settings.code_ttl_seconds // 60
    return account_render(
        ctx, "account/home.html", status, headers, files=files, codes=codes, now=datetime.now(UTC),
        ttl_choices=TTL_MINUTES, default_minutes=default_minutes if default_minutes in TTL_MINUTES else 10,
        max_bytes=svc.settings.resource_max_bytes, size=human_size, left=time_left, **context,
    )  # fmt: skip


def public_origin(ctx: RequestContext) -> str:
    """The site's origin as the browser reached it: behind the trusted proxies (Front
    Door, which sends the app's own host name to the origin) their X-Forwarded-Host and
    -Proto, else the request's own."""
    req = ctx.request
    url = urlsplit(req.url)
    forwarded_host = (req.headers.get("x-forwarded-host") or "").split(",")[0].strip()
    if ctx.services.settings.trusted_proxy_count and forwarded_host:
        scheme = (req.headers.get("x-forwarded-proto") or "https").split(",")[0].strip().lower()
        return f"{'http' if scheme == 'http' else 'https'}://{forwarded_host}"
    return f"{url.scheme}://{url.netloc}"


def qr_svg(text: str) -> str:
    """A QR code of `text` as inline SVG (segno): no script, no image request."""
    import segno

    return segno.make(text, error="m").svg_inline(scale=4, title="QR code of the guest link")


def time_left(until: datetime, now: datetime) -> str:
    seconds = int((until - now).total_seconds())
    return "" if seconds <= 0 else f"{minutes_text(seconds)} left"


# --- password ------------------------------------------------------------------------------


@bp.route(route=route("password"), methods=["GET", "POST"])
@account_page(password_page=True)
def account_password(ctx: RequestContext, form) -> func.HttpResponse:
    """Change the password (the meter beside the new one). Every session ends, this one
    too, as with the API: sign in again with the new password."""
    if form is None:
        return account_render(ctx, "account/password.html", expired=ctx.session.password_expired)
    try:
        ended = ctx.services.accounts.change_password(
            ctx.session, form.get("oldPassword", "")[:1024], form.get("newPassword", "")[:1024],
            request_id=ctx.request_id,
        )  # fmt: skip
    except errors.TooManyRequests as error:  # the session that tried has ended
        _, headers, message = failure(error)
        response = _login_form(ctx, 429, headers, error=message)
        response.headers.add_header("Set-Cookie", _cleared_session())
        return response
    except (errors.InvalidInput, errors.Forbidden) as error:
        status, headers, message = failure(error)
        field = "oldPassword" if error.code == "wrong_password" else "newPassword"
        verdict = error.details if error.code == "password_rejected" else None
        return account_render(ctx, "account/password.html", status, headers, error=message, field=field,
                              verdict=verdict, expired=ctx.session.password_expired)  # fmt: skip
    notice = f"Your password is changed and {ended} session{'' if ended == 1 else 's'} ended. Sign in again."
    response = _login_form(ctx, notice=notice)
    response.headers.add_header("Set-Cookie", _cleared_session())
    return response
