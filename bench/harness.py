"""What every scenario shares: Azurite on free ports, app settings for a benchmark run,
the local host as a subprocess, and two load generators with bounded concurrency: HTTP
requests against the host (asyncio + one httpx connection pool) and direct storage calls
(a thread pool, for the floor)."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.stats import Call, Run
from devhost.azurite import Azurite
from devhost.process import RunningHost, start_devhost

# A limit no benchmark reaches: the throughput scenarios measure the service, not its brakes.
GENEROUS = 9_999_999  # the largest count a rate setting takes


def generous_limits() -> dict[str, str]:
    """Every rate-limit setting (`LIMIT_*`, "count/window" or a count) raised out of reach,
    keeping its window, so the limiter still does its storage work on every request."""
    from shared.config import Settings

    values: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        if not name.startswith("limit_"):
            continue
        default = info.default
        if isinstance(default, str) and "/" in default:
            values[name.upper()] = f"{GENEROUS}/{default.partition('/')[2]}"
        elif isinstance(default, int) and not isinstance(default, bool):
            values[name.upper()] = str(_largest_allowed(info, GENEROUS))
    return values


def _largest_allowed(info: Any, wanted: int) -> int:
    for rule in info.metadata:
        for attribute in ("le", "lt"):
            bound = getattr(rule, attribute, None)
            if bound is not None:
                wanted = min(wanted, bound if attribute == "le" else bound - 1)
    return wanted


def app_settings(connection_string: str, **overrides: str) -> dict[str, str]:
    """App settings for a benchmark host and for direct storage access in this process."""
    return {
        "APP_ENVIRONMENT": "local",
        "AzureWebJobsStorage": connection_string,
        "HMAC_KEYS": "b1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "HMAC_ACTIVE_KEY_ID": "b1",
        "INSTANCE_ID": "bench",
        # Real load comes from many addresses: the bench plays Azure Front Door and sends
        # each caller's own address, so one shared source does not turn the per-source
        # counters into the bottleneck being measured.
        "TRUSTED_PROXY_COUNT": "2",
        **generous_limits(),
        **overrides,
    }


def settings_for(values: dict[str, str]):
    """`Settings` in this process for the same storage and keys as the host."""
    from shared.config import Settings

    # Fields with an alias (AzureWebJobsStorage, INSTANCE_ID) go by it: given by field name
    # they would lose to the same setting in this process's environment.
    aliases = {"AzureWebJobsStorage", "INSTANCE_ID"}
    fields = {key if key in aliases else key.lower(): value for key, value in values.items()}
    # the bench's own audit writer must not share a blob series with the host's
    fields["INSTANCE_ID"] = "bench-direct"
    return Settings(_env_file=None, **fields)


def services_for(values: dict[str, str]):
    """`Services` in this process on the same storage and keys as the host."""
    from shared.services import Services

    return Services(settings_for(values))


@dataclass
class Stack:
    """One Azurite, the app settings pointing at it, and the hosts started on it."""

    azurite: Azurite
    values: dict[str, str]
    workdir: Path
    hosts: list[RunningHost] = field(default_factory=list)

    @classmethod
    def start(cls, *, persistent: bool = False, **overrides: str) -> Stack:
        workdir = Path(tempfile.mkdtemp(prefix="bench-"))
        azurite = Azurite.on_free_ports(location=workdir / "azurite" if persistent else None).start()
        stack = cls(azurite, app_settings(azurite.connection_string, **overrides), workdir)
        try:
            stack.storage().ensure_created()
        except BaseException:
            azurite.stop()
            raise
        return stack

    def services(self):
        return services_for(self.values)

    def settings(self):
        return settings_for(self.values)

    def storage(self):
        """Just the storage clients (the app's `Storage`, same pool settings)."""
        from shared.storage import Storage

        return Storage(settings_for(self.values))

    def host(self, **overrides: str) -> RunningHost:
        """A local host on this stack; it sizes its thread pool as the Python worker does
        (`PYTHON_THREADPOOL_THREAD_COUNT` in the overrides or the environment, else the
        worker's default), so the figures are per instance as in Azure."""
        log_path = self.workdir / f"host-{len(self.hosts)}.log"
        running = start_devhost({**self.values, **overrides}, log_path)
        self.hosts.append(running)
        return running

    def stop(self) -> None:
        for running in self.hosts:
            running.stop()
        self.azurite.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --- load generators ---------------------------------------------------------------------

Job = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def http_load(base_url: str, jobs: Sequence[Job], concurrency: int, timeout: float = 30.0) -> Run:
    """Run every job (an async call on a shared client) with at most `concurrency` in flight.
    Each call records its status and, when JSON, its `data`."""
    return asyncio.run(_http_load(base_url, jobs, concurrency, timeout))


async def _http_load(base_url: str, jobs: Sequence[Job], concurrency: int, timeout: float) -> Run:
    # drop idle connections before the server's keep-alive timeout (uvicorn: 5 s) does, so a
    # request never goes out on a connection the server is closing
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0)
    calls: list[Call | None] = [None] * len(jobs)
    queue = iter(enumerate(jobs))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:

        async def worker() -> None:
            for position, job in queue:
                start = time.perf_counter()
                try:
                    response = await job(client)
                except httpx.HTTPError as error:
                    calls[position] = Call(start, time.perf_counter(), 0, type(error).__name__)
                    continue
                end = time.perf_counter()
                data = None
                if response.headers.get("content-type", "").startswith("application/json"):
                    data = response.json().get("data")
                calls[position] = Call(start, end, response.status_code, None, data)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)))))
    return Run([c for c in calls if c is not None], concurrency)


def call_load(function: Callable[[Any], Any], items: Iterable[Any], concurrency: int) -> Run:
    """Call `function(item)` for every item on `concurrency` threads; an exception is an error."""

    def timed(item: Any) -> Call:
        start = time.perf_counter()
        try:
            data = function(item)
        except Exception as error:  # noqa: BLE001 - recorded as a failed call
            return Call(start, time.perf_counter(), 0, type(error).__name__)
        return Call(start, time.perf_counter(), 200, None, data)

    items = list(items)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        calls = list(pool.map(timed, items))
    return Run(calls, concurrency)


def warm_up(function: Callable[[], Any], times: int = 20) -> None:
    for _ in range(times):
        function()


def environment_facts() -> dict:
    """The machine the run is on."""
    import platform
    import subprocess
    import sys

    from devhost.azurite import ROOT

    memory_kib = 0
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    package = ROOT / "node_modules" / "azurite" / "package.json"
    import json

    azurite_version = json.loads(package.read_text())["version"] if package.exists() else "unknown"
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "node": node,
        "azurite": azurite_version,
        "load_average": [round(value, 1) for value in os.getloadavg()],
    }
