"""Server-rendered HTML: Jinja2 templates with autoescaping, and the static assets they
use (served by the app itself: no CDN)."""

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import azure.functions as func

from functions.http import security_headers

if TYPE_CHECKING:
    from jinja2 import Environment

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml", ".png": "image/png"}

bp = func.Blueprint()


@cache
def templates() -> "Environment":
    # Jinja2 is imported with the first page: an instance that only serves the API never
    # pays for it at cold start.
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))


def render(template: str, status: int = 200, headers: dict[str, str] | None = None, **context) -> func.HttpResponse:
    body = templates().get_template(template).render(**context)
    return func.HttpResponse(
        body,
        status_code=status,
        mimetype="text/html",
        charset="utf-8",
        headers={**security_headers(html=True), "Cache-Control": "no-store", **(headers or {})},
    )


@bp.route(route="static/{name}", methods=["GET"])
def static(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("name", "")
    path = STATIC / name
    if "/" in name or "\\" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        return func.HttpResponse("Not found", status_code=404, headers=security_headers())
    return func.HttpResponse(
        path.read_bytes(),
        mimetype=STATIC_TYPES[path.suffix],
        headers={**security_headers(), "Cache-Control": "public, max-age=3600"},
    )
