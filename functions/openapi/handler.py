"""GET /v1/openapi.json — the OpenAPI 3.1 document of every endpoint, no auth.

Built from the route table and the contracts (``functions/contracts.py``) once per
container: an endpoint's route and contract are all it takes to document it.
"""

from functools import cache

from aws_lambda_powertools.event_handler import Response, content_types

from datasets_core.http import Api
from datasets_core.jsonutil import dumps
from routes import ROUTES

api = Api(ROUTES["openapi"])


@cache
def document() -> str:
    from openapi.document import build  # pydantic and every model, on the first request only

    return dumps(build())


@api.route
def openapi():
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document())


handler = api.handler
