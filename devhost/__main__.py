"""The local Functions host: a stand-in for `func start` where Core Tools cannot be installed.

    python -m devhost [serve] [--port 7071]   serve the app (HTTP, timers, queues)
    python -m devhost init-settings           make local.settings.json from the sample
    python -m devhost run [--port 7071]       all of it: settings, Azurite, storage, serve
    python -m devhost run --edge-port 8080    the same behind nginx as the edge (devhost/edge.py)

See the README ("The local host") for what it emulates and how it differs from Core Tools.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from devhost.http import DEFAULT_MAX_REQUEST_BODY_BYTES, DevHost, HostOptions, parse_edge_rewrites
from devhost.index import read_index
from devhost.settings import HostConfig, init_local_settings, load_local_settings, local_http_port
from devhost.triggers import Triggers

DEFAULT_PORT = 7071
EDGE_BAN_REFRESH_SECONDS = 2.0
log = logging.getLogger("devhost")


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="HTTP port (default: local settings' Host.LocalHttpPort, else 7071)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--app",
        default=os.environ.get("DEVHOST_APP", "function_app:app"),
        help="the FunctionApp as module:attribute (env DEVHOST_APP; default function_app:app)",
    )
    parser.add_argument("--host-json", type=Path, default=Path("host.json"), help="host.json to read")
    parser.add_argument(
        "--local-settings", type=Path, default=Path("local.settings.json"), help="app settings file (Values)"
    )
    parser.add_argument("--no-local-settings", action="store_true", help="read app settings from the environment only")
    parser.add_argument(
        "--max-request-body-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BODY_BYTES,
        help="larger request bodies get 413 (default 100 MB, like Azure's front end)",
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    _options(commands.add_parser("serve", help="serve the app (the default)"))
    running = commands.add_parser("run", help="settings, Azurite, storage, then serve")
    _options(running)
    running.add_argument("--edge-port", type=int, help="also start nginx as the edge on this port (make run-edge)")
    init = commands.add_parser("init-settings", help="make local.settings.json from local.settings.sample.json")
    init.add_argument("--sample", type=Path, default=Path("local.settings.sample.json"))
    init.add_argument("--target", type=Path, default=Path("local.settings.json"))
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]
    return parser.parse_args(argv)


def configure_logging() -> None:
    """The root logger at INFO, as the Python worker sets it once it is connected to the
    host (DEBUG with PYTHON_ENABLE_DEBUG_LOGGING): what the app's loggers let through is
    what Application Insights would receive."""
    debug = os.environ.get("PYTHON_ENABLE_DEBUG_LOGGING", "").lower() in ("1", "true")
    level = logging.DEBUG if debug else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def serve(args: argparse.Namespace) -> None:
    """Load settings and the app, then serve until SIGINT/SIGTERM."""
    if not args.no_local_settings and args.local_settings.exists():
        load_local_settings(args.local_settings)
    configure_logging()
    from devhost.index import load_app  # after the settings: the app may read them at import

    config = HostConfig.load(args.host_json)
    index = read_index(load_app(args.app), config.route_prefix)
    triggers = Triggers(index, config.queues)
    options = HostOptions(
        function_key=os.environ.get("DEVHOST_FUNCTION_KEY") or None,
        master_key=os.environ.get("DEVHOST_MASTER_KEY") or None,
        max_request_body_bytes=args.max_request_body_bytes,
        edge_rewrites=parse_edge_rewrites(os.environ.get("DEVHOST_EDGE_REWRITES", "")),
    )
    if not options.master_key:
        log.warning("DEVHOST_MASTER_KEY is not set: admin endpoints and admin-level functions answer 401")
    if not options.function_key:
        log.warning("DEVHOST_FUNCTION_KEY is not set: function-level functions need the master key")
    port = args.port or (None if args.no_local_settings else local_http_port(args.local_settings)) or DEFAULT_PORT
    for function in index.http:
        log.info("%s: [%s] http://%s:%d/%s", function.name, ",".join(function.methods), args.bind, port,
                 function.route.template)  # fmt: skip
    for function in (*index.timers, *index.queues):
        log.info("%s: %s", function.name, type(function).__name__.removesuffix("Function").lower())
    host = DevHost(index, triggers, options)
    server_config = uvicorn.Config(
        host.app,
        host=args.bind,
        port=port,
        access_log=False,  # our own request line leaves out query strings
        proxy_headers=False,  # the caller's real address, never one it claims in X-Forwarded-For
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(server_config).run()


def run(args: argparse.Namespace) -> None:
    """The newcomer's command: settings, Azurite (data in .azurite/), storage, serve."""
    from devhost.azurite import Azurite

    # uvicorn re-raises SIGTERM after its graceful shutdown: make that an exit that runs `finally`
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    init_settings(args.local_settings.with_name("local.settings.sample.json"), args.local_settings)
    settings_values = load_local_settings(args.local_settings)
    azurite = Azurite.on_free_ports(location=Path(".azurite"), prefer_defaults=True).start()
    try:
        if not azurite.uses_default_ports:
            print(f"Azurite: default ports are taken; using {azurite.blob_port}-{azurite.table_port} for this run")
        _point_at(azurite, settings_values)
        from shared.config import get_settings
        from shared.services import Services

        Services(get_settings()).storage.ensure_created()
        if args.edge_port:
            with _edge(args):
                serve(args)
        else:
            serve(args)
    finally:
        azurite.stop()


@contextmanager
def _edge(args: argparse.Namespace) -> Iterator[None]:
    """nginx on --edge-port in front of the host, fed the service's bans every few seconds."""
    from devhost.edge import BanFeed, EdgeProxy
    from shared.config import get_settings
    from shared.services import services

    os.environ["TRUSTED_PROXY_COUNT"] = "2"  # nginx, then the host as the Functions front end
    get_settings.cache_clear()
    port = args.port or local_http_port(args.local_settings) or DEFAULT_PORT
    with EdgeProxy(args.edge_port, f"http://127.0.0.1:{port}", Path(".edge")) as proxy:
        print(f"edge (nginx): {proxy.url} -> http://127.0.0.1:{port}")
        feed = BanFeed(proxy, lambda: [ban.source for ban in services().bans.active()], every=EDGE_BAN_REFRESH_SECONDS)
        feed.start()
        try:
            yield
        finally:
            feed.stop()


def _point_at(azurite, settings_values: dict[str, str]) -> None:
    """Settings that name the local emulator get this run's connection string."""
    from shared.storage import emulator_connection_string, expand_connection_string

    default = emulator_connection_string()
    for name, value in settings_values.items():
        if os.environ.get(name) == value and expand_connection_string(value) == default:
            os.environ[name] = azurite.connection_string


def init_settings(sample: Path, target: Path) -> None:
    existed = target.exists()
    added = init_local_settings(sample, target)
    if not existed:
        print(f"created {target} from {sample.name} (fresh keys)")
    elif added:
        print(f"{target}: added {', '.join(added)} from {sample.name}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "init-settings":
            init_settings(args.sample, args.target)
        elif args.command == "run":
            run(args)
        else:
            serve(args)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl+C after its graceful shutdown
        sys.exit(130)


if __name__ == "__main__":
    main()
