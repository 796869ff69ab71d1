"""DELETE /v1/datasets/{dataset_id}/rows — {"row_ids": [...]} or {"where": {...}}."""

from datasets_core.http import Api, ok
from datasets_core.logic import bulk_where
from routes import ROUTES

api = Api(ROUTES["delete_rows"])


@api.route
def delete_rows(dataset_id: str):
    return api.once(lambda: ok(bulk_where.delete_where(api.principal, dataset_id, api.json_body())))


handler = api.handler
