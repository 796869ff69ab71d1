"""POST /v1/keys — a new key; its plaintext is in this response only."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from datasets_core.http import Api, created
from datasets_core.logic import keys
from datasets_core.models import CreateKey
from routes import ROUTES

api = Api(ROUTES["create_key"])


@api.route
def create_key(request: Annotated[CreateKey, Body()]):
    return created(keys.create(api.principal, request))


handler = api.handler
