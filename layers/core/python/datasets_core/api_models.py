"""Typed shapes of the API's bodies and answers (pydantic), for the OpenAPI document.

Request bodies validated by Powertools (datasets, keys, uploads) use their models from
``models.py`` / ``imports/models.py`` directly, so the document shows exactly what is
enforced. Row bodies are validated by hand in ``logic`` (their handlers must not import
pydantic at cold start); their models here describe the same shapes. Answers are built as
plain dicts by ``logic``; the models here are what the contract test checks them against.

Only the OpenAPI function (and tests) import this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .columns import ColumnType


class _Answer(BaseModel):
    """An answer object; fields may be added over time, so clients must ignore unknown ones."""


# --- shared -----------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable error code (SPEC §2 table).")
    message: str = Field(description="What went wrong and what to do about it.")
    details: dict[str, Any] = Field(description="Facts about the error: parameter, column, limits...")


class ErrorResponse(BaseModel):
    """Every error: HTTP status plus this envelope. Never a stack trace."""

    model_config = ConfigDict(title="ErrorResponse")
    error: ErrorBody


class ListMeta(_Answer):
    total: int = Field(description="Items in all, whatever limit and offset.")
    limit: int
    offset: int


class ChangesMeta(ListMeta):
    cut_at_bytes: bool | None = Field(
        default=None, description="True when the page stopped early to keep the answer under 5 MB."
    )
    next_offset: int | None = Field(
        default=None, description="With `cut_at_bytes`: the `offset` of the next page."
    )


# --- meta ---------------------------------------------------------------------------------------
class Health(_Answer):
    status: Literal["ok"]


# --- keys ---------------------------------------------------------------------------------------
class KeyInfo(_Answer):
    id: str = Field(description="Public id of the key (its prefix); used to revoke it.")
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class CreatedKey(KeyInfo):
    key: str = Field(description="The key itself, shown in this answer only: store it now.")


class RevokedKey(_Answer):
    id: str
    revoked: Literal[True]


# --- datasets -----------------------------------------------------------------------------------
class DatasetSummary(_Answer):
    id: str
    name: str
    description: str | None
    row_count: int
    created_at: datetime
    updated_at: datetime


class ColumnInfo(_Answer):
    name: str
    type: ColumnType
    indexed: bool
    index_status: Literal["building", "ready"] | None = Field(
        default=None, description="Indexed columns only: `building` while existing rows are backfilled."
    )


class DatasetLimits(_Answer):
    max_columns: int
    max_indexes: int
    max_rows_per_request: int


class DatasetDetail(DatasetSummary):
    columns: list[ColumnInfo]
    limits: DatasetLimits


class DeletedDataset(_Answer):
    id: str
    deleted: Literal[True]


# --- rows ---------------------------------------------------------------------------------------
class Row(BaseModel):
    """A row: its metadata plus one field per user column (any JSON value, typed by the column)."""

    model_config = ConfigDict(extra="allow")
    id: UUID
    row_index: int = Field(description="0-based insertion position, stable across deletes.")
    created_at: datetime
    updated_at: datetime


class SelectedRow(BaseModel):
    """A row of a query answer: `id` always (a group of an aggregated answer has none), the
    other fields as `select` chose (all by default)."""

    model_config = ConfigDict(extra="allow")
    id: UUID | None = None
    row_index: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RowsPage(_Answer):
    rows: list[SelectedRow]
    total: int | None = Field(description="Rows matching filters and search; null with count=none.")
    columns: list[str] = Field(description="User columns present in the rows.")


class DistinctValue(_Answer):
    value: Any
    count: int


class DistinctPage(_Answer):
    column: str
    values: list[DistinctValue] = Field(description="By count descending, then value.")
    total_unique: int


class ReplicaInfo(_Answer):
    version: int = Field(description="The snapshot version read (0: none yet, every row from the log).")
    snapshot_rows: int
    delta_rows: int = Field(description="Rows changed since the snapshot, read from DynamoDB.")


class TopValue(_Answer):
    value: Any
    count: int


class ColumnProfile(_Answer):
    name: str
    type: ColumnType
    count: int = Field(description="Non-null values (SQL's count(column)).")
    nulls: int
    null_rate: float = Field(description="nulls / row_count, to 6 decimals (0 with no rows).")
    distinct: int = Field(description="Distinct non-null values (SQL's count(distinct column)).")
    min: Any = Field(description="Smallest value in the column's order (text: case-insensitive, then exact).")
    max: Any
    top: list[TopValue] = Field(description="Up to 10 most frequent values: count descending, then value.")
    sum: Any = Field(default=None, description="Number columns: exact sum of the values (null: no values).")
    mean: Any = Field(default=None, description="Number columns: mean to 38 significant digits.")


class Profile(_Answer):
    row_count: int = Field(description="Rows profiled (those the filters match, all by default).")
    version: int = Field(description="Replica version read (see GET .../versions).")
    columns: list[ColumnProfile]


class ExportFile(_Answer):
    url: str = Field(description="Presigned GET of the file (no key needed; expires at expires_at).")
    expires_at: datetime
    format: Literal["csv", "jsonl", "parquet"]
    rows: int = Field(description="Rows in the file: every row the query matches.")
    bytes: int


class DatasetVersion(_Answer):
    version: int
    created_at: datetime | None
    row_count: int
    cause: str = Field(description="What made it: import, replace or compaction.")
    current: bool = Field(description="Whether queries without as_of read this version now.")
    bytes: int = Field(description="Size of its Parquet files.")


class ReplicaMeta(_Answer):
    plan: Literal["replica"]
    items_read: int = Field(description="DynamoDB items read: the changes since the snapshot.")
    replica: ReplicaInfo


class RowsMeta(_Answer):
    plan: str = Field(
        description="Access path: `index:<column>`, `scan` (row order), `replica`, or "
        "`replica+index:<column>` (page from the index, total from the replica)."
    )
    items_read: int = Field(description="DynamoDB items read (sum of ScannedCount).")
    limit: int
    offset: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")
    total_from: str | None = Field(
        default=None, description="What counted `total`: `counter`, `index`, `page` or `replica`."
    )
    replica: ReplicaInfo | None = Field(default=None, description="With replica plans: the snapshot read.")
    cut_at_bytes: bool | None = Field(
        default=None,
        description="True when the page stopped early to keep the answer under 5 MB (and Lambda's "
        "6 MB); it continues with `next_cursor` (rows) or `next_offset` (groups, distinct values).",
    )
    next_offset: int | None = Field(
        default=None,
        description="With `cut_at_bytes` on groups and distinct values (they page by offset): the "
        "`offset` of the next page.",
    )


class Inserted(_Answer):
    inserted: int
    updated: int | None = Field(default=None, description="With `upsert_on` only: rows merged.")
    rows: list[Row]
    abridged: bool | None = Field(
        default=None,
        description="True when `rows` carry only their ids and metadata: the whole echo would not "
        "fit in a response (or in the record an `Idempotency-Key` replay answers from).",
    )


class Updated(_Answer):
    updated: int


class Deleted(_Answer):
    deleted: int


class DeletedRow(_Answer):
    id: UUID
    deleted: Literal[True]


class ValueChange(BaseModel):
    old: Any
    new: Any


class ChangeEntry(_Answer):
    at: datetime
    op: Literal["insert", "update", "replace", "delete"]
    key_id: str | None = Field(description="The key that made the change.")
    changes: dict[str, ValueChange]


# Row values are any JSON value; a column's type decides what it accepts.
RowValues = dict[str, Any]
# The one-object shape of an insert: an object with a "rows" field is the wrapper shape.
OneRow = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "not": {"required": ["rows"]},
            "description": 'One row (an object with a "rows" field is read as {"rows": [...]}).',
        }
    ),
]


class InsertRows(BaseModel):
    """`{"rows": [...]}` (also a bare array of rows, or one row object)."""

    model_config = ConfigDict(extra="forbid")
    rows: list[RowValues] = Field(min_length=1, max_length=1000)
    upsert_on: str | None = Field(
        default=None,
        description="An indexed column: rows whose value there matches an existing row update that row.",
    )


class UpdateRows(BaseModel):
    """`PATCH .../rows`: set `set` on every row matching `where` (every row without `where`)."""

    model_config = ConfigDict(extra="forbid")
    where: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Maps a column to a value (equality; null means is null) or to an operator object: "
            '`{"amount": {"gte": 100, "lt": 500}}`, `{"tag": {"in": ["a", "b"]}}`, '
            '`{"vip": {"is": true}}`, `{"status": {"not": {"eq": "lost"}}}`. Conditions AND together. '
            "At most 10,000 matching rows per request."
        ),
    )
    set: RowValues = Field(min_length=1, description="Column values to write.")


class DeleteRowIds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    row_ids: list[str] = Field(max_length=1000, description="Ids not in the dataset are not counted.")


class DeleteWhere(BaseModel):
    model_config = ConfigDict(extra="forbid")
    where: dict[str, Any] = Field(min_length=1, description="As in `PATCH .../rows`; must not be empty.")


class PatchRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    set: RowValues = Field(description="Fields to change; the others keep their values.")


# --- imports ------------------------------------------------------------------------------------
class Upload(_Answer):
    import_id: str = Field(description="The import this upload starts (poll `GET /v1/imports/{import_id}`).")
    upload_url: str = Field(description="Presigned PUT URL into the drop folder.")
    method: Literal["PUT"]
    headers: dict[str, str] = Field(description="Headers the PUT must carry exactly (signed).")
    bucket: str
    key: str
    expires_at: datetime


class ImportSource(_Answer):
    bucket: str
    key: str
    size: int | None = None
    version: str | None = None
    etag: str | None = None
    sequencer: str | None = None


class ImportRowError(_Answer):
    row: int | None = Field(
        description="0-based data row of the file (the base of the rows API's errors; a CSV's header "
        "and blank lines are not rows); null for a problem with the whole file."
    )
    column: str | None
    message: str


class ImportReport(_Answer):
    id: str
    dataset_id: str | None
    dataset_name: str | None
    source: ImportSource
    format: str | None
    mode: Literal["append", "replace"] | None
    upsert_on: str | None
    max_bad_rows: int | None
    status: Literal["queued", "running", "succeeded", "failed"]
    reason: str | None = Field(None, description="Why a failed import failed, in one sentence.")
    types: dict[str, ColumnType] | None = Field(None, description="Column types the upload set.")
    preview: bool = Field(False, description="Whether the import waits for a commit after validation.")
    rows_total: int | None
    rows_imported: int | None
    rows_rejected: int | None
    errors: list[ImportRowError] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    chunks_total: int | None = Field(None, description="Chunks the file's rows are written in.")
    chunks_done: int | None = Field(None, description="Chunks written so far.")
    max_concurrent_chunks: int | None = Field(
        None, description="How many chunks were written at once, at most (set when it succeeds)."
    )


class PreviewColumn(_Answer):
    name: str
    type: ColumnType
    new: bool = Field(description="The column is new to the dataset (its type was detected or set).")
    detected: dict[str, int] | None = Field(
        None, description="`{seen, fit}`: of `seen` values, `fit` have the detected type."
    )


class ImportPreview(_Answer):
    import_id: str
    columns: list[PreviewColumn]
    rows: list[dict[str, Any]] = Field(description="The first rows as they would be imported.")
    rows_total: int | None
    rows_rejected: int | None
    errors: list[ImportRowError]
