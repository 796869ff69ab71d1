"""POST /v1/datasets/{dataset_id}/rows — insert up to 1,000 rows (or upsert on an indexed column);
a ``text/csv`` body is read as CSV rows (header line first)."""

from datasets_core.http import Api, created
from datasets_core.logic import rows
from routes import ROUTES

api = Api(ROUTES["insert_rows"])


@api.route
def insert_rows(dataset_id: str):
    if api.media_type() == "text/csv":
        return api.once(lambda: created(rows.insert_csv(api.principal, dataset_id, api.body_text())))
    return api.once(lambda: created(rows.insert(api.principal, dataset_id, api.json_body())))


handler = api.handler
