"""GET /v1/openapi.json — the OpenAPI document of every endpoint, no auth.

Built from the very routers the endpoint functions use, so it cannot drift from them.
"""

import importlib
from functools import lru_cache

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer, Server

from datasets_core.http import Api, openapi_resolver
from routes import ROUTES

api = Api(ROUTES["openapi"])


@lru_cache(maxsize=1)
def document() -> dict:
    apis = [api] + [
        importlib.import_module(f"{name}.handler").api for name in ROUTES if name not in ("openapi",)
    ]
    resolver = openapi_resolver(apis)
    schema = resolver.get_openapi_schema(
        title="Datasets API",
        version="1.0.0",
        description="Tabular datasets over HTTPS with scoped API keys and a PostgREST-style query string.",
        servers=[Server(url="/v1")],
        security_schemes={"bearer": HTTPBearer()},
        security=[{"bearer": []}],
    )
    return schema.model_dump(mode="json", by_alias=True, exclude_none=True)


@api.route
def openapi():
    return document()


handler = api.handler
