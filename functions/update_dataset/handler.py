"""PATCH /v1/datasets/{dataset_id} — rename or re-describe a dataset."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from datasets_core.http import Api, ok
from datasets_core.logic import datasets
from datasets_core.models import UpdateDataset
from routes import ROUTES

api = Api(ROUTES["update_dataset"])


@api.route
def update_dataset(dataset_id: str, request: Annotated[UpdateDataset, Body()]):
    return ok(datasets.update(api.principal, dataset_id, request))


handler = api.handler
