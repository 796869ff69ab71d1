"""GET /v1/datasets/{dataset_id}/rows — filter, search, order, page, distinct (SPEC §5)."""

from datasets_core.http import Api, ok
from datasets_core.logic import row_query
from routes import ROUTES

api = Api(ROUTES["query_rows"])


@api.route
def query_rows(dataset_id: str):
    data, meta = row_query.query(api.principal, dataset_id, api.query_params())
    return ok(data, meta)


handler = api.handler
