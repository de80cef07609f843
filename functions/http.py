"""The HTTP edge, shared by every HTTP function: request parsing, authentication, the
response envelope, security headers, and the one place where errors become statuses.

Every JSON response is `{"requestObject", "message", "data"}` on success and
`{"requestObject", "message", "error"}` on failure, with secret fields redacted.
"""

import base64
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import azure.functions as func
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from pydantic import BaseModel, ValidationError

from shared import errors
from shared.auth.authorization import Role
from shared.auth.sessions import Session
from shared.limits.sources import forwarded_source
from shared.services import Services, services

log = logging.getLogger(__name__)

# Field names whose values never leave the server or reach a log.
SECRET_FIELDS = frozenset(
    name.lower()
    for name in (
        "password",
        "oldPassword",
        "newPassword",
        "code",
        "unlockCode",
        "token",
        "deviceToken",
        "authorization",
        "csrfToken",
        "secret",
    )
)
REDACTED = "***"

# Deepest nesting of arrays and objects a JSON body may have; deeper is 400 invalid_json
# before it is parsed, so nothing that walks request data (parsing, validation, redaction,
# the answer's encoding) ever recurses further than this.
MAX_JSON_DEPTH = 32
# An X-Request-Id is taken only in this shape (it reaches logs and the audit); otherwise
# the request gets a fresh one.
REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# What Azure Table Storage refuses in a PartitionKey or RowKey (it answers 400): route
# values, and query values that become keys, are checked against it at the edge.
NOT_IN_TABLE_KEYS = re.compile(r"[#/\\?\x00-\x1f\x7f-\x9f]")
MAX_KEY_VALUE_CHARS = 512  # a key holds at most 1 KiB
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.PayloadTooLarge: 413,
    errors.UriTooLong: 414,
    errors.HeadersTooLarge: 431,
    errors.UnsupportedMediaType: 415,
    errors.TooManyRequests: 429,
    errors.StorageUnavailable: 503,
}


def redact(value: Any, depth: int = 0) -> Any:
    """`value` with every secret field's value replaced; containers nested deeper than any
    accepted body (MAX_JSON_DEPTH) are replaced whole, so this never recurses far."""
    if isinstance(value, dict | list) and depth >= MAX_JSON_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        return {k: REDACTED if str(k).lower() in SECRET_FIELDS else redact(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item, depth + 1) for item in value]
    return value


def request_id(req: func.HttpRequest) -> str:
    """The caller's X-Request-Id if it has the accepted shape, else a fresh one."""
    sent = req.headers.get("x-request-id") or ""
    return sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex


def usable_in_key(value: str | None) -> bool:
    """Whether `value` can be (part of) a table key: not empty, not too long, and without
    what Table Storage refuses (`#`, `/`, `\\`, `?`, control characters). The one check
    for every route value and every query or form value that becomes a key."""
    return bool(value) and len(value) <= MAX_KEY_VALUE_CHARS and NOT_IN_TABLE_KEYS.search(value) is None


def check_route_values(req: func.HttpRequest) -> None:
    """A route value that can never name a stored thing (see `usable_in_key`) is 404."""
    for value in req.route_params.values():
        if value and not usable_in_key(value):
            raise errors.NotFound("Nothing is served at this address.")


def security_headers(*, html: bool = False) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    if not services().settings.is_local:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if html:
        headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )
    return headers


@dataclass
class Reply:
    """What a handler returns: the status, a human message and the payload."""

    message: str
    data: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RequestContext:
    """One request as a handler sees it, with the process's services: handlers reach
    every use case through `ctx.services`, never through the global."""

    request: func.HttpRequest
    request_id: str
    services: Services
    request_object: Any = None
    session: Session | None = None
    query: BaseModel | None = None

    @property
    def client_ip(self) -> str:
        """The client's source for limits and the audit (shared/limits/sources.py): an IPv4
        address, an IPv6 /64, or the one bucket of what does not parse."""
        settings = self.services.settings
        return forwarded_source(
            self.request.headers.get("x-forwarded-for"), settings.trusted_proxy_count, settings.ipv6_prefix_length
        )


def _json_value(value: Any) -> str:
    """Times as ISO 8601 ("2026-11-21T12:00:00+00:00", the OpenAPI `date-time`), the rest as text."""
    return value.isoformat() if isinstance(value, date) else str(value)


