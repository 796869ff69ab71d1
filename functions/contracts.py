"""The API contract of every route: parameters, body, answer and errors, one entry per route.

``routes.py`` says where an endpoint lives and who may call it; this table says what it
takes and what it answers. ``openapi/document.py`` turns both into the OpenAPI 3.1 document
(``GET /v1/openapi.json``), and the contract tests hold the endpoints to it. Adding an
endpoint is its route, its handler and one ``Contract`` here (a unit test refuses a route
without one); a new query parameter is one ``Param``.

Only the OpenAPI function and the tests import this module (it imports pydantic models);
API handlers never do, so their cold start does not pay for it.

Error responses are derived from the route where they follow from it (every route: 429,
500; with a scope: 401 ``unauthorized`` and 403 ``insufficient_scope``; with a body:
``invalid_body`` and ``payload_too_large``; taking an ``Idempotency-Key``: ``conflict``; with
query parameters: ``invalid_query``; each path parameter: its own codes). ``errors`` adds the
codes particular to an endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct

from datasets_core import api_models as m
from datasets_core.imports.models import CommitImport, CreateUpload
from datasets_core.models import CreateDataset, CreateKey, UpdateDataset
from datasets_core.query import operators
from datasets_core.query.grammar import RESERVED_PARAMS
from datasets_core.query.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET

KEYS, DATASETS, ROWS, IMPORTS, META = "keys", "datasets", "rows", "imports", "meta"

TAGS: dict[str, str] = {
    KEYS: "API keys of the workspace: create (the key is shown once), list, revoke.",
    DATASETS: "Datasets: typed columns, up to 5 indexes, row counts.",
    ROWS: "Rows of a dataset: PostgREST-style queries, single and bulk writes, audit trail.",
    IMPORTS: "Files imported through the S3 drop folder or a presigned upload.",
    META: "Health, this document and its Swagger UI (no key needed).",
}


class Param(Struct, frozen=True):
    """A path, query or header parameter; ``schema`` is its JSON Schema."""

    name: str
    location: str
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False
    example: Any = None
    style: str | None = None
    explode: bool | None = None
    # Error codes a bad or unknown value of this parameter produces (path parameters).
    errors: tuple[str, ...] = ()


class Body(Struct, frozen=True):
    """A JSON request body: its type (a pydantic model or any annotation) and named examples."""

    type: Any
    examples: Mapping[str, tuple[str, Any]]
    description: str = ""


class Answer(Struct, frozen=True):
    """The success response. ``data``/``meta``: types of the envelope's members; ``raw``: a body
    that is not in the envelope (its JSON Schema)."""

    status: int = 200
    data: Any = None
    meta: Any = None
    description: str = ""
    media_types: tuple[str, ...] = ("application/json",)
    raw: Mapping[str, Any] | None = None


class Contract(Struct, frozen=True):
    tag: str
    answer: Answer
    description: str = ""
    query: tuple[Param, ...] = ()
    body: Body | None = None
    errors: tuple[str, ...] = ()


# --- parameters ---------------------------------------------------------------------------------
PATH_PARAMS: dict[str, Param] = {
    "dataset_id": Param(
        "dataset_id",
        "path",
        {"type": "string"},
        "Id of a dataset of the caller's workspace.",
        required=True,
        example="ds_9dff29c3a66cb3de0ac2",
        errors=("dataset_not_found",),
    ),
    "row_id": Param(
        "row_id",
        "path",
        {"type": "string", "format": "uuid"},
        "Id of a row (a UUID).",
        required=True,
        example="00000000-0001-83c6-b750-7fb93a3ea614",
        errors=("invalid_row_id", "row_not_found"),
    ),
    "key_id": Param(
        "key_id",
        "path",
        {"type": "string"},
        "Public id of a key (`id` in the key listing).",
        required=True,
        example="ulcnivhz11s9iz7r",
        errors=("key_not_found",),
    ),
    "import_id": Param(
        "import_id",
        "path",
        {"type": "string"},
        "Id of an import.",
        required=True,
        example="imp_620f2fab18046ef7f93acda8",
        errors=("import_not_found",),
    ),
    "asset": Param(
        "asset",
        "path",
        {"type": "string"},
        "A file of Swagger UI.",
        required=True,
        example="swagger-ui-bundle.js",
        errors=("not_found",),
    ),
}

LIMIT = Param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}); out of range is 400, never clamped.",
)
OFFSET = Param(
    "offset",
    "query",
    {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
    "Items to skip.",
)
PAGE = (LIMIT, OFFSET)

_OPS = list(operators.REGISTRY)
FILTER_GRAMMAR = f"""Filters: every query parameter that is not one of {", ".join(sorted(RESERVED_PARAMS))}
is a filter `{{column}}=[not.]{{op}}.{{value}}` on that column (URL-encode the column name).
Several filters AND together, also on one column.

