"""End-to-end fixtures: the local Functions host (`python -m devhost`) as a subprocess on a
free port, talking to a real Azurite.

    def test_something(host):
        response = host.client.get("/api/health")               # httpx.Client, base_url set
        host.client.get("/api/x", headers={"x-functions-key": host.function_key})
        host.fire("cleanup")                                     # run a timer function now
        host.fire("send_mail", input='{"to": "a@example.com"}')  # a queue function, this body

`host` serves the project's `function_app:app` against the session Azurite with the app
settings from `tests/conftest.py` (never local.settings.json). `launch_devhost(...)` starts
another host (other app, settings or options); use it as a context manager or let the end
of tests/e2e stop it.

Both are package-scoped: every host stops when the last test in tests/e2e has run. The
hosts here run on an Azurite of their own (`azurite`, `app_settings_values` and `settings`
are overridden for tests/e2e), so their timers and queue pollers, which consume
`mail-outbox`, never take mail or rows from the suites on the session's Azurite, whatever
order the tests run in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devhost.azurite import Azurite
from devhost.process import RunningHost, start_devhost
from shared.config import Settings
from shared.services import Services
from tests.conftest import app_settings_for, settings_from


@pytest.fixture(scope="package")
def azurite() -> Iterator[Azurite]:
    """The end-to-end tests' own Azurite (see above)."""
    with Azurite.on_free_ports() as emulator:
        yield emulator


@pytest.fixture(scope="package")
def app_settings_values(azurite: Azurite) -> dict[str, str]:
    return app_settings_for(azurite.connection_string)


@pytest.fixture(scope="package")
def settings(app_settings_values: dict[str, str]) -> Settings:
    """The hosts' settings in this process (the process environment keeps the session's)."""
    settings = settings_from(app_settings_values)
    Services(settings).storage.ensure_created()
    return settings


@pytest.fixture(scope="package")
def launch_devhost(tmp_path_factory) -> Iterator[Callable[..., RunningHost]]:
    """`launch_devhost(app_settings, app=..., args=...)` -> a started RunningHost; every
    host still running at the end of tests/e2e is stopped."""
    started: list[RunningHost] = []

    def launch(app_settings: dict[str, str], **options) -> RunningHost:
        log_path = tmp_path_factory.mktemp("devhost") / "host.log"
        host = start_devhost(app_settings, log_path, **options)
        started.append(host)
        return host

    yield launch
    for host in started:
        host.stop()


@pytest.fixture(scope="package")
def host(launch_devhost, settings, app_settings_values) -> RunningHost:
    """The project's app on the local host, on the end-to-end tests' Azurite (tables,
    containers and queues created)."""
    return launch_devhost(app_settings_values)
