"""The fuzz target: the project's app on its own local host and its own fresh Azurite,
with rate limits so generous that no generated case is turned away with 429, and
credentials for every security scheme the OpenAPI document declares.

    FUZZ_MAX_EXAMPLES=200 pytest tests/fuzz     # what `make fuzz` runs

The number of cases sent per operation is printed at the end of the run.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from pydantic import SecretStr
from schemathesis.config import SchemathesisConfig

from devhost.azurite import Azurite
from devhost.process import RunningHost, start_devhost
from shared.services import Services

# Generated cases per operation in the fuzzing phase (the examples and coverage phases
# add their own); `make fuzz` raises it.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "15"))

PASSWORD = "violet-Harbor-engine-42"
GENEROUS = "1000000/1h"
GENEROUS_LIMITS = {
    name: GENEROUS
    for name in (
        "LIMIT_REGISTER_PER_IP",
        "LIMIT_LOGIN_FAILURES_PER_IP",
        "LIMIT_LOGIN_FAILURES_PER_IP_AND_ACCOUNT",
        "LIMIT_LOGIN_FAILURES_PER_ACCOUNT",
        "LIMIT_ACTIVATION_PER_IP",
        "LIMIT_RESEND_PER_IP",
        "LIMIT_ISSUE_PER_USER",
        "LIMIT_ISSUE_PER_IP",
        "LIMIT_REDEEM_FAILURES_PER_IP",
        "LIMIT_REDEEM_ATTEMPTS_PER_RESOURCE",
        "LIMIT_REDEEM_ATTEMPTS_PER_RESOURCE_AND_IP",
        "LIMIT_REDEEM_FAILURES_GLOBAL",
        "LIMIT_LOGIN_FAILURES_PER_ACCOUNT_DAILY",
        "LIMIT_LOGIN_FAILURES_PER_DEVICE",
        "LIMIT_UNLOCK_PER_IP",
        "LIMIT_UNLOCK_MAILS_PER_ACCOUNT",
        "LIMIT_PASSWORD_CHANGE_ATTEMPTS_PER_ACCOUNT",
        "LIMIT_REGISTRATION_MAILS_PER_RECIPIENT",
        "LIMIT_REGISTRATION_MAILS_PER_RECIPIENT_DAILY",
        "LIMIT_REGISTRATION_MAILS_GLOBAL",
    )
} | {
    "ACTIVATION_RESEND_COOLDOWN_SECONDS": "0",
    "ACTIVATION_SENDS_PER_HOUR": "50",
    "MAX_ACTIVE_CODES_PER_RESOURCE": "100",
}

# cases sent, by operation ("POST /api/users"), for the summary
CASES: Counter[str] = Counter()


@dataclass
class FuzzTarget:
    host: RunningHost
    svc: Services
    user_token: str
    admin_token: str
    user_id: str
    pending_email: str

    def fresh_token(self) -> str:
        """A new session of the fuzz user (for operations that end the session they use)."""
        token, _ = self.svc.sessions.create(self.user_id, "user")
        return token


def _user(svc: Services, email: str, *, role: str, active: bool):
    svc.accounts.register(email, PASSWORD)
    user = svc.accounts.find_user(email)
    if active:
        now = svc.clock.now()
        user = svc.users.update(user, status="active", activated_at=now, role=role)
    return user


@pytest.fixture(scope="package")
def fuzz_target(settings, app_settings_values, tmp_path_factory) -> Iterator[FuzzTarget]:
    with Azurite.on_free_ports() as storage:
        values = {
            **app_settings_values,
            "AzureWebJobsStorage": storage.connection_string,
            # behind one more proxy, as behind Front Door: the fuzzed X-Forwarded-For entry
            # is taken as the client's address
            "TRUSTED_PROXY_COUNT": "2",
            **GENEROUS_LIMITS,
        }
        svc = Services(settings.model_copy(update={"storage_connection_string": SecretStr(storage.connection_string)}))
        svc.storage.ensure_created()
        user = _user(svc, "fuzz.user@example.com", role="user", active=True)
        admin = _user(svc, "fuzz.admin@example.com", role="admin", active=True)
        _user(svc, "fuzz.pending@example.com", role="user", active=False)
        log_path = tmp_path_factory.mktemp("fuzz") / "host.log"
        with start_devhost(values, log_path) as host:
            yield FuzzTarget(
                host=host,
                svc=svc,
                user_token=svc.sessions.create(user.user_id, "user")[0],
                admin_token=svc.sessions.create(admin.user_id, "admin")[0],
                user_id=user.user_id,
                pending_email="fuzz.pending@example.com",
            )


# What refusing data the document rules out may look like: the usual 4xx, plus the edge's
# size limits (a long enough value makes the query string or the headers too large).
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 414, 415, 422, 429, 431]
CONFIG = {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}


def credentials(target: FuzzTarget, case) -> dict[str, str]:
    """Headers for the security schemes the operation declares."""
    return operation_credentials(target, case.operation.label, case.operation.definition.raw)


def operation_credentials(target: FuzzTarget, label: str, operation: dict) -> dict[str, str]:
    """Headers for the security schemes an operation of the document declares; `label`
    is "METHOD /path" as in the document."""
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    headers: dict[str, str] = {}
    if "bearer" in schemes:
        # a user's session of its own for each case: logging out ends the session it uses,
        # and wrong old passwords to POST /api/users/me/password end the session that tried
        admin = label.split(" ", 1)[1].startswith("/api/admin/")
        token = target.admin_token if admin else target.fresh_token()
        headers["authorization"] = f"Bearer {token}"
    if "basic" in schemes:
        pair = f"{target.pending_email}:{PASSWORD}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
    if "functionKey" in schemes:
        headers["x-functions-key"] = target.host.function_key
    return headers


@pytest.fixture(scope="package")
def fuzz_schema(fuzz_target: FuzzTarget):
    schema = schemathesis.openapi.from_url(
        f"{fuzz_target.host.url}/api/openapi.json", config=SchemathesisConfig.from_dict(CONFIG)
    )

    @schema.auth(refresh_interval=None)
    class Credentials:
        """Every case carries valid credentials, so it reaches the handler."""

        def get(self, case, context) -> FuzzTarget:
            return fuzz_target

        def set(self, case, target: FuzzTarget, context) -> None:
            case.headers = {**(case.headers or {}), **credentials(target, case)}

    return schema


def pytest_terminal_summary(terminalreporter) -> None:
    if CASES:
        terminalreporter.write_sep("-", f"fuzz cases sent per operation (FUZZ_MAX_EXAMPLES={MAX_EXAMPLES})")
        for label, count in sorted(CASES.items()):
            terminalreporter.write_line(f"{count:6d}  {label}")
