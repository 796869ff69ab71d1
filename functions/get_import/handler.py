"""GET /v1/imports/{import_id} — one import's report and progress."""

from datasets_core.http import Api, ok
from datasets_core.logic import imports
from routes import ROUTES

api = Api(ROUTES["get_import"])


@api.route
def get_import(import_id: str):
    return ok(imports.get_import(api.principal, import_id))


handler = api.handler
