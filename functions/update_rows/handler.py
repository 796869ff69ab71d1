"""PATCH /v1/datasets/{dataset_id}/rows — {"where": {...}, "set": {...}}: update every matching row."""

from datasets_core.http import Api, ok
from datasets_core.logic import row_query
from routes import ROUTES

api = Api(ROUTES["update_rows"])


@api.route
def update_rows(dataset_id: str):
    return api.once(lambda: ok(row_query.update_where(api.principal, dataset_id, api.json_body())))


handler = api.handler
