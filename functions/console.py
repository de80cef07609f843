"""The admin console under /admin: sign in and out, and for role admin the landing page
(who is signed in, service status), cleanup jobs, the audit trail, codes per hour (with
revoke) and users (lock, unlock, role).

The app serves the console under /console: in Azure no function is ever routed a path
under /admin, which the Functions host keeps for its own admin API. Browsers use /admin
(CONSOLE_BASE_PATH) because the edge rewrites /admin/* to /console/*: Front Door in
Azure, the local host here (docs/decisions.md). Every link, redirect and cookie path is
built from CONSOLE_BASE_PATH; the host's own /admin/host, /admin/functions, /admin/vfs
and /admin/extensions are never console pages.

Sessions are the API's sessions (AccountService.login); the token travels in an HttpOnly,
SameSite=Strict cookie: `__Host-console_session` (Secure, Path=/) wherever cookies are
Secure, a bare `console_session` scoped to /admin on plain http://localhost
(functions/web.py, `cookie_name`). Every POST of a signed-in page carries a CSRF token
derived from the session (shared/auth/csrf.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

import azure.functions as func

from functions.html import render
from functions.http import RequestContext, status_of, usable_in_key, validate
from functions.schemas.admin import AuditQuery, JobsQuery, LiftBan
from functions.web import (
    DEVICE_COOKIE,
    SESSION_COOKIE,
    SignedInHandler,
    console_base,
    cookie,
    form_token,
    form_token_valid,
    page,
    page_message,
    public_path_and_query,
    read_cookie,
    read_form,
    redirect,
    return_url_within,
    session_of,
    signed_in_page,
)
from shared import errors
from shared.audit import AuditEventType
from shared.auth.authorization import Role
from shared.housekeeping.cleanup import JOB as CLEANUP_JOB

bp = func.Blueprint()

AREA = "console"  # browsers see CONSOLE_BASE_PATH (/admin): see the module docstring
AUDIT_PAGE_SIZE = 50
CHART_HOURS = 24
REFUSED = (
    "The form's security token is missing or not valid, so the request was refused. Reload the page and try again."
)
_CODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def route(rest: str = "") -> str:
    return f"{AREA}/{rest}" if rest else AREA


# --- who is signed in ----------------------------------------------------------------------


def console(*, admin: bool = True) -> Callable[[SignedInHandler], Callable]:
    """A console page: no session -> the login page (coming back to this exact URL after);
    a session without role admin -> /admin/denied; a POST must carry the session's CSRF
    token. The handler gets the context (with `session`) and, for a POST, the form."""
    return signed_in_page(
        SESSION_COOKIE,
        console_base,
        lambda ctx: console_render(ctx, "error.html", 403, title="Refused", message=REFUSED),
        role=Role.ADMIN if admin else None,
        allow_expired_password=not admin,
        denied=lambda: f"{console_base()}/denied",
    )


def console_render(ctx: RequestContext, template: str, status: int = 200, headers=None, **context) -> func.HttpResponse:
    """A signed-in page: the layout gets the nav, the logout form and its CSRF token."""
    session = ctx.session
    return render(
        template,
        status,
        headers,
        session=session,
        csrf_token=ctx.services.csrf.for_session(session) if session else None,
        admin=session is not None and ctx.services.authorizer.permits(session, Role.ADMIN),
        base=console_base(),
        path=public_path_and_query(ctx.request).split("?")[0].rstrip("/") or console_base(),
        when=when,
        roles=tuple(Role),
        **context,
    )


def when(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- sign in, sign out, denied ---------------------------------------------------------------


@bp.route(route=route("login"), methods=["GET", "POST"])
@page
def console_login(ctx: RequestContext) -> func.HttpResponse:
    """Sign in with email and password; then back to `returnUrl` (a console path)."""
    req = ctx.request
    if req.method == "GET":
        return_url = return_url_within(req.params.get("returnUrl"), console_base())
        session = session_of(ctx, SESSION_COOKIE)
        if session is not None:
            return redirect(return_url)
        return _login_form(ctx, return_url)
    form = read_form(req)
    return_url = return_url_within(form.get("returnUrl"), console_base())
    email = form.get("email", "")[:254]
    if not form_token_valid(req, form):
        return _login_form(
            ctx, return_url, email=email, status=403, error="This page was open too long; sign in again."
        )
    try:
        login = ctx.services.accounts.login(
            email,
            form.get("password", "")[:1024],
            client_ip=ctx.client_ip,
            device_token=read_cookie(req, DEVICE_COOKIE),
            request_id=ctx.request_id,
        )
    except (errors.TooManyRequests, errors.Unauthenticated, errors.Forbidden, errors.InvalidInput) as error:
        status, headers = status_of(error)
        return _login_form(ctx, return_url, email=email, status=status, error=page_message(error), headers=headers)
    response = redirect(return_url, headers={"Set-Cookie": cookie(SESSION_COOKIE, login.token, path=console_base())})
    # the known-device cookie: strangers' failed sign-ins never hold this browser back
    device_age = ctx.services.settings.device_token_days * 24 * 3600
    response.headers.add_header("Set-Cookie", cookie(DEVICE_COOKIE, login.device_token, max_age=device_age))
    return response


def _login_form(ctx, return_url: str, *, email: str = "", status: int = 200, error=None, headers=None):
    token, cookie_headers = form_token(ctx.request)
    return render("console/login.html", status, {**cookie_headers, **(headers or {})}, form_token=token,
                  return_url=return_url, email=email, error=error, base=console_base())  # fmt: skip


@bp.route(route=route("logout"), methods=["POST"])
@console(admin=False)
def console_logout(ctx: RequestContext, form) -> func.HttpResponse:
    """Sign out (POST with the CSRF token): the session ends and the cookie is cleared."""
    ctx.services.accounts.logout(ctx.session, request_id=ctx.request_id)
    cleared = cookie(SESSION_COOKIE, "", path=console_base(), max_age=0)
    return redirect(f"{console_base()}/login", headers={"Set-Cookie": cleared})


@bp.route(route=route("denied"), methods=["GET"])
@console(admin=False)
def console_denied(ctx: RequestContext, form) -> func.HttpResponse:
    """Signed in, but not as an admin."""
    profile = ctx.services.accounts.profile(ctx.session)
    return console_render(ctx, "console/denied.html", 403, profile=profile)


# --- landing -------------------------------------------------------------------------------


@bp.route(route=route(), methods=["GET"])
@console()
def console_home(ctx: RequestContext, form) -> func.HttpResponse:
    """Who is signed in, their role, and whether storage answers."""
    svc = ctx.services
    profile = svc.accounts.profile(ctx.session)
    storage = svc.storage.check()
    runs = svc.admin.job_runs(CLEANUP_JOB, JobsQuery(limit=1))["runs"]
    return console_render(ctx, "console/home.html", profile=profile, storage=storage,
                          last_run=runs[0] if runs else None)  # fmt: skip


# --- jobs ----------------------------------------------------------------------------------


@bp.route(route=route("jobs"), methods=["GET"])
@console()
def console_jobs(ctx: RequestContext, form) -> func.HttpResponse:
    """Cleanup runs, newest first, and a button to run cleanup now."""
    ran = ctx.request.params.get("ran")
    return _jobs(ctx, notice="Cleanup ran; its run is at the top of the list." if ran else None)


@bp.route(route=route("jobs/cleanup"), methods=["POST"])
@console()
def console_run_cleanup(ctx: RequestContext, form) -> func.HttpResponse:
    """Run cleanup now, then show the list (a reload does not run it again)."""
    run = ctx.services.cleanup.run()
    return redirect(f"{console_base()}/jobs?ran={run.run_id}")


def _jobs(ctx, *, notice: str | None = None) -> func.HttpResponse:
    runs = ctx.services.admin.job_runs(CLEANUP_JOB, JobsQuery(limit=25))["runs"]
    for run in runs:
        ended, started = run.get("endedAt"), run["startedAt"]
        run["duration"] = f"{(ended - started).total_seconds():.2f} s" if ended else "running"
    return console_render(ctx, "console/jobs.html", runs=runs, notice=notice)


# --- audit ---------------------------------------------------------------------------------


@bp.route(route=route("audit"), methods=["GET"])
@console()
def console_audit(ctx: RequestContext, form) -> func.HttpResponse:
    """Audit events filtered by time, type, outcome and user; paged."""
    params = ctx.request.params
    filters = {name: (params.get(name) or "").strip() for name in ("from", "to", "type", "outcome", "user")}
    page_number = int(params["page"]) if (params.get("page") or "").isdigit() and int(params["page"]) > 0 else 1
    raw = {name: value for name, value in filters.items() if value}
    for name in ("from", "to"):
        if name in raw and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?", raw[name]):
            raw[name] += "Z"  # the form's datetime-local fields are in UTC
    raw.update(limit=AUDIT_PAGE_SIZE, cursor=(page_number - 1) * AUDIT_PAGE_SIZE)
    error, result = None, None
    try:
        query = validate(AuditQuery, raw, "Some filters are not valid.")
        result = ctx.services.admin.audit_page(query)
    except errors.InvalidInput as problem:
        fields = ", ".join(sorted({d["field"] for d in problem.details or []}))
        error = problem.message + (f" Check: {fields}." if fields else "")

    def link(number: int) -> str:  # the same filters, another page
        return f"{console_base()}/audit?" + urlencode({**{k: v for k, v in filters.items() if v}, "page": number})

    return console_render(
        ctx,
        "console/audit.html",
        400 if error else 200,
        filters=filters,
        types=tuple(AuditEventType),
        page_number=page_number,
        result=result,
        error=error,
        previous_link=link(page_number - 1) if page_number > 1 else None,
        next_link=link(page_number + 1) if result and result["nextCursor"] is not None else None,
    )


# --- codes ---------------------------------------------------------------------------------


@bp.route(route=route("bans"), methods=["GET"])
@console()
def console_bans(ctx: RequestContext, form) -> func.HttpResponse:
    """Sources banned at the edge now, with a button to lift each ban."""
    return _bans(ctx)


@bp.route(route=route("bans/lift"), methods=["POST"])
@console()
def console_lift_ban(ctx: RequestContext, form) -> func.HttpResponse:
    """Lift one source's ban."""
    source = form.get("source", "").strip()
    try:
        validate(LiftBan, {"source": source}, "Not a source.")
        ctx.services.bans.lift(source, actor=ctx.session.user_id, request_id=ctx.request_id)
    except (errors.InvalidInput, errors.NotFound) as problem:
        return _bans(ctx, status=status_of(problem)[0], error=problem.message)
    return _bans(ctx, notice=f"The ban of {source} is lifted; the edge lets it through at its next refresh.")


