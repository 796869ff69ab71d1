"""POST /v1/imports/{import_id}/commit — import a previewed file, optionally with column types."""

from datasets_core.http import Api, ok
from datasets_core.logic import imports
from routes import ROUTES

api = Api(ROUTES["commit_import"])


@api.route
def commit_import(import_id: str):
    # The body is optional ({"types": {...}} or nothing), so it is read here, not by Powertools.
    body = api.json_body() if api.body_text().strip() else None
    return api.once(
        lambda: ok(imports.commit(api.principal, import_id, imports.commit_request(body)), status=202)
    )


handler = api.handler
