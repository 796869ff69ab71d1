"""DELETE /v1/datasets/{dataset_id} — gone at once; rows are purged in the background."""

from datasets_core.http import Api, ok
from datasets_core.logic import datasets
from routes import ROUTES

api = Api(ROUTES["delete_dataset"])


@api.route
def delete_dataset(dataset_id: str):
    return ok(datasets.delete(api.principal, dataset_id))


handler = api.handler
