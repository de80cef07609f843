"""Fixtures shared by every test: a real Azurite for the session, settings pointing at
it, and `Services` objects with a clock the test controls."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from devhost.azurite import Azurite
from shared.clock import ManualClock
from shared.config import Settings, get_settings
from shared.services import Services


def app_settings_for(connection_string: str) -> dict[str, str]:
    """App settings for a test process: everything the app needs, fresh keys each run."""
    return {
        "APP_ENVIRONMENT": "local",
        "AzureWebJobsStorage": connection_string,
        "HMAC_KEYS": "t1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "HMAC_ACTIVE_KEY_ID": "t1",
        "INSTANCE_ID": "pytest",
        # the local environment's mail: the dev mailbox (GET /api/dev/mailbox)
        "MAIL_PROVIDER": "devmailbox",
        "DEV_MAILBOX_ENABLED": "true",
        "BCRYPT_COST": "10",  # the lowest the settings allow: keeps the suite fast
        # no third party in the suite: the breach check's own tests run a fake of it
        "PWNED_PASSWORDS_ENABLED": "false",
        "COOKIE_SECURE": "false",  # the pages are served over http://127.0.0.1 in tests
        # the local host rewrites /admin to the console's /console, as Front Door does in Azure
        "DEVHOST_EDGE_REWRITES": "/admin=/console",
        # Codes: tests race many guests over one resource from one address, so the code
        # limits are generous here; the abuse tests set the real ones explicitly.
        **GENEROUS_CODE_LIMITS,
    }


GENEROUS_CODE_LIMITS = {
    "LIMIT_ISSUE_PER_USER": "1000000/1h",
    "LIMIT_ISSUE_PER_IP": "1000000/1h",
    "LIMIT_REDEEM_ATTEMPTS_PER_RESOURCE": "1000000/5m",
    "LIMIT_REDEEM_ATTEMPTS_PER_RESOURCE_AND_IP": "1000000/5m",
    "LIMIT_REDEEM_FAILURES_PER_IP": "1000000/10m",
    "LIMIT_REDEEM_FAILURES_GLOBAL": "1000000/5m",
    "MAX_ACTIVE_CODES_PER_RESOURCE": "100000",
}


def settings_from(values: dict[str, str]) -> Settings:
    """`Settings` for these app settings whatever this process's environment says (which
    the session's `settings` fill)."""
    aliases = {"AzureWebJobsStorage", "INSTANCE_ID"}  # by field name they would lose to the environment
    return Settings(_env_file=None, **{key if key in aliases else key.lower(): value for key, value in values.items()})


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite.on_free_ports() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def app_settings_values(azurite: Azurite) -> dict[str, str]:
    values = app_settings_for(azurite.connection_string)
    os.environ.update(values)  # for code that reads settings through get_settings()
    get_settings.cache_clear()
    return values


@pytest.fixture(scope="session")
def settings(app_settings_values: dict[str, str]) -> Settings:
    settings = get_settings()
    Services(settings).storage.ensure_created()
    return settings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))


@pytest.fixture
def make_services(settings: Settings, clock: ManualClock) -> Callable[..., Services]:
    """Services on the session's Azurite; keyword arguments override settings."""

    def build(**overrides) -> Services:
        return Services(settings.model_copy(update=overrides), clock=clock)

    return build


@pytest.fixture
def svc(make_services) -> Services:
    return make_services()
