"""Functions (ASP.NET Core) route templates: `api/items/{id:int}`, `{name?}`, `{*rest}`.

A template is turned into one regular expression; constraints are checked on the captured
values afterwards, as ASP.NET does, so a failed constraint lets the next route try. Routes
are tried in ASP.NET's precedence order: literal segments before constrained parameters,
before plain parameters, before optional ones, before catch-alls. Literals match
case-insensitively; one trailing slash is ignored.

Supported: `{name}`, `{name?}`, `{name:constraint[:constraint...]}`, `{*rest}` / `{**rest}`,
several parameters in one segment (`{name}.{ext}`), `{{` / `}}` for literal braces.
Constraints: int, long, bool, float, double, decimal, alpha, guid, datetime, min(n), max(n),
range(a,b), length(n) / length(a,b), minlength(n), maxlength(n), regex(expression).
Not supported: default values (`{name=value}`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

GUID = re.compile(r"^(?:\{)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}(?:\})?$", re.IGNORECASE)
NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


class RouteTemplateError(ValueError):
    """A route template the host cannot serve (the message names the template)."""


def _int_in(bounds: tuple[int, int]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        return re.fullmatch(r"[+-]?\d+", value) is not None and bounds[0] <= int(value) <= bounds[1]

    return check


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_int(value: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", value) is not None


def _constraint(name: str, argument: str | None) -> Callable[[str], bool]:
    """The check for one constraint, e.g. ("min", "1") -> value is an integer >= 1."""
    simple: dict[str, Callable[[str], bool]] = {
        "int": _int_in(INT32),
        "long": _int_in(INT64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "float": lambda v: NUMBER.match(v) is not None,
        "double": lambda v: NUMBER.match(v) is not None,
        "decimal": lambda v: NUMBER.match(v) is not None,
        "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
        "guid": lambda v: GUID.match(v) is not None,
        "datetime": _is_datetime,
    }
    if name in simple and argument is None:
        return simple[name]
    if argument is None:
        raise RouteTemplateError(f"unknown route constraint {name!r}")
    if name == "regex":
        pattern = re.compile(argument, re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    numbers = [int(part) for part in argument.split(",")] if re.fullmatch(r"-?\d+(,-?\d+)?", argument) else None
    if numbers is None:
        raise RouteTemplateError(f"route constraint {name}({argument}) needs integer arguments")
    low, high = numbers[0], numbers[-1]
    bounded: dict[str, Callable[[str], bool]] = {
        "min": lambda v: _is_int(v) and int(v) >= low,
        "max": lambda v: _is_int(v) and int(v) <= low,
        "range": lambda v: _is_int(v) and low <= int(v) <= high,
        "length": lambda v: low <= len(v) <= high,
        "minlength": lambda v: len(v) >= low,
        "maxlength": lambda v: len(v) <= low,
    }
    if name not in bounded:
        raise RouteTemplateError(f"unknown route constraint {name!r}")
    return bounded[name]


def _split_constraints(text: str) -> list[tuple[str, str | None]]:
    """ "int:min(1)" -> [("int", None), ("min", "1")]; a regex may hold ':' and parentheses."""
    constraints, i = [], 0
    while i < len(text):
        name_match = re.match(r"[A-Za-z]+", text[i:])
        if not name_match:
            raise RouteTemplateError(f"bad route constraint {text[i:]!r}")
        name = name_match.group(0).lower()
        i += len(name)
        argument = None
        if i < len(text) and text[i] == "(":
            depth, start = 0, i + 1
            while i < len(text):
                if text[i] == "\\":
                    i += 2
                    continue
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                if depth == 0:
                    break
                i += 1
            if depth != 0:
                raise RouteTemplateError(f"unbalanced parentheses in route constraint {text!r}")
            argument = text[start:i]
            i += 1
        if i < len(text):
            if text[i] != ":":
                raise RouteTemplateError(f"bad route constraint {text!r}")
            i += 1
        constraints.append((name, argument))
    return constraints


@dataclass(frozen=True)
class Parameter:
    name: str
    optional: bool = False
    catch_all: bool = False
    checks: tuple[Callable[[str], bool], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Parameter:
        catch_all = text.startswith("*")
        text = text.lstrip("*")
        optional = text.endswith("?")
        text = text.removesuffix("?")
        name, _, constraints = text.partition(":")
        if "=" in name:
            raise RouteTemplateError(f"default values in route parameters are not supported: {{{text}}}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise RouteTemplateError(f"bad route parameter name {name!r}")
        checks = tuple(_constraint(n, a) for n, a in _split_constraints(constraints)) if constraints else ()
        return cls(name=name, optional=optional, catch_all=catch_all, checks=checks)

    @property
    def rank(self) -> int:
        """Precedence within a segment: lower is tried first."""
        if self.catch_all:
            return 4
        if self.optional:
            return 3
        return 1 if self.checks else 2


def _tokens(segment: str) -> list[str | Parameter]:
    """One path segment -> literal strings and parameters, honouring `{{` and `}}`."""
    tokens: list[str | Parameter] = []
    literal, i = "", 0
    while i < len(segment):
        char = segment[i]
        if segment.startswith("{{", i) or segment.startswith("}}", i):
            literal += char
            i += 2
        elif char == "{":
            if literal:
                tokens.append(literal)
                literal = ""
            body, i = "", i + 1
            while i < len(segment):
                if segment.startswith("}}", i) or segment.startswith("{{", i):
                    body += segment[i]
                    i += 2
                elif segment[i] == "}":
                    break
                else:
                    body += segment[i]
                    i += 1
            if i >= len(segment):
                raise RouteTemplateError(f"unclosed '{{' in route segment {segment!r}")
            tokens.append(Parameter.parse(body))
            i += 1
        elif char == "}":
            raise RouteTemplateError(f"unmatched '}}' in route segment {segment!r}")
        else:
            literal += char
            i += 1
    if literal:
        tokens.append(literal)
    return tokens


@dataclass
class RouteTemplate:
    """A parsed template; `match(path)` returns the route parameters or None."""

    template: str
    regex: re.Pattern = field(repr=False)
    parameters: tuple[Parameter, ...] = field(repr=False)
    precedence: tuple = field(repr=False)

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        try:
            return cls._parse(template)
        except RouteTemplateError as error:
            raise RouteTemplateError(f"route {template!r}: {error}") from None

    @classmethod
    def _parse(cls, template: str) -> RouteTemplate:
        segments = [s for s in template.strip("/").split("/")] if template.strip("/") else []
        pattern, parameters, precedence = "", [], []
        for index, segment in enumerate(segments):
            if not segment:
                raise RouteTemplateError("empty segment")
            tokens = _tokens(segment)
            params = [t for t in tokens if isinstance(t, Parameter)]
            last = index == len(segments) - 1
            for param in params:
                if (param.catch_all or param.optional) and not last:
                    raise RouteTemplateError(f"{{{param.name}}} may only be in the last segment")
                if param.catch_all and len(tokens) > 1:
                    raise RouteTemplateError(f"catch-all {{*{param.name}}} must be a segment by itself")
            parameters += params
            if len(tokens) == 1 and isinstance(tokens[0], Parameter) and (tokens[0].optional or tokens[0].catch_all):
                param = tokens[0]
                value = ".*" if param.catch_all else "[^/]+"
                pattern += f"(?:/(?P<{param.name}>{value}))?"
                precedence.append(param.rank)
                continue
            part = ""
            for token in tokens:
                if isinstance(token, str):
                    part += re.escape(token)
                else:
                    # greedy: like ASP.NET, which matches a complex segment from the right
                    part += f"(?P<{token.name}>[^/]+)"
            pattern += "/" + part
            precedence.append(0 if not params else min(p.rank for p in params))
        names = [p.name.lower() for p in parameters]
        if len(names) != len(set(names)):
            raise RouteTemplateError("a parameter name appears twice")
        regex = re.compile(f"^{pattern}/?$", re.IGNORECASE)
        # fewer/lower ranks first; among equals, more segments first
        key = (tuple(precedence), -len(segments))
        return cls(template=template, regex=regex, parameters=tuple(parameters), precedence=key)

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters for `path` ("/api/items/5"), or None if it does not match."""
        found = self.regex.match(path if path.startswith("/") else "/" + path)
        if not found:
            return None
        values = {}
        for param in self.parameters:
            value = found.group(param.name)
            if value is None or (param.catch_all and value == ""):
                continue
            if not all(check(value) for check in param.checks):
                return None
            values[param.name] = value
        return values

    @property
    def shape(self) -> str:
        """The template with parameter names blanked (constraints kept): two routes with one
        shape match the same paths."""
        return re.sub(r"\{(\**)[A-Za-z_][A-Za-z0-9_]*", r"{\1", self.template.strip("/").lower())


def join_route(prefix: str, route: str) -> str:
    """host.json's routePrefix in front of a function's route."""
    parts = [part.strip("/") for part in (prefix, route) if part and part.strip("/")]
    return "/".join(parts)
