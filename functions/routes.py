"""THE route table: every HTTP endpoint of the API, in one place.

Read by ``infra/api.py`` (one Lambda function, one API Gateway method and its IAM grants per
route) and by the local server (which dispatches on it exactly as API Gateway would).
Adding an endpoint is one entry here, one ``functions/<function>/handler.py`` and its contract
in ``functions/contracts.py`` (what it takes and answers, for the OpenAPI document).

Paths are relative to the ``v1`` stage: API Gateway serves ``/v1`` + path.
"""

from __future__ import annotations

from dataclasses import dataclass

# Names of the resources a function may be granted (see infra/api.py for what each means).
META_READ = "meta:read"
META_WRITE = "meta:write"
ROWS_READ = "rows:read"
ROWS_WRITE = "rows:write"
IDEMPOTENCY = "idempotency"
DROP_PUT = "drop:put"
DROP_READ = "drop:read"
MAINTENANCE_SEND = "maintenance:send"

# Layers a function may need beyond the core layer (built by infra/build_layers.py).
DOCS_LAYER = "docs"  # Swagger UI's files


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: str
    scope: str | None
    grants: tuple[str, ...] = ()
    summary: str = ""
    layers: tuple[str, ...] = ()


_TABLE: tuple[Route, ...] = (
    Route("GET", "/health", "health", None, (), "Liveness check"),
    Route("GET", "/openapi.json", "openapi", None, (), "OpenAPI document"),
    Route("GET", "/docs", "docs", None, (), "Swagger UI"),
    Route("GET", "/docs/{asset}", "docs_asset", None, (), "Swagger UI files", layers=(DOCS_LAYER,)),
    Route("GET", "/keys", "list_keys", "keys:admin", (META_READ,), "List API keys"),
    Route("POST", "/keys", "create_key", "keys:admin", (META_WRITE,), "Create an API key"),
    Route("DELETE", "/keys/{key_id}", "revoke_key", "keys:admin", (META_WRITE,), "Revoke a key"),
    Route("GET", "/datasets", "list_datasets", "datasets:read", (META_READ,), "List datasets"),
    Route("POST", "/datasets", "create_dataset", "datasets:admin", (META_WRITE,), "Create a dataset"),
    Route("GET", "/datasets/{dataset_id}", "get_dataset", "datasets:read", (META_READ,), "Get a dataset"),
    Route(
        "PATCH",
        "/datasets/{dataset_id}",
        "update_dataset",
        "datasets:admin",
        (META_WRITE, MAINTENANCE_SEND),
        "Rename, describe or re-index a dataset",
    ),
    Route(
        "DELETE",
        "/datasets/{dataset_id}",
        "delete_dataset",
        "datasets:admin",
        (META_WRITE, MAINTENANCE_SEND),
        "Delete a dataset",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/rows",
        "query_rows",
        "datasets:read",
        (META_READ, ROWS_READ),
        "Query rows",
    ),
    Route(
        "POST",
        "/datasets/{dataset_id}/rows",
        "insert_rows",
        "datasets:write",
        (META_WRITE, ROWS_WRITE, IDEMPOTENCY),
        "Insert (or upsert) rows",
    ),
    Route(
        "PATCH",
        "/datasets/{dataset_id}/rows",
        "update_rows",
        "datasets:write",
        (META_WRITE, ROWS_WRITE, IDEMPOTENCY),
        "Update the rows matching a condition",
    ),
    Route(
        "DELETE",
        "/datasets/{dataset_id}/rows",
        "delete_rows",
        "datasets:write",
        (META_WRITE, ROWS_WRITE, IDEMPOTENCY),
        "Delete rows by id or by condition",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/rows/{row_id}",
        "get_row",
        "datasets:read",
        (META_READ, ROWS_READ),
        "Get a row",
    ),
    Route(
        "PATCH",
        "/datasets/{dataset_id}/rows/{row_id}",
        "update_row",
        "datasets:write",
        (META_WRITE, ROWS_WRITE, IDEMPOTENCY),
        "Update fields of a row",
    ),
    Route(
        "PUT",
        "/datasets/{dataset_id}/rows/{row_id}",
        "replace_row",
        "datasets:write",
        (META_WRITE, ROWS_WRITE, IDEMPOTENCY),
        "Replace a whole row",
    ),
    Route(
        "DELETE",
        "/datasets/{dataset_id}/rows/{row_id}",
        "delete_row",
        "datasets:write",
        (META_WRITE, ROWS_WRITE, IDEMPOTENCY),
        "Delete a row",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/rows/{row_id}/changes",
        "row_changes",
        "datasets:read",
        (META_READ, ROWS_READ),
        "Audit trail of a row",
    ),
    Route(
        "POST",
        "/datasets/{dataset_id}/uploads",
        "create_upload",
        "datasets:write",
        (META_WRITE, DROP_PUT, IDEMPOTENCY),
        "Presigned upload into the drop folder",
    ),
    Route(
        "GET", "/datasets/{dataset_id}/imports", "list_imports", "datasets:read", (META_READ,), "List imports"
    ),
    Route("GET", "/imports/{import_id}", "get_import", "datasets:read", (META_READ,), "Get an import"),
)

ROUTES: dict[str, Route] = {route.function: route for route in _TABLE}

# Functions no route serves: queue consumers, and the analytics function the API functions
# invoke for replica answers (SPEC §6b). Each has a ``functions/<name>/handler.py`` too.
BACKGROUND_FUNCTIONS: dict[str, str] = {
    "import_file": "Imports files dropped into the drop folder (S3 -> SQS)",
    "maintenance": "Background jobs: purges, index backfills, compaction of the replica",
    "analytics": "Answers from the columnar replica: scans, aggregates, profile, export",
}
