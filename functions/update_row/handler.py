"""PATCH /v1/datasets/{dataset_id}/rows/{row_id} — change some fields of one row: {"set": {...}}."""

from datasets_core.http import Api, ok
from datasets_core.logic import rows
from routes import ROUTES

api = Api(ROUTES["update_row"])


@api.route
def update_row(dataset_id: str, row_id: str):
    return api.once(lambda: ok(rows.patch_one(api.principal, dataset_id, row_id, api.json_body())))


handler = api.handler
