"""DELETE /v1/keys/{key_id} — revoke a key (effective everywhere within 60 s)."""

from datasets_core.http import Api, ok
from datasets_core.logic import keys
from routes import ROUTES

api = Api(ROUTES["revoke_key"])


@api.route
def revoke_key(key_id: str):
    return ok(keys.revoke(api.principal, key_id))


handler = api.handler
