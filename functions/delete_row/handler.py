"""DELETE /v1/datasets/{dataset_id}/rows/{row_id} — delete one row."""

from datasets_core.http import Api, ok
from datasets_core.logic import rows
from routes import ROUTES

api = Api(ROUTES["delete_row"])


@api.route
def delete_row(dataset_id: str, row_id: str):
    return api.once(lambda: ok(rows.delete_one(api.principal, dataset_id, row_id)))


handler = api.handler
