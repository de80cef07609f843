"""The HTTP side of the local host: a Starlette app that routes each request to the app's
HTTP function, as the Functions host and its front end would.

- routes come from the function index (host.json's routePrefix in front);
- what the Functions host answers itself has an empty body, as in Azure: an unknown path
  and a method the route does not take are both 404 (the host routes on path and method
  together, Azure/azure-functions-host#10098), a missing or wrong key is 401, a function
  that raised is 500, a body over the front end's cap is 413;
- the path is decoded as ASP.NET Core decodes it: every escape but `%2F`, which stays
  encoded in route values, so `%23` (`#`) and `%3F` (`?`) reach the app inside them;
- query parameters and headers reach the function as the host hands them to the worker
  (`GrpcMessageConversionExtensions.ToRpcHttp`): repeated ones joined with `,`, query
  parameters whose value is empty dropped, names case-insensitive;
- `function` and `admin` auth levels need a key (`x-functions-key` header or `?code=`):
  the function key or the master key for `function`, the master key for `admin`;
- the request body is capped (Content-Length over the cap -> 413 before reading; a chunked
  body is read only up to the cap, then 413), and so is a JSON body of the admin API;
- the caller's address is appended to X-Forwarded-For, like the Azure front end;
- sync functions run on the Python worker's thread pool: `PYTHON_THREADPOOL_THREAD_COUNT`
  threads, by default min(32, cores + 4), ThreadPoolExecutor's own default, which the
  worker keeps on Python 3.9 and later;
- Set-Cookie headers reach the browser as the worker and host rewrite them: parsed into
  structured cookies by azure.functions, then written by ASP.NET Core with an empty
  `domain=` where the app set none (see `as_the_host_writes`);
- `POST /admin/functions/{name}` (master key, body `{"input": "..."}`) runs a timer or
  queue function now, and `GET /admin/host/status` (master key) says the host is up; unlike
  Core Tools, firing waits for the run and says in a JSON envelope when it failed;
- like the real host, no function is ever routed a path under /admin (that is the host's
  own admin API; the real host only lets /admin/warmup through); an edge in front of
  the app may rewrite paths first, as Azure Front Door does in infra/
  (DEVHOST_EDGE_REWRITES="/admin=/console": /admin/x reaches the app as /console/x);
- one log line per request: method, path (no query string), status, milliseconds.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import format_datetime, parsedate_to_datetime
from http.cookies import Morsel
from urllib.parse import parse_qsl, quote, unquote

import anyio
import azure.functions as func
from azure.functions.http import HttpResponseConverter
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devhost.index import ALL_METHODS, FunctionIndex, HttpFunction
from devhost.routes import RouteTemplate
from devhost.triggers import FunctionFailed, FunctionNotLoaded, Triggers

log = logging.getLogger("devhost")

DEFAULT_MAX_REQUEST_BODY_BYTES = 100 * 1024 * 1024  # the Azure front end's limit
ADMIN_BODY_BYTES = 1024 * 1024
FIRE_ROUTE = RouteTemplate.parse("admin/functions/{name}")
STATUS_ROUTE = RouteTemplate.parse("admin/host/status")


class BodyTooLarge(Exception):
    pass


@dataclass
class HostOptions:
    function_key: str | None = None
    master_key: str | None = None
    max_request_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_BYTES
    threads: int = field(default_factory=lambda: worker_thread_count(os.environ))
    # (public prefix, prefix the app serves) pairs, applied before routing, like the edge
    edge_rewrites: tuple[tuple[str, str], ...] = ()


def parse_edge_rewrites(spec: str) -> tuple[tuple[str, str], ...]:
    """Parse "/admin=/console,/a=/b" into (public prefix, app prefix) pairs."""
    pairs = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        public, sep, origin = item.partition("=")
        if not sep or not public.startswith("/") or not origin.startswith("/"):
            raise ValueError(f"DEVHOST_EDGE_REWRITES: {item!r} is not '/public=/origin'")
        pairs.append((public.rstrip("/"), origin.rstrip("/")))
    return tuple(pairs)


def worker_thread_count(environ: dict[str, str]) -> int:
    """Threads for sync functions, as the Python worker sizes its pool: a positive
    `PYTHON_THREADPOOL_THREAD_COUNT`, else (with a warning for a bad value)
    ThreadPoolExecutor's default, min(32, cores + 4)."""
    value = environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "")
    if value:
        if value.strip().isdigit() and int(value) >= 1:
            return int(value)
        log.warning("PYTHON_THREADPOOL_THREAD_COUNT must be an integer of 1 or more; using the default")
    return min(32, (os.cpu_count() or 1) + 4)


