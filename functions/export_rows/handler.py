"""GET /v1/datasets/{dataset_id}/export — every row of a query as one file (SPEC §8)."""

from datasets_core.http import Api, ok
from datasets_core.logic import replica_reads
from routes import ROUTES

api = Api(ROUTES["export_rows"])


@api.route
def export_rows(dataset_id: str):
    data, meta = replica_reads.export(api.principal, dataset_id, api.query_params())
    return ok(data, meta)


handler = api.handler
