"""GET /v1/health — liveness, no auth."""

from datasets_core.http import Api, ok
from routes import ROUTES

api = Api(ROUTES["health"])


@api.route
def health():
    return ok({"status": "ok"})


handler = api.handler
