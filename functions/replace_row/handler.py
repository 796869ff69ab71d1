"""PUT /v1/datasets/{dataset_id}/rows/{row_id} — replace a whole row (missing fields become null)."""

from datasets_core.http import Api, ok
from datasets_core.logic import rows
from routes import ROUTES

api = Api(ROUTES["replace_row"])


@api.route
def replace_row(dataset_id: str, row_id: str):
    return api.once(lambda: ok(rows.replace_one(api.principal, dataset_id, row_id, api.json_body())))


handler = api.handler
