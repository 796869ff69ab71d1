"""GET /v1/imports/{import_id}/preview — the detected columns and first rows of a previewed upload."""

from datasets_core.http import Api, ok
from datasets_core.logic import imports
from routes import ROUTES

api = Api(ROUTES["import_preview"])


@api.route
def import_preview(import_id: str):
    return ok(imports.get_preview(api.principal, import_id))


handler = api.handler