def _bans(ctx, *, status: int = 200, error: str | None = None, notice: str | None = None) -> func.HttpResponse:
    return console_render(ctx, "console/bans.html", status, bans=ctx.services.bans.active(), error=error, notice=notice)


@bp.route(route=route("codes"), methods=["GET"])
@console()
def console_codes(ctx: RequestContext, form) -> func.HttpResponse:
    """Codes issued, redeemed and expired per hour (an SVG chart), and revoke by id."""
    return _codes(ctx)


@bp.route(route=route("codes/revoke"), methods=["POST"])
@console()
def console_revoke_code(ctx: RequestContext, form) -> func.HttpResponse:
    """Revoke a code by its id."""
    code_id = form.get("codeId", "").strip()
    if not _CODE_ID.match(code_id):
        return _codes(ctx, status=400, error="Type the code's id (codeId), not the code.")
    try:
        view = ctx.services.codes.revoke_by_id(code_id, actor=ctx.session.user_id, request_id=ctx.request_id)
    except (errors.NotFound, errors.Conflict) as problem:
        return _codes(ctx, status=status_of(problem)[0], error=problem.message)
    return _codes(ctx, notice=f"Code {code_id} is {view['state']}.")


def _codes(ctx, *, status: int = 200, error: str | None = None, notice: str | None = None) -> func.HttpResponse:
    activity = ctx.services.admin.code_activity(CHART_HOURS)
    return console_render(ctx, "console/codes.html", status, chart=bar_chart(activity), activity=activity,
                          error=error, notice=notice)  # fmt: skip


