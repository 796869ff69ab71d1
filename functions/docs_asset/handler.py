"""GET /v1/docs/{asset} — Swagger UI's script and stylesheet, no auth, from the docs layer.

The files come from the ``swagger-ui-py`` package (Swagger UI's distribution): installed in
the local stack's environment, and shipped to this function alone as its own layer (see
``infra/build_layers.py``), so no other function grows by them. They are text, so API
Gateway passes them through without binary media types.
"""

from functools import cache
from importlib.util import find_spec
from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from datasets_core.errors import NotFound
from datasets_core.http import Api
from routes import ROUTES

api = Api(ROUTES["docs_asset"])

# The files the page loads, and their media types; anything else is 404.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}


def static_folder() -> Path:
    """Swagger UI's folder in the ``swagger_ui`` package, found without importing it."""
    spec = find_spec("swagger_ui")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "static"
        if folder.is_dir():
            return folder
    raise FileNotFoundError("Swagger UI's files (package swagger-ui-py) are not installed")


@cache
def content(asset: str) -> str:
    return (static_folder() / asset).read_text(encoding="utf-8")


@api.route
def docs_asset(asset: str):
    media_type = ASSETS.get(asset)
    if media_type is None:
        raise NotFound(f"No such file of Swagger UI: {asset!r}.", {"asset": asset})
    return Response(
        status_code=200,
        content_type=media_type,
        body=content(asset),
        headers={"Cache-Control": "public, max-age=3600"},
    )


handler = api.handler
