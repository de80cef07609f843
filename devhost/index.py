"""Load the `FunctionApp` and read its function index, as the Python worker reports it to
the Functions host: one entry per function with its trigger binding.

Only the trigger argument is passed to a function (plus the return value for HTTP);
other input/output bindings are not emulated.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import importlib
import inspect
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from devhost.routes import RouteTemplate, join_route

log = logging.getLogger("devhost")

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")


@dataclass
class Function:
    name: str
    user_function: Callable = field(repr=False)
    arg_name: str

    @functools.cached_property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    async def invoke(self, argument: Any, pool: Executor) -> Any:
        """Call the user function with its trigger argument: async ones on the event loop,
        sync ones in the worker thread pool with `run_in_executor`, as the Python worker does
        (under load a hand-off costs a third of anyio.to_thread's)."""
        kwargs = {self.arg_name: argument}
        if self.is_async:
            return await self.user_function(**kwargs)
        call = functools.partial(contextvars.copy_context().run, self.user_function, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(pool, call)


@dataclass
class HttpFunction(Function):
    route: RouteTemplate = field(repr=False)
    methods: tuple[str, ...] = ALL_METHODS
    auth_level: str = "function"  # anonymous | function | admin


@dataclass
class TimerFunction(Function):
    schedule: str = ""
    run_on_startup: bool = False


@dataclass
class QueueFunction(Function):
    queue_name: str = ""
    connection: str = "AzureWebJobsStorage"


@dataclass
class FunctionIndex:
    http: list[HttpFunction] = field(default_factory=list)
    timers: list[TimerFunction] = field(default_factory=list)
    queues: list[QueueFunction] = field(default_factory=list)

    def by_name(self, name: str) -> Function | None:
        for function in (*self.http, *self.timers, *self.queues):
            if function.name.lower() == name.lower():
                return function
        return None


def load_app(spec: str) -> func.FunctionApp:
    """`module:attribute`, e.g. `function_app:app`."""
    module_name, _, attribute = spec.partition(":")
    app = getattr(importlib.import_module(module_name), attribute or "app")
    if not hasattr(app, "get_functions"):
        raise TypeError(f"{spec} is not a FunctionApp")
    return app


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def read_index(app: func.FunctionApp, route_prefix: str) -> FunctionIndex:
    """The app's functions by trigger type; raises ValueError on what the host would reject
    (bad route template, two functions on one route and method, duplicate names)."""
    index = FunctionIndex()
    seen_names: set[str] = set()
    seen_routes: dict[tuple[str, str], str] = {}
    for function in app.get_functions():
        name = function.get_function_name()
        if name.lower() in seen_names:
            raise ValueError(f"two functions are named {name!r}")
        seen_names.add(name.lower())
        trigger = {key: _plain(value) for key, value in function.get_trigger().get_dict_repr().items()}
        common = {"name": name, "user_function": function.get_user_function(), "arg_name": trigger.get("name")}
        kind = trigger.get("type")
        if kind == "httpTrigger":
            route = RouteTemplate.parse(join_route(route_prefix, trigger.get("route") or name))
            methods = tuple(str(_plain(m)).upper() for m in trigger.get("methods") or ALL_METHODS)
            for method in methods:
                other = seen_routes.setdefault((route.shape, method), name)
                if other != name:
                    raise ValueError(f"{name} and {other} both answer {method} {route.template}")
            auth_level = str(trigger.get("authLevel") or "function").lower()
            index.http.append(HttpFunction(**common, route=route, methods=methods, auth_level=auth_level))
        elif kind == "timerTrigger":
            index.timers.append(
                TimerFunction(**common, schedule=trigger["schedule"], run_on_startup=bool(trigger.get("runOnStartup")))
            )
        elif kind == "queueTrigger":
            index.queues.append(
                QueueFunction(
                    **common,
                    queue_name=trigger["queueName"],
                    connection=trigger.get("connection") or "AzureWebJobsStorage",
                )
            )
        else:
            log.warning("function %s: trigger %s is not emulated by the local host; skipped", name, kind)
    index.http.sort(key=lambda f: f.route.precedence)
    return index
