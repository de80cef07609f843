"""Start and stop the Azurite storage emulator (from the project's npm packages).

Used by `make run` and by the test fixtures. Azurite is pinned to 3.35.x, the last
line that runs on Node 20 (3.36+ requires Node 22).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shared.storage import emulator_connection_string

ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"
DEFAULT_PORTS = (10000, 10001, 10002)  # blob, queue, table


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing is listening on {host}:{port} after {timeout:.0f}s")


@dataclass
class Azurite:
    """One Azurite process. `location=None` keeps data in memory (tests)."""

    blob_port: int
    queue_port: int
    table_port: int
    location: Path | None = None
    process: subprocess.Popen | None = None

    @classmethod
    def on_free_ports(cls, location: Path | None = None, prefer_defaults: bool = False) -> Azurite:
        if prefer_defaults and all(port_is_free(p) for p in DEFAULT_PORTS):
            return cls(*DEFAULT_PORTS, location=location)
        return cls(free_port(), free_port(), free_port(), location=location)

    @property
    def connection_string(self) -> str:
        return emulator_connection_string(self.blob_port, self.queue_port, self.table_port)

    @property
    def uses_default_ports(self) -> bool:
        return (self.blob_port, self.queue_port, self.table_port) == DEFAULT_PORTS

    def command(self) -> list[str]:
        if not AZURITE_BIN.exists() or shutil.which("node") is None:
            raise RuntimeError("Azurite is not installed: run `make install` (npm ci) first")
        args = [
            str(AZURITE_BIN),
            "--disableTelemetry",
            "--silent",
            "--skipApiVersionCheck",
            # Azurite drops idle connections after 5 s by default, racing the SDK's pooled
            # keep-alive connections (a reset POST is not retried): keep them open longer
            "--blobKeepAliveTimeout", "600",
            "--queueKeepAliveTimeout", "600",
            "--tableKeepAliveTimeout", "600",
            "--blobPort", str(self.blob_port),
            "--queuePort", str(self.queue_port),
            "--tablePort", str(self.table_port),
        ]  # fmt: skip
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            args += ["--location", str(self.location)]
        return args

    def start(self, timeout: float = 30.0) -> Azurite:
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() ends node and children
        )
        for port in (self.blob_port, self.queue_port, self.table_port):
            wait_for_port(port, timeout)
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