def host_answer(status: int) -> Response:
    """An answer the Functions host gives itself: a status and no body."""
    return Response(status_code=status)


def envelope(status: int, message: str, error: str) -> Response:
    """The local host's own admin API answers in the app's envelope (Core Tools has none)."""
    body = {"requestObject": None, "message": message, "error": error}
    return Response(json.dumps(body), status, media_type="application/json")


def joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Values per name as ASP.NET Core hands them on: names compared case-insensitively
    (the first spelling kept), repeated values joined with `,` (`StringValues.ToString`)."""
    spelling: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(spelling.setdefault(name.lower(), name), []).append(value)
    return {name: ",".join(each) for name, each in values.items()}


def query_params(query_string: str) -> dict[str, str]:
    """The worker's `params`: the host leaves out a parameter whose joined value is empty."""
    return {name: value for name, value in joined(parse_qsl(query_string, keep_blank_values=True)).items() if value}


class AnyPath(Convertor):
    """Every path, line breaks included: ASP.NET Core decodes `%0A` and routes the path
    on, so the function gets it and decides (Starlette's `path` stops at a line break)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("any_path", AnyPath())


def _under(path: str, prefix: str) -> bool:
    """`path` is `prefix` or below it, segment-wise and case-insensitively (ASP.NET's
    StartsWithSegments)."""
    path, prefix = path.lower(), prefix.lower()
    return path == prefix or path.startswith(prefix + "/")


_ENCODED_SLASH = re.compile(r"(%2[fF])")


def raw_path(request: Request) -> str:
    """The path as sent, still percent-encoded (no query string)."""
    raw = request.scope.get("raw_path")
    return raw.decode("latin-1") if raw else request.url.path


def decoded_path(raw: str) -> str:
    """Percent-decoded like ASP.NET Core's request path: every escape but `%2F`, which stays
    as sent (so an encoded slash never splits a segment)."""
    parts = _ENCODED_SLASH.split(raw)
    return "".join(part if _ENCODED_SLASH.fullmatch(part) else unquote(part, errors="replace") for part in parts)


def _same(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())


class DevHost:
    """The ASGI app plus what it needs at run time (worker threads, triggers)."""

    def __init__(self, index: FunctionIndex, triggers: Triggers, options: HostOptions):
        self.index = index
        self.triggers = triggers
        self.options = options
        self.pool: ThreadPoolExecutor | None = None
        self.app = Starlette(
            routes=[Route("/{path:any_path}", self.handle, methods=list(ALL_METHODS))],
            lifespan=self.lifespan,
            # what the catch-all route never sees (a method no function can take) is a
            # plain 404 too, not Starlette's text
            exception_handlers={404: self.unroutable, 405: self.unroutable},
        )

    async def unroutable(self, request: Request, _error: Exception) -> Response:
        log.info("%s %s %d", request.method, request.url.path, 404)
        return host_answer(404)

    @asynccontextmanager
    async def lifespan(self, _app):
        self.pool = ThreadPoolExecutor(self.options.threads, thread_name_prefix="devhost-worker")
        log.info("sync functions run on %d threads", self.options.threads)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self.triggers.run, self.pool)
                yield
                group.cancel_scope.cancel()
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    # --- requests ---------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            response = await self.dispatch(request)
        except BodyTooLarge:
            response = host_answer(413)
        except Exception:  # like the Functions host: a failing function is a 500
            log.exception("%s %s failed", request.method, request.url.path)
            response = host_answer(500)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s %s %d %.1fms", request.method, request.url.path, response.status_code, elapsed)
        return response

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path
        if request.method == "POST" and (params := FIRE_ROUTE.match(path)) is not None:
            return await self.fire(request, params["name"])
        if request.method == "GET" and STATUS_ROUTE.match(path) is not None:
            if not self.authorized(request, "admin"):
                return host_answer(401)
            names = sorted(f.name for f in (*self.index.http, *self.index.timers, *self.index.queues))
            return Response(json.dumps({"state": "Running", "functions": names}), media_type="application/json")

        raw = self.edge_rewrite(raw_path(request))
        path = self.edge_rewrite(decoded_path(raw_path(request)))
        if _under(path, "/admin") and not _under(path, "/admin/warmup"):
            return host_answer(404)
        for function in self.index.http:
            if request.method not in function.methods:
                continue
            route_params = function.route.match(path)
            if route_params is not None:
                return await self.call_http(request, function, route_params, raw)
        return host_answer(404)

    def edge_rewrite(self, path: str) -> str:
        for public, origin in self.options.edge_rewrites:
            if _under(path, public):
                return origin + path[len(public) :]
        return path

    def authorized(self, request: Request, auth_level: str) -> bool:
        if auth_level == "anonymous":
            return True
        given = request.headers.get("x-functions-key") or request.query_params.get("code")
        if _same(given, self.options.master_key):
            return True
        return auth_level == "function" and _same(given, self.options.function_key)

    async def read_body(self, request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise BodyTooLarge()
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge()
        return bytes(body)

    async def call_http(
        self, request: Request, function: HttpFunction, route_params: dict[str, str], raw: str | None = None
    ) -> Response:
        """Run the HTTP function; `raw` is the (rewritten) path as sent, still encoded."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.options.max_request_body_bytes:
            raise BodyTooLarge()  # before anything else, like the front end
        if not self.authorized(request, function.auth_level):
            return host_answer(401)
        body = await self.read_body(request, self.options.max_request_body_bytes)
        headers = joined(request.headers.items())
        client = request.client.host if request.client else "unknown"
        forwarded = headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded}, {client}" if forwarded else client
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = f"{request.url.scheme}://{request.url.netloc}{raw or raw_path(request)}" + (f"?{query}" if query else "")
        http_request = func.HttpRequest(
            request.method,
            url,
            headers=headers,
            params=query_params(query),
            route_params=route_params,
            body=body,
        )
        result = await function.invoke(http_request, self.pool)
        return to_response(result)

    # --- admin: run a non-HTTP function now ---------------------------------------------

    async def fire(self, request: Request, name: str) -> Response:
        """Core Tools' `POST /admin/functions/{name}`; answers 202 once the function has run
        (500 with error `function_failed` if it raised, `function_not_loaded` if its binding
        did not resolve)."""
        if not self.authorized(request, "admin"):
            return host_answer(401)
        if not self.triggers.knows(name):
            return host_answer(404)
        try:
            payload = json.loads(await self.read_body(request, ADMIN_BODY_BYTES) or b"{}")
            text = payload.get("input", "") if isinstance(payload, dict) else None
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            text = None
        if not isinstance(text, str):
            return envelope(400, 'The body must be {"input": "<string>"}.', "invalid_input")
        try:
            await self.triggers.fire(name, text, self.pool)
        except FunctionNotLoaded as error:
            return envelope(500, f"{name} is not loaded: {error}", "function_not_loaded")
        except FunctionFailed:
            return envelope(500, f"{name} failed; see the host log.", "function_failed")
        return Response(status_code=202)