SERIES = ("issued", "redeemed", "expired")


def bar_chart(activity: list[dict], *, width: int = 720, height: int = 220) -> dict:
    """Geometry of a grouped bar chart (one group per hour, one bar per series), drawn by
    the template as inline SVG: no script, no chart library."""
    left, bottom, top = 40, 28, 10
    plot_height = height - bottom - top
    peak = max([1] + [hour[s] for hour in activity for s in SERIES])
    step = 10 ** max(0, len(str(peak)) - 1)
    scale_max = -(-peak // step) * step  # rounded up to a tidy number
    group = (width - left) / max(1, len(activity))
    bar = max(1.0, (group - 4) / len(SERIES))
    bars, labels = [], []
    for i, hour in enumerate(activity):
        x0 = left + i * group + 2
        for j, series in enumerate(SERIES):
            h = plot_height * hour[series] / scale_max
            bars.append({"x": round(x0 + j * bar, 1), "y": round(top + plot_height - h, 1), "width": round(bar, 1),
                         "height": round(h, 1), "series": series, "value": hour[series],
                         "hour": hour["hour"].strftime("%H:00")})  # fmt: skip
        if i % 3 == 0:
            labels.append({"x": round(x0 + group / 2 - 2, 1), "text": hour["hour"].strftime("%H:00")})
    ticks = [{"y": round(top + plot_height - plot_height * t / 2, 1), "value": scale_max * t // 2} for t in (0, 1, 2)]
    return {"width": width, "height": height, "left": left, "baseline": top + plot_height, "bars": bars,
            "labels": labels, "ticks": ticks, "series": SERIES, "label_y": height - 8}  # fmt: skip


# --- users ---------------------------------------------------------------------------------


@bp.route(route=route("users"), methods=["GET", "POST"])
@console()
def console_users(ctx: RequestContext, form) -> func.HttpResponse:
    """Find an account by email or id; lock, unlock or change its role."""
    accounts = ctx.services.accounts
    if form is None:
        query = (ctx.request.params.get("q") or "").strip()[:254]
        # an address is looked up by its hash; anything else is a user id, so a key
        user = accounts.find_user(query) if query and ("@" in query or usable_in_key(query)) else None
        error = "No account matches." if query and user is None else None
        return console_render(ctx, "console/users.html", 404 if error else 200, query=query, user=user, error=error,
                              resources=user_resources(ctx, user))  # fmt: skip
    user_id, action = form.get("userId", "")[:64], form.get("action", "")
    actions = {
        "lock": lambda: accounts.lock(user_id, actor=ctx.session.user_id, request_id=ctx.request_id),
        "unlock": lambda: accounts.unlock(user_id, actor=ctx.session.user_id, request_id=ctx.request_id),
        "role": lambda: accounts.set_role(user_id, _role(form.get("role")), actor=ctx.session.user_id,
                                          request_id=ctx.request_id),
    }  # fmt: skip
    if action not in actions:
        raise errors.InvalidInput("Unknown action.")
    if not usable_in_key(user_id):
        return console_render(ctx, "console/users.html", 404, query=user_id, user=None, error="No account matches.")
    try:
        user = actions[action]()
    except (errors.NotFound, errors.Conflict, errors.InvalidInput) as problem:
        return console_render(ctx, "console/users.html", status_of(problem)[0], query=user_id,
                              user=accounts.find_user(user_id), error=problem.message)  # fmt: skip
    done = {"lock": "locked; its sessions ended", "unlock": "unlocked", "role": f"now {user.role}; its sessions ended"}
    return console_render(ctx, "console/users.html", query=user.email, user=user, resources=user_resources(ctx, user),
                          notice=f"{user.email} is {done[action]}.")  # fmt: skip


def _role(value: str | None) -> Role:
    if value not in set(Role):
        raise errors.InvalidInput(f"The role must be {' or '.join(Role)}.")
    return Role(value)


# --- a user's resources: guessing on their guest links ---------------------------------------


def user_resources(ctx: RequestContext, user) -> list[dict]:
    """The user's resources, each with the guessing its guest link is under (the same
    figures as GET /api/resources)."""
    if user is None:
        return []
    svc = ctx.services
    return svc.resources.list_with_pressure(user.user_id, svc.codes, svc.pool)
