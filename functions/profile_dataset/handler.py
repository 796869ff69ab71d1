"""GET /v1/datasets/{dataset_id}/profile — exact statistics of every column (SPEC §8)."""

from datasets_core.http import Api, ok
from datasets_core.logic import replica_reads
from routes import ROUTES

api = Api(ROUTES["profile_dataset"])


@api.route
def profile_dataset(dataset_id: str):
    data, meta = replica_reads.profile(api.principal, dataset_id, api.query_params())
    return ok(data, meta)


handler = api.handler
