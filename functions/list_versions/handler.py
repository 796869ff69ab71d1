"""GET /v1/datasets/{dataset_id}/versions — the kept versions of a dataset (SPEC §8)."""

from datasets_core.http import Api, ok
from datasets_core.logic import replica_reads
from routes import ROUTES

api = Api(ROUTES["list_versions"])


@api.route
def list_versions(dataset_id: str):
    return ok(replica_reads.versions(api.principal, dataset_id))


handler = api.handler
