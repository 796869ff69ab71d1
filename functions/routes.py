"""THE route table: every HTTP endpoint of the API, in one place.

Read by ``infra/api.py`` (one Lambda function, one API Gateway method and its IAM grants per
route) and by the local server (which dispatches on it exactly as API Gateway would).
Adding an endpoint is one entry here, one ``functions/<function>/handler.py`` and its contract
in ``functions/contracts.py`` (what it takes and answers, for the OpenAPI document).

Paths are relative to the ``v1`` stage: API Gateway serves ``/v1`` + path.
"""

from __future__ import annotations

from msgspec import Struct

# What a function may do: each capability is one IAM statement (infra/grants.py), exactly the
# actions its code calls. tests/infra/test_iam_calls.py checks, against the AWS calls recorded
# in the integration tests, that every call is allowed and every capability is used.
# Every route with a scope also gets the key lookup (GetItem and a last_used_at-only UpdateItem
# on KEY# items of the meta table) without naming it.
META_GET = "meta:GetItem"  # dataset, workspace, import and name-reservation items
META_QUERY = "meta:Query"  # a workspace's datasets (table)
META_INDEX = "meta/index:Query"  # a workspace's keys, a dataset's imports (gsi1)
META_PUT = "meta:PutItem"
META_UPDATE = "meta:UpdateItem"
META_DELETE = "meta:DeleteItem"
ROWS_GET = "rows:GetItem"
ROWS_QUERY = "rows:Query"  # a dataset's partitions, a row's change log (table)
ROWS_INDEX = "rows/index:Query"  # index plans (idx1..idx5: keys only, the rows by ROWS_BATCH_GET)
ROWS_PUT = "rows:PutItem"
ROWS_UPDATE = "rows:UpdateItem"
ROWS_DELETE = "rows:DeleteItem"
ROWS_BATCH_WRITE = "rows:BatchWriteItem"
ROWS_BATCH_GET = "rows:BatchGetItem"  # an index page's rows, the replica's delta, a bulk write's rows
META_CONDITION = "meta:ConditionCheckItem"  # transactions that check an item they do not write
REPLICA_GET = "replica:GetObject"  # snapshot files (and presigned export downloads)
REPLICA_PUT = "replica:PutObject"  # snapshot files, exports
REPLICA_DELETE = "replica:DeleteObject"  # versions past retention, a deleted dataset's files
REPLICA_LIST = "replica:ListBucket"  # a version's or dataset's files, to delete them
ANALYTICS_INVOKE = "analytics:InvokeFunction"  # replica answers (SPEC §6b)
IDEMPOTENCY = "idempotency"  # Powertools' records of Idempotency-Key requests
DROP_PUT = "drop:PutObject"  # presigned uploads under drop/
DROP_READ = "drop:GetObjectVersion"  # dropped files under drop/, at the version S3 announced
IMPORT_SEND = "import-queue:SendMessage"
MAINTENANCE_SEND = "maintenance-queue:SendMessage"

# Layers a function may need beyond the core layer (built by infra/build_layers.py).
DOCS_LAYER = "docs"  # Swagger UI's files


class Route(Struct, frozen=True):
    method: str
    path: str
    function: str
    scope: str | None
    grants: tuple[str, ...] = ()
    summary: str = ""
    layers: tuple[str, ...] = ()


# Every row write reads the dataset (Query), checks the plan and the dataset's state (GetItem),
# moves counters (UpdateItem), writes the audit trail (BatchWriteItem), honours Idempotency-Key.
ROWS_WRITE_COMMON = (META_GET, META_QUERY, META_UPDATE, ROWS_BATCH_WRITE, IDEMPOTENCY)

