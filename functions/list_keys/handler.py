"""GET /v1/keys — the workspace's active keys, never their secrets."""

from datasets_core.http import Api, ok
from datasets_core.logic import keys
from routes import ROUTES

api = Api(ROUTES["list_keys"])


@api.route
def list_keys():
    items = keys.list_keys(api.principal)
    return ok(items, meta={"total": len(items), "limit": len(items), "offset": 0})


handler = api.handler
