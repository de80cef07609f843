"""GET /api/health through the local host: 200 while storage answers, 503 in the envelope
during an outage, and back to 200 when storage returns, without restarting the host."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from devhost.azurite import Azurite
from shared.services import Services

pytestmark = pytest.mark.e2e


def poll_status(host, expected: int, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        response = host.client.get("/api/health")
        if response.status_code == expected or time.monotonic() > deadline:
            return response
        time.sleep(0.3)


def test_health_answers_200_through_the_host(host):
    response = host.client.get("/api/health")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "ok"


def test_a_storage_outage_is_a_503_and_recovery_needs_no_restart(
    tmp_path, launch_devhost, settings, app_settings_values
):
    # its own Azurite, keeping its data on disk so a restart finds it again
    azurite = Azurite.on_free_ports(location=tmp_path / "azurite").start()
    try:
        connection = azurite.connection_string
        app_settings = {**app_settings_values, "AzureWebJobsStorage": connection, "STORAGE_TIMEOUT_SECONDS": "1"}
        own_storage = settings.model_copy(update={"storage_connection_string": SecretStr(connection)})
        Services(own_storage).storage.ensure_created()
        with launch_devhost(app_settings) as host:
            assert poll_status(host, 200).status_code == 200

            azurite.stop()
            down = poll_status(host, 503)
            assert down.status_code == 503
            assert down.json()["error"] == "storage_unavailable"
            assert host.alive()

            azurite = Azurite(azurite.blob_port, azurite.queue_port, azurite.table_port, location=azurite.location)
            azurite.start()
            assert poll_status(host, 200).status_code == 200
            assert host.alive()
    finally:
        azurite.stop()