_TABLE: tuple[Route, ...] = (
    Route("GET", "/health", "health", None, (), "Liveness check"),
    Route("GET", "/openapi.json", "openapi", None, (), "OpenAPI document"),
    Route("GET", "/docs", "docs", None, (), "Swagger UI"),
    Route("GET", "/docs/{asset}", "docs_asset", None, (), "Swagger UI files", layers=(DOCS_LAYER,)),
    Route("GET", "/keys", "list_keys", "keys:admin", (META_INDEX,), "List API keys"),
    Route("POST", "/keys", "create_key", "keys:admin", (META_PUT,), "Create an API key"),
    Route("DELETE", "/keys/{key_id}", "revoke_key", "keys:admin", (META_UPDATE,), "Revoke a key"),
    Route("GET", "/datasets", "list_datasets", "datasets:read", (META_QUERY,), "List datasets"),
    Route(
        "POST",
        "/datasets",
        "create_dataset",
        "datasets:admin",
        (META_GET, META_QUERY, META_PUT, META_UPDATE),
        "Create a dataset",
    ),
    Route("GET", "/datasets/{dataset_id}", "get_dataset", "datasets:read", (META_QUERY,), "Get a dataset"),
    Route(
        "PATCH",
        "/datasets/{dataset_id}",
        "update_dataset",
        "datasets:admin",
        (META_QUERY, META_PUT, META_UPDATE, META_DELETE, MAINTENANCE_SEND),
        "Rename, describe or re-index a dataset",
    ),
    Route(
        "DELETE",
        "/datasets/{dataset_id}",
        "delete_dataset",
        "datasets:admin",
        (META_GET, META_QUERY, META_PUT, META_UPDATE, META_DELETE, MAINTENANCE_SEND),
        "Delete a dataset",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/rows",
        "query_rows",
        "datasets:read",
        (META_QUERY, ROWS_QUERY, ROWS_INDEX, ROWS_BATCH_GET, ANALYTICS_INVOKE),
        "Query rows",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/profile",
        "profile_dataset",
        "datasets:read",
        (META_QUERY, ANALYTICS_INVOKE),
        "Profile the columns",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/export",
        "export_rows",
        "datasets:read",
        (META_QUERY, ANALYTICS_INVOKE),
        "Export rows to a file",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/versions",
        "list_versions",
        "datasets:read",
        (META_QUERY,),
        "List kept versions",
    ),
    Route(
        "POST",
        "/datasets/{dataset_id}/rows",
        "insert_rows",
        "datasets:write",
        (
            *ROWS_WRITE_COMMON,
            META_PUT,
            META_CONDITION,
            ROWS_PUT,
            ROWS_GET,
            ROWS_UPDATE,
            ROWS_INDEX,
            ROWS_BATCH_GET,
            MAINTENANCE_SEND,  # a compaction, when the rows added since the snapshot cross its threshold
        ),
        "Insert (or upsert) rows",
    ),
    Route(
        "PATCH",
        "/datasets/{dataset_id}/rows",
        "update_rows",
        "datasets:write",
        (*ROWS_WRITE_COMMON, ROWS_INDEX, ROWS_PUT, ROWS_GET, ROWS_UPDATE, ROWS_BATCH_GET, ANALYTICS_INVOKE),
        "Update the rows matching a condition",
    ),
    Route(
        "DELETE",
        "/datasets/{dataset_id}/rows",
        "delete_rows",
        "datasets:write",
        # META_CONDITION: the count moves only while the rows' generation is live (a replace)
        (
            *ROWS_WRITE_COMMON,
            ROWS_INDEX,
            ROWS_DELETE,
            ROWS_PUT,
            ROWS_GET,
            ROWS_BATCH_GET,
            ANALYTICS_INVOKE,
            META_CONDITION,
        ),
        "Delete rows by id or by condition",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/rows/{row_id}",
        "get_row",
        "datasets:read",
        (META_QUERY, ROWS_GET),
        "Get a row",
    ),
    Route(
        "PATCH",
        "/datasets/{dataset_id}/rows/{row_id}",
        "update_row",
        "datasets:write",
        (*ROWS_WRITE_COMMON, ROWS_GET, ROWS_PUT, ROWS_UPDATE),
        "Update fields of a row",
    ),
    Route(
        "PUT",
        "/datasets/{dataset_id}/rows/{row_id}",
        "replace_row",
        "datasets:write",
        (*ROWS_WRITE_COMMON, ROWS_GET, ROWS_PUT, ROWS_UPDATE),
        "Replace a whole row",
    ),
    Route(
        "DELETE",
        "/datasets/{dataset_id}/rows/{row_id}",
        "delete_row",
        "datasets:write",
        # META_CONDITION: the count moves only while the row's generation is live (a replace)
        (*ROWS_WRITE_COMMON, ROWS_GET, ROWS_DELETE, ROWS_PUT, META_CONDITION),
        "Delete a row",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/rows/{row_id}/changes",
        "row_changes",
        "datasets:read",
        (META_QUERY, ROWS_QUERY, ROWS_GET),
        "Audit trail of a row",
    ),
    Route(
        "POST",
        "/datasets/{dataset_id}/uploads",
        "create_upload",
        "datasets:write",
        (META_QUERY, META_PUT, DROP_PUT, IDEMPOTENCY),
        "Presigned upload into the drop folder",
    ),
    Route(
        "GET",
        "/datasets/{dataset_id}/imports",
        "list_imports",
        "datasets:read",
        (META_QUERY, META_INDEX),
        "List imports",
    ),
    Route("GET", "/imports/{import_id}", "get_import", "datasets:read", (META_GET,), "Get an import"),
    Route(
        "GET",
        "/imports/{import_id}/preview",
        "import_preview",
        "datasets:read",
        (META_GET,),
        "Preview an import's detected columns and first rows",
    ),
    Route(
        "POST",
        "/imports/{import_id}/commit",
        "commit_import",
        "datasets:write",
        (META_GET, META_UPDATE, IMPORT_SEND, IDEMPOTENCY),
        "Import a previewed file (optionally with column types)",
    ),
)

ROUTES: dict[str, Route] = {route.function: route for route in _TABLE}


# Functions no route serves: queue consumers, and the analytics function the API functions
# invoke for replica answers (SPEC §6b). Each has a ``functions/<name>/handler.py`` too.
BACKGROUND_FUNCTIONS: dict[str, str] = {
    "import_file": "Imports files dropped into the drop folder (S3 -> SQS)",
    "maintenance": "Background jobs: purges, index backfills, compaction of the replica",
    "analytics": "Answers from the columnar replica: scans, aggregates, profile, export",
}
