"""What the local host reads from disk: `local.settings.json` (app settings) and `host.json`
(route prefix, queue options), and how `local.settings.json` is made from the sample."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

PLACEHOLDER = re.compile(r"<generate:(key|password)>")
PASSWORD_SYMBOLS = "-_.!@#%^*+="  # noqa: S105 - an alphabet, not a password


# --- local.settings.json -------------------------------------------------------------


def load_local_settings(path: Path, environ: os._Environ | dict | None = None) -> dict[str, str]:
    """Copy the file's `Values` into the environment, never overriding a variable that is
    already set (as the Functions host does). Returns the whole `Values` section."""
    environ = os.environ if environ is None else environ
    data = json.loads(path.read_text(encoding="utf-8"))
    values = {name: _as_setting(value) for name, value in (data.get("Values") or {}).items()}
    for name, value in values.items():
        environ.setdefault(name, value)
    return values


def local_http_port(path: Path) -> int | None:
    """`Host.LocalHttpPort` from local settings, as `func start` reads it."""
    if not path.exists():
        return None
    port = (json.loads(path.read_text(encoding="utf-8")).get("Host") or {}).get("LocalHttpPort")
    return int(port) if port else None


def _as_setting(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def generate_key() -> str:
    """A fresh 32-byte key, base64: HMAC keys, function keys."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def generate_password(length: int = 24) -> str:
    """A strong random password with every character class present."""
    alphabet = string.ascii_letters + string.digits + PASSWORD_SYMBOLS
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(
            any(c in cls for c in password)
            for cls in (string.ascii_lowercase, string.ascii_uppercase, string.digits, PASSWORD_SYMBOLS)
        ):
            return password


def fill_placeholders(value: object) -> object:
    """Replace every `<generate:key>` / `<generate:password>` with a fresh secret."""
    if not isinstance(value, str):
        return value
    return PLACEHOLDER.sub(lambda m: generate_key() if m.group(1) == "key" else generate_password(), value)


def init_local_settings(sample: Path, target: Path) -> list[str]:
    """Make `target` from `sample` when it is missing; when it exists, add only the `Values`
    the sample has and it lacks (a setting added later), never touching existing ones.
    Placeholders become fresh secrets. Returns the names of the settings written."""
    template = json.loads(sample.read_text(encoding="utf-8"))
    if target.exists():
        current = json.loads(target.read_text(encoding="utf-8"))
        values = current.setdefault("Values", {})
        added = [name for name in template.get("Values", {}) if name not in values]
        if not added:
            return []
        for name in added:
            values[name] = fill_placeholders(template["Values"][name])
    else:
        current = template
        current["Values"] = {name: fill_placeholders(v) for name, v in template.get("Values", {}).items()}
        added = list(current["Values"])
    text = json.dumps(current, indent=2) + "\n"
    # the file holds secrets: readable by its owner only
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return added


# --- host.json ------------------------------------------------------------------------

TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")


def parse_timespan(value: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it: `hh:mm:ss`, `d.hh:mm:ss`, `hh:mm:ss.fff`."""
    match = TIMESPAN.match(value.strip())
    if not match:
        raise ValueError(f"not a TimeSpan (hh:mm:ss): {value!r}")
    return timedelta(
        days=int(match["days"] or 0), hours=int(match["h"]), minutes=int(match["m"]), seconds=float(match["s"])
    )


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` in host.json, with the Functions host's defaults."""

    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    batch_size: int = 16


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()

    @classmethod
    def load(cls, path: Path) -> HostConfig:
        data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        extensions = data.get("extensions") or {}
        http = extensions.get("http") or {}
        queues = extensions.get("queues") or {}
        defaults = QueueOptions()
        return cls(
            route_prefix=str(http.get("routePrefix", "api")).strip("/"),
            queues=QueueOptions(
                max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
                visibility_timeout=parse_timespan(queues["visibilityTimeout"])
                if "visibilityTimeout" in queues
                else defaults.visibility_timeout,
                max_polling_interval=parse_timespan(queues["maxPollingInterval"])
                if "maxPollingInterval" in queues
                else defaults.max_polling_interval,
                batch_size=int(queues.get("batchSize", defaults.batch_size)),
            ),
        )
