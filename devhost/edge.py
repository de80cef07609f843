"""A real proxy in front of the local host, doing what Front Door does in Azure: nginx from
the distribution's packages (`make run-edge` installs it when missing).

- It passes the client's address on in X-Forwarded-For, so the app counts
  TRUSTED_PROXY_COUNT=2 (nginx, then the local host as the Functions front end), as
  behind Front Door.
- It rewrites /admin to /console, as Front Door's rule set does.
- A per-address rate limit (limit_req), as the WAF's rate rules.
- The service's bans: a `geo` map of the banned sources (shared/limits/bans.py), which
  `BanFeed` rewrites and reloads when the active bans change. A banned source gets 403
  from nginx and never reaches the app.

Locally every request comes from 127.0.0.1, so nginx takes the client's address from the
X-Forwarded-For the caller sends (`set_real_ip_from 127.0.0.1`): a test can speak for the
internet's many addresses. Front Door uses the socket's address instead.
"""

from __future__ import annotations

import getpass
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("devhost.edge")
NGINX = "/usr/sbin/nginx"
BANNED_BODY = '{"requestObject":null,"message":"This address is banned for a while.","error":"banned"}'

CONFIG = """\
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
{user}
events {{ worker_connections 512; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    client_max_body_size 100m;
    server_tokens off;

    set_real_ip_from 127.0.0.1;
    set_real_ip_from ::1;
    real_ip_header X-Forwarded-For;

    geo $banned {{
        default 0;
        include {directory}/bans.conf;
    }}
    limit_req_zone $binary_remote_addr zone=per_address:10m rate={rate}r/s;
    limit_req_status 429;

    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        if ($banned) {{
            return 403 '{banned_body}';
        }}
        location / {{
            limit_req zone=per_address burst={burst} nodelay;
            rewrite ^/admin(/.*)?$ /console$1 break;
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def nginx_available() -> bool:
    return Path(NGINX).exists()


class EdgeProxy:
    """nginx on `port` in front of `upstream` (http://127.0.0.1:7071), its files in `directory`."""

    def __init__(self, port: int, upstream: str, directory: Path, *, rate: int = 50, burst: int = 100):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._directory = directory
        self._config = directory / "nginx.conf"
        self._bans = directory / "bans.conf"
        self._published: list[str] | None = None
        self._process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)
        # nginx started by root hands its workers to `user`: they read these files
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        self._config.write_text(
            CONFIG.format(
                directory=directory, user=user, port=port, upstream=upstream, rate=rate, burst=burst,
                banned_body=BANNED_BODY,
            ),
            encoding="utf-8",
        )  # fmt: skip
        self._bans.write_text("", encoding="utf-8")

    def _nginx(self, *args: str) -> list[str]:
        return [NGINX, "-p", str(self._directory), "-c", str(self._config), *args]

    def start(self) -> EdgeProxy:
        subprocess.run(self._nginx("-t", "-q"), check=True, capture_output=True)
        self._process = subprocess.Popen(self._nginx("-g", "daemon off;"))
        deadline = time.monotonic() + 10
        while not (self._directory / "nginx.pid").exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start; see {self._directory / 'error.log'}")
            time.sleep(0.05)
        return self

    def publish(self, sources: list[str]) -> bool:
        """Ban exactly `sources` (IPv4 addresses, IPv6 networks); True when that changed
        the map (nginx then reloads it)."""
        if sources == self._published:
            return False
        temporary = self._bans.with_suffix(".new")
        temporary.write_text("".join(f"{source} 1;\n" for source in sources), encoding="utf-8")
        os.replace(temporary, self._bans)
        subprocess.run(self._nginx("-s", "reload"), check=True, capture_output=True)
        self._published = list(sources)
        log.info("edge: %d source(s) banned", len(sources))
        return True

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        for temporary in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            shutil.rmtree(self._directory / temporary, ignore_errors=True)

    def __enter__(self) -> EdgeProxy:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


class BanFeed:
    """Every `every` seconds, the active bans (`active_sources`) go to the proxy."""

    def __init__(self, proxy: EdgeProxy, active_sources: Callable[[], list[str]], every: float):
        self._proxy = proxy
        self._active_sources = active_sources
        self._every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ban-feed", daemon=True)

    def start(self) -> BanFeed:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._proxy.publish(self._active_sources())
            except Exception:  # noqa: BLE001 - storage down or nginx reloading: the next round tries again
                log.warning("edge: the bans could not be refreshed", exc_info=True)
            self._stopped.wait(self._every)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)