Operators: {", ".join(f"`{op}`" for op in _OPS)}.
`eq`/`neq`/`gt`/`gte`/`lt`/`lte` compare in the column's type (numbers numerically, dates
chronologically, text exactly); `contains` and `starts_with` are case-insensitive on the value's
text (`like`/`ilike` are aliases of `contains`; `*`/`%` at the ends are dropped);
`in.(a,b,"c,d")` is one of a list (double-quote items holding `,` `(` `)` `"`);
`is.null`, `is.true`, `is.false`. `not.` negates any operator. A comparison never matches a
null value (use `is.null`). Values are typed by the column: `amount=gte.abc` on a number
column is 400 `invalid_query`.

A `+` in a value must be sent as `%2B`: a raw `+` in a query string is a space.

Examples: `status=eq.active`, `amount=gte.100`, `email=starts_with.ann`,
`status=not.in.(lost,spam)`, `notes=is.null`, `signed=lt.2024-06-01`."""

ROWS_QUERY: tuple[Param, ...] = (
    Param(
        "filters",
        "query",
        {
            "type": "object",
            "propertyNames": {"not": {"enum": sorted(RESERVED_PARAMS)}},
            "additionalProperties": {
                "type": "string",
                "pattern": rf"^(not\.)?({'|'.join(_OPS)})\.",
            },
        },
        FILTER_GRAMMAR,
        example={"status": "eq.active", "amount": "gte.100"},
        style="form",
        explode=True,
    ),
    Param(
        "select",
        "query",
        {"type": "string"},
        "Columns to return, comma-separated (`id` is always included; metadata fields by name; "
        'double-quote a name holding a comma: `"a,b"`). `*` or absent: every column.',
        example="name,amount",
    ),
    Param(
        "order",
        "query",
        {"type": "string"},
        "`col.asc|col.desc[,col2.desc]`, optionally `.nullsfirst`/`.nullslast`. Type-aware; ties "
        "break by `row_index` ascending. Default `row_index.asc`.",
        example="amount.desc,name",
    ),
    *PAGE,
    Param(
        "cursor",
        "query",
        {"type": "string"},
        "Keyset pagination: `meta.next_cursor` of the previous page of the same query.",
    ),
    Param(
        "count",
        "query",
        {"type": "string", "enum": ["exact", "none"], "default": "exact"},
        "`none` skips computing `total` (returned as null).",
    ),
    Param(
        "distinct",
        "query",
        {"type": "string"},
        'A column: answers `{"column", "values": [{"value", "count"}], "total_unique"}` instead of rows, '
        "honouring filters and search, by count descending.",
        example="status",
    ),
    Param(
        "search",
        "query",
        {"type": "string"},
        "Case-insensitive substring over every column's text.",
        example="acme",
    ),
)

AS_OF = Param(
    "as_of",
    "query",
    {"type": "integer", "minimum": 1},
    "Read a kept version of the dataset exactly (`GET .../versions` lists them).",
    example=3,
)
_FILTERS, _SELECT, _ORDER, _SEARCH = (
    ROWS_QUERY[0],
    ROWS_QUERY[1],
    ROWS_QUERY[2],
    next(param for param in ROWS_QUERY if param.name == "search"),
)
PROFILE_QUERY: tuple[Param, ...] = (_FILTERS, _SEARCH, AS_OF)
EXPORT_QUERY: tuple[Param, ...] = (
    Param(
        "format",
        "query",
        {"type": "string", "enum": ["csv", "jsonl", "parquet"], "default": "csv"},
        "File format: CSV (RFC 4180, header row), JSON Lines, or Parquet.",
        example="csv",
    ),
    _FILTERS,
    _SELECT,
    _ORDER,
    _SEARCH,
    AS_OF,
)

_SORTS = ["name", "created_at", "updated_at", "row_count"]
DATASETS_QUERY: tuple[Param, ...] = (
    *PAGE,
    Param("q", "query", {"type": "string"}, "Case-insensitive text in the dataset's name.", example="lea"),
    Param(
        "sort",
        "query",
        {"type": "string", "enum": [f"{s}{d}" for s in _SORTS for d in ("", ".asc", ".desc")]},
        "Sort field, optionally `.asc`/`.desc` (default `created_at`).",
        example="name",
    ),
)

IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 255},
    "A retry with the same key and the same request returns the first answer and writes nothing "
    "again (for 24 hours); the same key with another request is 409 `conflict`.",
    example="order-7731",
)

# --- bodies -------------------------------------------------------------------------------------
_ROWS = [
    {"email": "a@acme.io", "name": "Acme", "status": "active", "amount": 1200},
    {"email": "b@beta.io", "name": "Beta", "status": "pending", "amount": 75},
]

INSERT_ROWS = Body(
    m.InsertRows | list[m.RowValues] | m.OneRow,
    {
        "wrapped": ('{"rows": [...]}', {"rows": _ROWS}),
        "array": ("A bare array of rows", _ROWS),
        "object": ("One row object", {"email": "c@gamma.io", "name": "Gamma"}),
        "upsert": (
            "Upsert on an indexed column",
            {"rows": [{"email": "a@acme.io", "status": "won"}], "upsert_on": "email"},
        ),
    },
    "Up to 1,000 rows, all validated before any is written (one bad row refuses the request, naming "
    "it). Unknown fields add columns; the first value written to a new column defines its type.",
)

UPDATE_ROWS = Body(
    m.UpdateRows,
    {
        "where_set": (
            "Set a field on matching rows",
            {"where": {"status": "pending"}, "set": {"status": "active"}},
        ),
        "operators": (
            "Operator objects in where",
            {"where": {"amount": {"gte": 100, "lt": 500}, "notes": None}, "set": {"tier": "mid"}},
        ),
        "every_row": ("No where: every row", {"set": {"reviewed": True}}),
    },
)

DELETE_ROWS = Body(
    m.DeleteRowIds | m.DeleteWhere,
    {
        "row_ids": ("By id (up to 1,000)", {"row_ids": ["00000000-0001-83c6-b750-7fb93a3ea614"]}),
        "where": ("By condition", {"where": {"status": {"in": ["lost", "spam"]}}}),
    },
)

PATCH_ROW = Body(m.PatchRow, {"set": ("Change some fields", {"set": {"notes": "Reviewed", "amount": 1300}})})

REPLACE_ROW = Body(
    m.RowValues,
    {"row": ("The whole row (missing fields become null)", {"email": "a@acme.io", "name": "Acme Inc"})},
    "The row's user fields. Metadata fields (`id`, `row_index`, `created_at`, `updated_at`) may be "
    "sent only with their current values.",
)

CREATE_DATASET = Body(
    CreateDataset,
    {
        "typed": (
            "With typed, indexed columns",
            {
                "name": "Leads",
                "description": "Inbound leads",
                "columns": [
                    {"name": "email", "type": "string", "indexed": True},
                    {"name": "amount", "type": "number"},
                ],
            },
        ),
        "minimal": ("Name only (columns come from the first rows)", {"name": "Leads"}),
    },
)

UPDATE_DATASET = Body(
    UpdateDataset,
    {
        "rename": ("Rename and describe", {"name": "Leads 2025", "description": "Inbound leads"}),
        "indexes": (
            "Add and drop indexes (existing rows are backfilled)",
            {"indexes": {"add": ["status"], "drop": ["email"]}},
        ),
    },
)

CREATE_KEY = Body(
    CreateKey,
    {
        "read_only": ("A read-only key", {"name": "reporting", "scopes": ["datasets:read"]}),
        "expiring": (
            "An expiring writer",
            {
                "name": "etl",
                "scopes": ["datasets:read", "datasets:write"],
                "expires_at": "2027-01-01T00:00:00Z",
            },
        ),
    },
    "A key cannot grant scopes its creator does not hold.",
)

CREATE_UPLOAD = Body(
    CreateUpload,
    {
        "append": ("Append a CSV file", {"filename": "people.csv"}),
        "replace": (
            "Replace every row with a Parquet file",
            {"filename": "sales.parquet", "mode": "replace"},
        ),
        "upsert": ("Upsert on an indexed column", {"filename": "leads.jsonl", "upsert_on": "email"}),
        "typed_preview": (
            "Set a column's type and preview before importing",
            {"filename": "people.csv", "types": {"zip": "string"}, "preview": True},
        ),
    },
)

COMMIT_IMPORT = Body(
    CommitImport,
    {
        "as_detected": ("Import with the detected types", {}),
        "with_types": ("Override detected types", {"types": {"zip": "string", "amount": "number"}}),
    },
    "Optional: with `types` the file is validated again with them before it is imported.",
)

# --- the table ----------------------------------------------------------------------------------
CONTRACTS: dict[str, Contract] = {
    "health": Contract(META, Answer(data=m.Health, description="The API is up.")),
    "openapi": Contract(
        META,
        Answer(raw={"type": "object"}, description="This OpenAPI 3.1 document."),
    ),
    "docs": Contract(
        META,
        Answer(
            media_types=("text/html",), raw={"type": "string"}, description="Swagger UI over this document."
        ),
    ),
    "docs_asset": Contract(
        META,
        Answer(
            media_types=("text/javascript", "text/css"),
            raw={"type": "string"},
            description="A file of Swagger UI, served by the API itself (no CDN).",
        ),
    ),
    "list_keys": Contract(
        KEYS,
        Answer(data=list[m.KeyInfo], meta=m.ListMeta, description="Active keys, oldest first; no secrets."),
    ),
    "create_key": Contract(
        KEYS,
        Answer(201, m.CreatedKey, description="The new key; `key` is its plaintext, shown this once."),
        body=CREATE_KEY,
    ),
    "revoke_key": Contract(
        KEYS, Answer(data=m.RevokedKey, description="Revoked (effective everywhere within 60 s).")
    ),
    "list_datasets": Contract(
        DATASETS,
        Answer(data=list[m.DatasetSummary], meta=m.ListMeta, description="The workspace's datasets."),
        query=DATASETS_QUERY,
    ),
    "create_dataset": Contract(
        DATASETS,
        Answer(201, m.DatasetDetail, description="The new dataset."),
        body=CREATE_DATASET,
        errors=("dataset_name_taken", "plan_limit_exceeded"),
    ),
    "get_dataset": Contract(DATASETS, Answer(data=m.DatasetDetail, description="Columns, counts, limits.")),
    "update_dataset": Contract(
        DATASETS,
        Answer(data=m.DatasetDetail, description="The dataset as changed."),
        body=UPDATE_DATASET,
        errors=("dataset_name_taken", "conflict"),
    ),
    "delete_dataset": Contract(
        DATASETS,
        Answer(data=m.DeletedDataset, description="Gone at once; rows are removed in the background."),
    ),
    "query_rows": Contract(
        ROWS,
        Answer(
            data=m.RowsPage | m.DistinctPage,
            meta=m.RowsMeta,
            description="A page of rows (or, with `distinct`, the column's values and counts).",
        ),
        query=ROWS_QUERY,
    ),
    "profile_dataset": Contract(
        ROWS,
        Answer(data=m.Profile, meta=m.ReplicaMeta, description="Exact statistics of every column."),
        description="Per column: count, nulls, distinct, min, max, the 10 most frequent values, and for "
        "numbers sum and mean, over the rows the filters match (every row by default).",
        query=PROFILE_QUERY,
        errors=("version_not_found",),
    ),
    "export_rows": Contract(
        ROWS,
        Answer(data=m.ExportFile, meta=m.ReplicaMeta, description="The file, ready to download."),
        description="Every row the query matches, in its order, written to one file; answered with a "
        "presigned URL. The file holds what GET .../rows would answer, page after page.",
        query=EXPORT_QUERY,
        errors=("version_not_found",),
    ),
    "list_versions": Contract(
        DATASETS,
        Answer(data=list[m.DatasetVersion], description="Kept versions, newest first."),
        description="Snapshots of the dataset kept for `as_of` reads until their retention ends.",
    ),
    "insert_rows": Contract(
        ROWS,
        Answer(201, m.Inserted, description="The rows as stored (ids, row_index, timestamps)."),
        body=INSERT_ROWS,
        errors=("plan_limit_exceeded",),
    ),
    "update_rows": Contract(
        ROWS, Answer(data=m.Updated, description="How many rows changed."), body=UPDATE_ROWS
    ),
    "delete_rows": Contract(
        ROWS,
        Answer(data=m.Deleted, description="How many rows were deleted (unknown ids are not counted)."),
        body=DELETE_ROWS,
        errors=("invalid_row_id",),
    ),
    "get_row": Contract(ROWS, Answer(data=m.Row, description="The row.")),
    "update_row": Contract(ROWS, Answer(data=m.Row, description="The row as changed."), body=PATCH_ROW),
    "replace_row": Contract(ROWS, Answer(data=m.Row, description="The row as replaced."), body=REPLACE_ROW),
    "delete_row": Contract(ROWS, Answer(data=m.DeletedRow, description="Deleted.")),
    "row_changes": Contract(
        ROWS,
        Answer(
            data=list[m.ChangeEntry],
            meta=m.ChangesMeta,
            description="The row's audit trail, newest first (kept 90 days).",
        ),
        query=PAGE,
    ),
    "create_upload": Contract(
        IMPORTS,
        Answer(
            201,
            m.Upload,
            description="PUT the file to `upload_url` with exactly `headers`; S3 then starts the import.",
        ),
        body=CREATE_UPLOAD,
    ),
    "list_imports": Contract(
        IMPORTS,
        Answer(
            data=list[m.ImportReport], meta=m.ListMeta, description="The dataset's imports, newest first."
        ),
        query=PAGE,
    ),
    "get_import": Contract(
        IMPORTS, Answer(data=m.ImportReport, description="An import's report and progress.")
    ),
    "import_preview": Contract(
        IMPORTS,
        Answer(
            data=m.ImportPreview,
            description="Detected columns, first rows and bad rows of an upload made with `preview`.",
        ),
        errors=("conflict",),
    ),
    "commit_import": Contract(
        IMPORTS,
        Answer(202, m.ImportReport, description="The import goes on; poll `GET /v1/imports/{import_id}`."),
        body=COMMIT_IMPORT,
        errors=("conflict",),
    ),
}
