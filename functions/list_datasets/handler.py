"""GET /v1/datasets — the workspace's datasets (limit, offset, q, sort)."""

from datasets_core.http import Api, ok
from datasets_core.logic import datasets
from routes import ROUTES

api = Api(ROUTES["list_datasets"])


@api.route
def list_datasets():
    items, meta = datasets.list_datasets(api.principal, api.query_params())
    return ok(items, meta=meta)


handler = api.handler