def to_response(result: object) -> Response:
    """The function's return value as the worker converts it (azure.functions'
    HttpResponseConverter: str or bytes become the body, Set-Cookie headers become
    structured cookies) and the host then writes it."""
    if isinstance(result, str | bytes):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function returned {type(result).__name__}, not func.HttpResponse")
    converted = HttpResponseConverter.encode(result, expected_type=None).value
    headers = {name.lower(): datum.value for name, datum in converted["headers"].items()}
    response = Response(converted["body"].value, int(converted["status_code"].value), headers=headers)
    for cookie in converted["cookies"] or ():
        for name, morsel in cookie.items():
            response.headers.append("set-cookie", as_the_host_writes(name, morsel))
    return response


def as_the_host_writes(name: str, morsel: Morsel) -> str:
    """One structured cookie as the Functions host writes it with ASP.NET Core's
    SetCookieHeaderValue. The worker sends the domain and path as strings, empty where the
    app set none (`to_nullable_string("")`), so the header carries an empty `domain=`
    (Azure/azure-functions-python-worker#1902); the value is escaped as
    `Uri.EscapeDataString` does."""
    parts = [f"{name}={quote(morsel.value, safe='')}"]
    if morsel["expires"]:
        parts.append(f"expires={format_datetime(parsedate_to_datetime(morsel['expires']), usegmt=True)}")
    if morsel["max-age"] != "":
        parts.append(f"max-age={int(float(morsel['max-age']))}")
    parts += [f"domain={morsel['domain']}", f"path={morsel['path']}"]
    if morsel["secure"]:
        parts.append("secure")
    if str(morsel["samesite"]).lower() in ("lax", "strict", "none"):
        parts.append(f"samesite={str(morsel['samesite']).lower()}")
    if morsel["httponly"]:
        parts.append("httponly")
    return "; ".join(parts)