def json_response(body: dict, status: int, headers: dict[str, str] | None = None) -> func.HttpResponse:
    all_headers = {**security_headers(), "Cache-Control": "no-store", **(headers or {})}
    return func.HttpResponse(
        json.dumps(body, default=_json_value), status_code=status, mimetype="application/json", headers=all_headers
    )


def envelope(request_object: Any, message: str, *, data: Any = None, error: str | None = None) -> dict:
    body: dict[str, Any] = {"requestObject": redact(request_object), "message": message}
    if error is None:
        body["data"] = data
    else:
        body["error"] = error
    return body


def status_of(error: errors.DomainError) -> tuple[int, dict[str, str]]:
    """The HTTP status of a domain error (its nearest mapped class; 400 otherwise) and the
    headers every answer to it carries, for the API and the pages alike."""
    status = next((STATUS_BY_ERROR[c] for c in type(error).__mro__ if c in STATUS_BY_ERROR), 400)
    headers = {}
    if isinstance(error, errors.TooManyRequests):
        headers["Retry-After"] = str(error.retry_after_seconds)
    return status, headers


def error_response(ctx: RequestContext, error: errors.DomainError, *, basic_auth: bool = False) -> func.HttpResponse:
    status, headers = status_of(error)
    body = envelope(ctx.request_object, error.message, error=error.code)
    if error.details is not None:
        body["details"] = error.details
    if isinstance(error, errors.Unauthenticated):
        headers["WWW-Authenticate"] = 'Basic realm="api"' if basic_auth else 'Bearer realm="api"'
    return json_response(body, status, headers)


def storage_failure(error: Exception) -> bool:
    """Storage unreachable or failing on its side: the caller gets 503, not 500."""
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return True
    return isinstance(error, HttpResponseError) and (error.status_code or 0) >= 500


def answer(
    ctx: RequestContext,
    work: Callable[[], func.HttpResponse],
    failure: Callable[[errors.DomainError], func.HttpResponse],
    crash: Callable[[], func.HttpResponse],
) -> func.HttpResponse:
    """What every HTTP function answers: `work()`, or for a domain error `failure(error)`,
    for a storage outage `failure(StorageUnavailable())` (503), and for anything else,
    logged, `crash()` (500): never a traceback."""
    try:
        return work()
    except errors.DomainError as error:
        return failure(error)
    except Exception as error:
        if storage_failure(error):
            log.warning("storage unavailable (%s) request=%s", type(error).__name__, ctx.request_id)
            return failure(errors.StorageUnavailable())
        log.exception("unhandled error request=%s", ctx.request_id)
        return crash()


def check_request_size(req: func.HttpRequest, body_limit: int | None = None) -> None:
    """Query string, headers and, with `body_limit`, the body: the declared Content-Length
    is checked before anything reads the body (and before authentication)."""
    settings = services().settings
    query = req.url.partition("?")[2]
    if len(query.encode()) > settings.max_query_string_bytes:
        raise errors.UriTooLong()
    if sum(len(name) + len(value) for name, value in req.headers.items()) > settings.max_header_bytes:
        raise errors.HeadersTooLarge()
    if body_limit is not None:
        declared = (req.headers.get("content-length") or "").strip()
        if (declared.isdigit() and int(declared) > body_limit) or len(req.get_body()) > body_limit:
            raise errors.PayloadTooLarge(f"The request body is larger than {body_limit} bytes.")


def check_query_values(req: func.HttpRequest) -> None:
    """No query value holds a control character (none is ever meaningful in one)."""
    if any(CONTROL_CHARACTERS.search(value) for value in req.params.values()):
        raise errors.InvalidInput("A query parameter holds a control character.", code="invalid_query")


