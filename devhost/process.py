"""The local host as a subprocess: start `python -m devhost serve` on a free port with
given app settings and wait until it answers. Used by the end-to-end tests and the
benchmarks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devhost.azurite import free_port
from devhost.settings import generate_key

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunningHost:
    """A devhost subprocess and an HTTP client for it."""

    url: str
    client: httpx.Client
    function_key: str
    master_key: str
    process: subprocess.Popen = field(repr=False)
    log_path: Path = field(repr=False)

    def fire(self, function_name: str, input: str = "", *, expect: int | None = 202) -> httpx.Response:
        """Run a timer or queue function now (a queue function gets `input` as its message
        body); returns after it has run. By default asserts it succeeded (202)."""
        response = self.client.post(
            f"/admin/functions/{function_name}", json={"input": input}, headers={"x-functions-key": self.master_key}
        )
        if expect is not None:
            assert response.status_code == expect, f"{function_name}: {response.status_code} {response.text}"
        return response

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> RunningHost:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_devhost(
    app_settings: dict[str, str],
    log_path: Path,
    *,
    app: str = "function_app:app",
    args: tuple[str, ...] = (),
    timeout: float = 60.0,
) -> RunningHost:
    """Start `python -m devhost` with these app settings (plus fresh keys) and wait until it
    answers."""
    port = free_port()
    function_key, master_key = generate_key(), generate_key()
    env = {
        **os.environ,
        **app_settings,
        "DEVHOST_FUNCTION_KEY": function_key,
        "DEVHOST_MASTER_KEY": master_key,
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "devhost", "serve", "--no-local-settings", "--port", str(port), "--app", app]
    log_file = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*command, *args], cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    log_file.close()
    url = f"http://127.0.0.1:{port}"
    host = RunningHost(url, httpx.Client(base_url=url, timeout=30), function_key, master_key, process, log_path)
    deadline = time.monotonic() + timeout
    while True:
        if not host.alive():
            raise RuntimeError(f"devhost exited with {process.returncode}:\n{host.logs()[-4000:]}")
        try:
            status = host.client.get("/admin/host/status", headers={"x-functions-key": master_key}, timeout=2)
            if status.status_code == 200:
                return host
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            host.stop()
            raise TimeoutError(f"devhost did not answer within {timeout:.0f}s:\n{host.logs()[-4000:]}")
        time.sleep(0.2)
