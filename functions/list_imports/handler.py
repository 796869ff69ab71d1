"""GET /v1/datasets/{dataset_id}/imports — the dataset's imports, newest first (limit, offset)."""

from datasets_core.http import Api, ok
from datasets_core.logic import imports
from routes import ROUTES

api = Api(ROUTES["list_imports"])


@api.route
def list_imports(dataset_id: str):
    items, meta = imports.list_imports(api.principal, dataset_id, api.query_params())
    return ok(items, meta=meta)


handler = api.handler
