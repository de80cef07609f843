"""The edge of the HTML pages (the guest pages, the account pages and the admin console):
form bodies and uploads, cookies, CSRF tokens of anonymous forms, the guard of signed-in
pages, redirects, local return URLs, and the error page (its status comes from the API's
mapping, `functions.http.status_of`). Pages render with
`functions.html.render` (autoescaped Jinja2 under a CSP without inline script or style)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import azure.functions as func

from functions.html import render
from functions.http import (
    RequestContext,
    answer,
    check_request_size,
    check_route_values,
    request_id,
    security_headers,
    status_of,
)
from shared import errors
from shared.auth.authorization import Role
from shared.auth.sessions import Session
from shared.services import services

# Cookie names without their prefix (see `cookie_name`)
SESSION_COOKIE = "console_session"  # the console's session token
ACCOUNT_SESSION_COOKIE = "account_session"  # the account pages' session token (functions/account.py)
DEVICE_COOKIE = "device"  # a known device's token (shared/auth/devices.py), for every sign-in page
FORM_COOKIE = "form_nonce"  # the nonce behind anonymous forms' CSRF tokens
HOST_PREFIX = "__Host-"
CONSOLE_ROUTE = "/console"  # where the app serves the console; browsers see CONSOLE_BASE_PATH
FORM_TYPE = "application/x-www-form-urlencoded"
UPLOAD_TYPE = "multipart/form-data"
MAX_FORM_FIELDS = 20
UPLOAD_OVERHEAD = 64 * 1024  # an upload form's other fields and multipart framing
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)


# --- cookies -----------------------------------------------------------------------------


def cookie_name(name: str) -> str:
    """The name a cookie goes by. Where cookies are Secure (everywhere but plain
    http://localhost, COOKIE_SECURE=false) it carries the `__Host-` prefix: the browser
    then keeps it only if it came over HTTPS from this very host with Path=/ and no
    Domain, so no other subdomain can set, shadow or fixate it. Without Secure no prefix
    is possible, so the bare name is used (docs/decisions.md, "Cookie prefixes")."""
    return HOST_PREFIX + name if services().settings.cookie_secure else name


def cookie(name: str, value: str, *, path: str = "/", max_age: int | None = None) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Strict, and Secure unless COOKIE_SECURE is off
    (plain http://localhost). A Secure cookie is a `__Host-` cookie, so its path is `/`
    whatever `path` says; `path` scopes only the bare cookies of plain http."""
    secure = services().settings.cookie_secure
    parts = [f"{cookie_name(name)}={value}", f"Path={'/' if secure else path}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def read_cookie(req: func.HttpRequest, name: str) -> str | None:
    """The value of cookie `name` under the name it goes by (`cookie_name`): where cookies
    are Secure a bare `name=` cookie, which anyone on a sibling subdomain could have set,
    is ignored."""
    jar = SimpleCookie()
    try:
        jar.load(req.headers.get("cookie") or "")
    except CookieError:
        return None
    morsel = jar.get(cookie_name(name))
    return morsel.value if morsel is not None and morsel.value else None


# --- forms -------------------------------------------------------------------------------


def read_form(req: func.HttpRequest, *, files: bool = False) -> dict[str, str]:
    """A URL-encoded form body, or with `files` also a multipart one (an upload: its
    files are in `req.files`): the first value of each field."""
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if files and content_type == UPLOAD_TYPE:
        return {name: req.form.get(name, "") for name in list(req.form.keys())[:MAX_FORM_FIELDS]}
    if content_type != FORM_TYPE:
        raise errors.UnsupportedMediaType("Send the form as application/x-www-form-urlencoded.")
    body = req.get_body()
    if len(body) > services().settings.max_json_body_bytes:
        raise errors.PayloadTooLarge()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise errors.InvalidInput("The form could not be read.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    return form


def form_token(req: func.HttpRequest) -> tuple[str, dict[str, str]]:
    """The CSRF token for an anonymous form, and the Set-Cookie header that gives the
    browser its nonce when it has none yet (an existing one is kept: two open tabs work)."""
    csrf = services().csrf
    nonce = read_cookie(req, FORM_COOKIE)
    headers: dict[str, str] = {}
    if not csrf.usable_nonce(nonce):
        nonce = csrf.new_nonce()
        headers["Set-Cookie"] = cookie(FORM_COOKIE, nonce)
    return csrf.for_nonce(nonce), headers


def form_token_valid(req: func.HttpRequest, form: dict[str, str]) -> bool:
    return services().csrf.nonce_token_valid(read_cookie(req, FORM_COOKIE), form.get("csrfToken"))


# --- navigation --------------------------------------------------------------------------


def redirect(location: str, *, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """303 See Other: the browser follows with a GET (after a form post, too)."""
    return func.HttpResponse(
        status_code=303, headers={**security_headers(html=True), "Cache-Control": "no-store", "Location": location,
                                  **(headers or {})},
    )  # fmt: skip


def path_and_query(req: func.HttpRequest) -> str:
    """The request's path and query string exactly as sent: what a return URL holds."""
    url = urlsplit(req.url)
    return url.path + (f"?{url.query}" if url.query else "")


def console_base() -> str:
    return services().settings.console_base_path


def public_path_and_query(req: func.HttpRequest) -> str:
    """The console URL as the browser sees it: an edge may have rewritten /admin to /console."""
    path = path_and_query(req)
    if path.lower() == CONSOLE_ROUTE or path.lower().startswith((CONSOLE_ROUTE + "/", CONSOLE_ROUTE + "?")):
        return console_base() + path[len(CONSOLE_ROUTE) :]
    return path


def login_url(return_url: str, base: str = "/admin") -> str:
    return f"{base}/login?returnUrl={quote(return_url, safe='')}"


def return_url_within(value: str | None, base: str = "/admin") -> str:
    """`value`, its dot segments resolved, if it is a path under `base` (the console's,
    the account pages') on this site, else `base`.

    Refused: anything with a scheme or host (`https://evil.example`, `//evil.example`),
    backslashes (`/\\evil.example`, which browsers read as `//`), spaces and control
    characters (browsers drop tabs and newlines, so `/\\t/evil.example` becomes `//...`),
    encoded slashes and backslashes (`%2f`, `%5c`), paths outside the console once dot
    segments are resolved as a browser resolves them (`/administrator`,
    `/admin@evil.example`, `/admin/../evil`, `/admin/%2e%2e/x`), and the login page itself
    (no loop). What is kept is the resolved path with its query."""
    if not value or len(value) > 2048 or "\\" in value or _CONTROL_OR_SPACE.search(value):
        return base
    if not value.startswith("/") or value.startswith("//"):
        return base
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or _ENCODED_SEPARATOR.search(parts.path):
        return base
    path = resolve_dot_segments(parts.path)
    if path != base and not path.startswith(base + "/"):
        return base
    if path.rstrip("/").lower() == f"{base}/login":
        return base
    return path + (f"?{parts.query}" if parts.query else "")


def resolve_dot_segments(path: str) -> str:
    """An absolute path with `.` and `..` segments resolved the way browsers do (the URL
    Standard), percent-encoded dots (`%2e`) included: `/admin/x/../y` -> `/admin/y`,
    `/admin/..` -> `/`, `/admin/x/.` -> `/admin/x/`."""
    segments = path.split("/")[1:]
    resolved: list[str] = []
    for index, segment in enumerate(segments):
        dots = unquote(segment)
        if dots in (".", ".."):
            if dots == ".." and resolved:
                resolved.pop()
            if index == len(segments) - 1:
                resolved.append("")  # a trailing dot segment leaves a trailing slash
            continue
        resolved.append(segment)
    return "/" + "/".join(resolved)


def minutes_text(seconds: int) -> str:
    """ "try again in 3 minutes": whole minutes, rounded up; under a minute says so."""
    if seconds < 60:
        return "less than a minute" if seconds < 50 else "a minute"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


def human_size(size: int) -> str:
    """1536 -> "1.5 KB"."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


# --- the page decorator ------------------------------------------------------------------

PageHandler = Callable[[RequestContext], func.HttpResponse]


def page(handler: PageHandler, *, upload: bool = False) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """Turn `handler(ctx) -> HttpResponse` into a Functions HTTP handler for a page. A
    domain error the handler does not turn into a page of its own becomes the error page
    with the matching status; a storage outage 503; anything else 500, never a traceback.
    A form's body may be as large as a JSON body; an `upload` form's as a file and its
    form fields."""

    def http_function(req: func.HttpRequest) -> func.HttpResponse:
        ctx = RequestContext(request=req, request_id=request_id(req), services=services())

        def work() -> func.HttpResponse:
            settings = ctx.services.settings
            body_limit = settings.resource_max_bytes + UPLOAD_OVERHEAD if upload else settings.max_json_body_bytes
            check_request_size(req, body_limit)
            check_route_values(req)
            return handler(ctx)

        return answer(ctx, work, error_page, lambda: render("error.html", 500, title="Something went wrong",
                      message="Something went wrong on our side. Please try again."))  # fmt: skip

    http_function.__name__ = handler.__name__
    http_function.__doc__ = handler.__doc__
    return http_function


SignedInHandler = Callable[[RequestContext, dict[str, str] | None], func.HttpResponse]


def session_of(ctx: RequestContext, session_cookie: str) -> Session | None:
    """The live session in the cookie, whatever its role and password age (for the
    sign-in pages: a signed-in visitor goes straight back)."""
    try:
        return ctx.services.authorizer.authorize(read_cookie(ctx.request, session_cookie), allow_expired_password=True)
    except errors.Unauthenticated:
        return None


def signed_in_page(
    session_cookie: str,
    login_base: Callable[[], str],
    refused: Callable[[RequestContext], func.HttpResponse],
    *,
    role: Role | None = None,
    allow_expired_password: bool = False,
    denied: Callable[[], str] | None = None,
    upload: bool = False,
) -> Callable[[SignedInHandler], Callable[[func.HttpRequest], func.HttpResponse]]:
    """A page behind a session cookie: no live session -> the login page under
    `login_base()` (coming back to this exact URL after a GET); a session refused its
    `role` (or its expired password) -> `denied()`, else the error page; a POST must carry
    the session's CSRF token, else `refused(ctx)`. The handler gets the context (with
    `session`) and, for a POST, the form (with `upload`, multipart too)."""

    def decorate(handler: SignedInHandler) -> Callable[[func.HttpRequest], func.HttpResponse]:
        def guarded(ctx: RequestContext) -> func.HttpResponse:
            try:
                ctx.session = ctx.services.authorizer.authorize(
                    read_cookie(ctx.request, session_cookie), role, allow_expired_password=allow_expired_password
                )
            except errors.Unauthenticated:
                base = login_base()
                back = public_path_and_query(ctx.request) if ctx.request.method == "GET" else base
                return redirect(login_url(back, base))
            except errors.Forbidden:
                if denied is None:
                    raise
                return redirect(denied())
            if ctx.request.method != "POST":
                return handler(ctx, None)
            form = read_form(ctx.request, files=upload)
            if not ctx.services.csrf.session_token_valid(ctx.session, form.get("csrfToken")):
                return refused(ctx)
            return handler(ctx, form)

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return page(guarded, upload=upload)

    return decorate


def error_page(error: errors.DomainError) -> func.HttpResponse:
    status, headers = status_of(error)
    message = page_message(error)
    titles = {403: "Not allowed", 404: "Not found", 429: "Too many attempts", 503: "Temporarily unavailable"}
    return render("error.html", status, headers, title=titles.get(status, "That did not work"), message=message)


def page_message(error: errors.DomainError) -> str:
    """What a page says of a domain error: its message, or for a refusal by a limit, when
    to try again in words."""
    if isinstance(error, errors.TooManyRequests):
        return f"Too many attempts. Try again in {minutes_text(error.retry_after_seconds)}."
    return error.message
