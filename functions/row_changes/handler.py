"""GET /v1/datasets/{dataset_id}/rows/{row_id}/changes — the row's audit trail, newest first."""

from datasets_core.http import Api, ok
from datasets_core.logic import rows
from routes import ROUTES

api = Api(ROUTES["row_changes"])


@api.route
def row_changes(dataset_id: str, row_id: str):
    entries, meta = rows.changes(api.principal, dataset_id, row_id, api.query_params())
    return ok(entries, meta)


handler = api.handler
