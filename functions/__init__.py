"""Thin adapters: HTTP, timer and queue triggers that parse, call `shared`, and respond."""

import azure.functions as func


def blueprints() -> list[func.Blueprint]:
    """Every area's blueprint, in registration order."""
    from functions import health, html, openapi

    return [health.bp, openapi.bp, html.bp]
