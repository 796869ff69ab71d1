"""POST /v1/datasets — create a dataset, optionally with typed (and indexed) columns."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from datasets_core.http import Api, created
from datasets_core.logic import datasets
from datasets_core.models import CreateDataset
from routes import ROUTES

api = Api(ROUTES["create_dataset"])


@api.route
def create_dataset(request: Annotated[CreateDataset, Body()]):
    return created(datasets.create(api.principal, request))


handler = api.handler
