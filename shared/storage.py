"""Storage clients, created once per process and only when first used.

A connection string (Azurite locally, `UseDevelopmentStorage=true` understood) wins;
without one the account's endpoints are used with `DefaultAzureCredential`, which is
the managed identity in Azure, where shared keys are disabled.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import requests
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient, LinearRetry

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueServiceClient

    from shared.config import Settings

# What the app stores where. Azure creates these from infra/; locally `ensure_created` does.
DEV_MAILBOX_TABLE = "devmailbox"  # local only: the dev mailbox's mail
TABLES = (
    "users", "sessions", "activations", "resources", "codes", "expiry", "ratelimits", "jobs", "verifiers", "bans",
    DEV_MAILBOX_TABLE,
)  # fmt: skip
AUDIT_CONTAINER = "audit"
RESOURCES_CONTAINER = "resources"
CONTAINERS = (AUDIT_CONTAINER, RESOURCES_CONTAINER)
MAIL_QUEUE = "mail-outbox"
QUEUES = (MAIL_QUEUE, f"{MAIL_QUEUE}-poison")

# Azurite's documented well-known development account (not a secret).
EMULATOR_ACCOUNT = "devstoreaccount1"
EMULATOR_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def emulator_connection_string(blob_port: int = 10000, queue_port: int = 10001, table_port: int = 10002) -> str:
    endpoint = f"http://127.0.0.1:{{}}/{EMULATOR_ACCOUNT}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={EMULATOR_ACCOUNT};AccountKey={EMULATOR_KEY};"
        f"BlobEndpoint={endpoint.format(blob_port)};QueueEndpoint={endpoint.format(queue_port)};"
        f"TableEndpoint={endpoint.format(table_port)};"
    )


# One HTTP connection pool for all clients, sized for a busy instance.
POOL_SIZE = 256


def expand_connection_string(value: str) -> str:
    if value.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
        return emulator_connection_string()
    return value


@dataclass
class Storage:
    """The process's storage clients. Build one per process (see `shared.services`)."""

    settings: Settings
    # Called with every outgoing storage request (azure-core's `raw_request_hook`): tests
    # count and inspect the requests a use case makes.
    request_hook: Callable[[PipelineRequest], None] | None = None

    @cached_property
    def _client_options(self) -> dict:
        session = requests.Session()
        # With no proxy configured, stop requests from re-reading the environment (proxy
        # variables, .netrc, CA bundle) on every call: a profile put that at an eighth of
        # the CPU of a storage call under load.
        session.trust_env = bool(urllib.request.getproxies())
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=POOL_SIZE)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        timeout = self.settings.storage_timeout_seconds
        return {
            "transport": RequestsTransport(session=session, session_owner=False),
            "connection_timeout": timeout,
            "read_timeout": timeout * 2,
            # fail fast during an outage: the caller answers 503 and the client retries
            "retry_total": 2,
            "retry_backoff_factor": 0.2,
            **({"raw_request_hook": self.request_hook} if self.request_hook else {}),
        }

    def _storage_options(self) -> dict:
        """Blob and queue clients ignore retry_backoff_factor: their own retry policy waits
        15 s and more between tries. Give them short waits too, so an outage is a quick 503."""
        retry = LinearRetry(backoff=0.2, random_jitter_range=0.1, retry_total=2)
        return {**self._client_options, "retry_policy": retry}

    @cached_property
    def _connection_string(self) -> str | None:
        secret = self.settings.storage_connection_string
        return expand_connection_string(secret.get_secret_value()) if secret else None

    @cached_property
    def _credential(self):
        from azure.identity import DefaultAzureCredential  # only needed in Azure

        return DefaultAzureCredential(managed_identity_client_id=self.settings.storage_client_id)

    def _endpoint(self, service: str) -> str:
        return f"https://{self.settings.storage_account_name}.{service}.core.windows.net"

    @cached_property
    def tables(self) -> TableServiceClient:
        if self._connection_string:
            return TableServiceClient.from_connection_string(self._connection_string, **self._client_options)
        return TableServiceClient(self._endpoint("table"), credential=self._credential, **self._client_options)

    @cached_property
    def blobs(self) -> BlobServiceClient:
        if self._connection_string:
            return BlobServiceClient.from_connection_string(self._connection_string, **self._storage_options())
        return BlobServiceClient(self._endpoint("blob"), credential=self._credential, **self._storage_options())

    @cached_property
    def queues(self) -> QueueServiceClient:
        # only mail (and the health probe) use queues: importing the app need not load their SDK
        from azure.storage.queue import QueueServiceClient, TextBase64EncodePolicy

        # Base64 bodies: what the Functions host's queue trigger expects by default.
        options = {**self._storage_options(), "message_encode_policy": TextBase64EncodePolicy()}
        if self._connection_string:
            return QueueServiceClient.from_connection_string(self._connection_string, **options)
        return QueueServiceClient(self._endpoint("queue"), credential=self._credential, **options)

    def table(self, name: str) -> TableClient:
        return self.tables.get_table_client(name)

    def container(self, name: str) -> ContainerClient:
        return self.blobs.get_container_client(name)

    def queue(self, name: str) -> QueueClient:
        from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy  # see `queues`

        # The service client's encode policy does not carry over to the queue clients it
        # hands out: set it (and the matching decode) here, so bodies are Base64 as the
        # Functions host's queue trigger expects.
        return self.queues.get_queue_client(
            name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )

    def ensure_created(self) -> None:
        """Create missing tables, containers and queues (local only; idempotent)."""
        for name in TABLES:
            self.tables.create_table_if_not_exists(name)
        for name in CONTAINERS:
            with suppress(ResourceExistsError):
                self.blobs.create_container(name)
        for name in QUEUES:
            with suppress(ResourceExistsError):
                self.queues.create_queue(name)

    def check(self) -> dict[str, bool]:
        """One cheap call per service: is each one answering?"""

        def probe_table() -> None:
            with suppress(ResourceNotFoundError):  # an answer is all we need
                self.table("jobs").get_entity("health", "probe")

        results = {}
        for service, probe in (
            ("tables", probe_table),
            ("blobs", lambda: self.container(AUDIT_CONTAINER).get_container_properties()),
            ("queues", lambda: self.queue(MAIL_QUEUE).get_queue_properties()),
        ):
            try:
                probe()
                results[service] = True
            except Exception:  # noqa: BLE001 - any failure means "not answering"
                results[service] = False
        return results
