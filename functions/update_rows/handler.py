"""PATCH /v1/datasets/{dataset_id}/rows — {"where": {...}, "set": {...}} updates every matching row;
{"rows": [{"id": ..., ...}]} updates each listed row with its own values, all or nothing."""

from datasets_core.http import Api, ok
from datasets_core.logic import bulk_updates
from routes import ROUTES

api = Api(ROUTES["update_rows"])


@api.route
def update_rows(dataset_id: str):
    return api.once(lambda: ok(bulk_updates.update(api.principal, dataset_id, api.json_body())))


handler = api.handler
