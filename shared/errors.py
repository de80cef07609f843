"""Domain errors. Each carries a stable machine-readable code and a message safe to show;
`functions/http.py` maps them to HTTP statuses in one place (`status_of`), for the
API and the pages. Never put a secret in one."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    message = "The request failed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: Any = None):
        self.message = message or type(self).message
        self.code = code or type(self).code
        self.details = details
        super().__init__(self.message)


class InvalidInput(DomainError):
    code = "invalid_input"
    message = "The request is not valid."


class Unauthenticated(DomainError):
    code = "unauthenticated"
    message = "Authentication is required."


class Forbidden(DomainError):
    code = "forbidden"
    message = "You may not do this."


class NotFound(DomainError):
    code = "not_found"
    message = "Not found."


class Conflict(DomainError):
    code = "conflict"
    message = "The request conflicts with the current state."


class Gone(DomainError):
    code = "gone"
    message = "This is no longer available."


class TooManyRequests(DomainError):
    code = "rate_limited"
    message = "Too many requests; try again later."

    def __init__(self, retry_after_seconds: int, message: str | None = None, *, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after_seconds = max(1, int(retry_after_seconds))


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    message = "The request body is too large."


class UriTooLong(DomainError):
    code = "uri_too_long"
    message = "The query string is too long."


class HeadersTooLarge(DomainError):
    code = "headers_too_large"
    message = "The request headers are too large."


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    message = "The request body must be JSON (Content-Type: application/json)."


class StorageUnavailable(DomainError):
    code = "storage_unavailable"
    message = "Storage is unavailable; try again shortly."
