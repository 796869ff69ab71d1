"""GET /v1/datasets/{dataset_id} — metadata: columns, row_count, limits, timestamps."""

from datasets_core.http import Api, ok
from datasets_core.logic import datasets
from routes import ROUTES

api = Api(ROUTES["get_dataset"])


@api.route
def get_dataset(dataset_id: str):
    return ok(datasets.get(api.principal, dataset_id))


handler = api.handler
