"""POST /v1/datasets/{dataset_id}/uploads — a presigned PUT into the drop folder, with its headers."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from datasets_core.http import Api, created
from datasets_core.imports.models import CreateUpload
from datasets_core.logic import imports
from routes import ROUTES

api = Api(ROUTES["create_upload"])


@api.route
def create_upload(dataset_id: str, request: Annotated[CreateUpload, Body()]):
    return api.once(lambda: created(imports.create_upload(api.principal, dataset_id, request)))


handler = api.handler