def nested_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects deeper than `limit` (brackets inside
    strings do not count). A scan without recursion, done before the body is parsed."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def parse_body(ctx: RequestContext, model: type[BaseModel]) -> BaseModel:
    """Decode and validate a JSON body into the model. The raw object goes into
    `ctx.request_object` before validation, so a refusal echoes it too (redacted).

    The size cap is checked on the declared length first, so a huge body is refused
    before anything looks at it; nesting deeper than MAX_JSON_DEPTH is refused before
    parsing."""
    req = ctx.request
    check_request_size(req, services().settings.max_json_body_bytes)
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    raw_body = req.get_body()
    if content_type != "application/json" and not (content_type == "" and not raw_body):
        raise errors.UnsupportedMediaType()
    if nested_deeper_than(raw_body, MAX_JSON_DEPTH):
        raise errors.InvalidInput(
            f"The body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels.", code="invalid_json"
        )
    try:
        raw = json.loads(raw_body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise errors.InvalidInput("The body is not valid JSON.", code="invalid_json") from None
    ctx.request_object = raw
    return validate(model, raw, "Some fields are not valid.")


def validate(model: type[BaseModel], raw: Any, message: str) -> BaseModel:
    """Validate into `model`; problems name the field, never echo the value."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(p) for p in item["loc"]) or "body", "problem": item["msg"]}
            for item in error.errors(include_input=False, include_url=False, include_context=False)
        ]
        raise errors.InvalidInput(message, details=problems) from None


def bearer_token(req: func.HttpRequest) -> str | None:
    scheme, _, value = (req.headers.get("authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def basic_credentials(req: func.HttpRequest) -> tuple[str, str]:
    """(user, password) from HTTP Basic, or Unauthenticated."""
    scheme, _, value = (req.headers.get("authorization") or "").partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        if not sep or not user:
            raise ValueError
    except (ValueError, UnicodeDecodeError):
        raise errors.Unauthenticated("HTTP Basic credentials (email:password) are required.") from None
    return user, password


Handler = Callable[..., Reply]


@dataclass(frozen=True)
class ApiSpec:
    """What the OpenAPI document says of an endpoint, read from the same decorator."""

    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    auth: bool
    role: Role | None
    basic_auth: bool
    raw_body: bool
    summary: str


def api(
    body: type[BaseModel] | None = None,
    *,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    auth: bool = False,
    role: Role | None = None,
    allow_expired_password: bool = False,
    basic_auth: bool = False,
    raw_body: bool = False,
) -> Callable[[Handler], Callable[[func.HttpRequest], func.HttpResponse]]:
    """Turn `handler(ctx[, model]) -> Reply` into a Functions HTTP handler.

    `body` validates a JSON body (passed as the second argument), `query` the query
    string (in `ctx.query`). `auth` requires a live bearer session (in `ctx.session`),
    `role` a role on it; a session whose password expired may only call endpoints that
    allow it. `response`, `basic_auth` (the handler reads Basic credentials) and
    `raw_body` (a non-JSON upload) only describe the endpoint in the OpenAPI document.
    The wrapper keeps the signature the Python worker binds (`req`), so it goes under
    `route`.
    """

    def decorate(handler: Handler) -> Callable[[func.HttpRequest], func.HttpResponse]:
        def http_function(req: func.HttpRequest) -> func.HttpResponse:
            ctx = RequestContext(request=req, request_id=request_id(req), services=services())

            def work() -> func.HttpResponse:
                settings = ctx.services.settings
                check_request_size(req, settings.resource_max_bytes if raw_body else settings.max_json_body_bytes)
                check_route_values(req)
                check_query_values(req)
                if query is not None:
                    ctx.query = validate(query, dict(req.params), "Some query parameters are not valid.")
                if auth or role:
                    ctx.session = ctx.services.authorizer.authorize(
                        bearer_token(req), role, allow_expired_password=allow_expired_password
                    )
                reply = handler(ctx) if body is None else handler(ctx, parse_body(ctx, body))
                return json_response(
                    envelope(ctx.request_object, reply.message, data=reply.data), reply.status, reply.headers
                )

            return answer(
                ctx,
                work,
                lambda error: error_response(ctx, error, basic_auth=basic_auth),
                lambda: json_response(
                    envelope(ctx.request_object, "Something went wrong on our side.", error="internal_error"), 500
                ),
            )

        http_function.__name__ = handler.__name__
        http_function.__doc__ = handler.__doc__
        http_function.api_spec = ApiSpec(
            body=body,
            query=query,
            response=response,
            auth=auth or role is not None,
            role=role,
            basic_auth=basic_auth,
            raw_body=raw_body,
            summary=(handler.__doc__ or handler.__name__).strip(),
        )
        return http_function

    return decorate
