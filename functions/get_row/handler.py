"""GET /v1/datasets/{dataset_id}/rows/{row_id} — one row."""

from datasets_core.http import Api, ok
from datasets_core.logic import rows
from routes import ROUTES

api = Api(ROUTES["get_row"])


@api.route
def get_row(dataset_id: str, row_id: str):
    return ok(rows.get_one(api.principal, dataset_id, row_id))


handler = api.handler
