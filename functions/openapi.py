"""GET /api/openapi.json and the /docs page, generated from the function index and the
same pydantic models the handlers validate with (no hand-written copy)."""

import json
import re
from functools import cache
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from functions.html import render
from functions.http import ApiSpec, security_headers

bp = func.Blueprint()

_PARAMETER = re.compile(r"\{\*?([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\??\}")


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["requestObject", "message", "data"],
        "properties": {"requestObject": {}, "message": {"type": "string"}, "data": data},
    }


ERROR_ENVELOPE = {
    "type": "object",
    "required": ["requestObject", "message", "error"],
    "properties": {
        "requestObject": {},
        "message": {"type": "string"},
        "error": {"type": "string", "description": "stable machine-readable code"},
        "details": {},
    },
}


def _or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema, plus the empty string: the Functions host leaves out a
    parameter whose value is empty, so `?user=` reaches the app as no `user` at all."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def _operation(function, spec: ApiSpec | None, auth_level: str, components: dict) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": function.get_function_name(), "responses": {}}
    if spec is None:
        operation["responses"]["default"] = {"description": "A response"}
        return operation
    operation["summary"] = spec.summary.splitlines()[0]
    if spec.summary.count("\n"):
        operation["description"] = spec.summary
    data = _schema_ref(spec.response, components) if spec.response else {}
    operation["responses"] = {
        "2XX": {"description": "Success", "content": {"application/json": {"schema": _envelope(data)}}},
        "default": {
            "description": "Failure: 4xx for the caller's mistakes, 503 when storage is unavailable",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
        },
    }
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(spec.body, components)}},
        }
    elif spec.raw_body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    if spec.query is not None:
        schema = spec.query.model_json_schema()
        required = set(schema.get("required", []))
        operation["parameters"] = [
            {"name": name, "in": "query", "required": name in required, "schema": _or_empty(prop)}
            for name, prop in schema.get("properties", {}).items()
        ]
    security = []
    if spec.auth:
        security.append({"bearer": []})
    if spec.basic_auth:
        security.append({"basic": []})
    if auth_level in ("function", "admin"):
        security.append({"functionKey": []})
        operation["responses"]["401"] = {"description": "No valid function key: the Functions host answers, no body"}
    if security:
        operation["security"] = security
    return operation


def build_openapi(functions) -> dict[str, Any]:
    components: dict[str, Any] = {"ErrorEnvelope": ERROR_ENVELOPE}
    paths: dict[str, dict] = {}
    for function in functions:
        trigger = function.get_trigger().get_dict_repr()
        if trigger["type"] != "httpTrigger" or not trigger["route"].startswith("api/"):
            continue
        spec: ApiSpec | None = getattr(function.get_user_function(), "api_spec", None)
        path = "/" + _PARAMETER.sub(lambda m: "{" + m.group(1) + "}", trigger["route"])
        auth_level = str(getattr(trigger.get("authLevel"), "value", trigger.get("authLevel") or "anonymous"))
        for method in trigger.get("methods") or ["GET"]:
            operation = _operation(function, spec, auth_level.lower(), components)
            names = _PARAMETER.findall(trigger["route"])
            if names:
                path_parameters = [
                    {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
                ]
                operation["parameters"] = path_parameters + operation.get("parameters", [])
            paths.setdefault(path, {})[str(getattr(method, "value", method)).lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "One-time access codes", "version": "1.0.0"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
            },
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    # A FunctionApp of its own: the worker's app may be indexed only once.
    from functions import blueprints

    index = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    for blueprint in blueprints():
        index.register_functions(blueprint)
    return build_openapi(index.get_functions())


@bp.route(route="api/openapi.json", methods=["GET"])
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(openapi_document()), mimetype="application/json", headers=security_headers())


@bp.route(route="docs", methods=["GET"])
def docs(req: func.HttpRequest) -> func.HttpResponse:
    return render("docs.html", document=openapi_document())
