"""Drop-folder vocabulary shared by the uploads endpoint and the import worker (no pyarrow here).

- Key layout: ``<drop prefix><workspace>/<dataset name>/<file>`` (S3 event keys arrive
  URL-encoded, ``+`` for a space; ``DropKey.parse`` takes the decoded key).
- Formats by file extension: ``.parquet``, ``.csv``, ``.csv.gz``, ``.jsonl``.
- Options from S3 object metadata (``x-amz-meta-*``): ``mode`` (append | replace),
  ``upsert-on`` (an indexed column), ``max-bad-rows`` (default 0), ``types`` (column types
  that override inference: ``amount:number,born:date``; a name with a ``,``, ``:``, ``%`` or
  a non-ASCII character is percent-encoded), ``preview`` (``true``: stop after validation and
  wait for ``POST /v1/imports/{id}/commit``), ``chunk-rows`` (rows per parallel chunk for
  this file; ``IMPORT_PART_ROWS`` by default) and ``import-id`` (set by ``POST .../uploads``:
  the import id the upload was promised).
- Import ids: one per object version. An upload made through ``POST .../uploads`` carries the
  id it was promised; any other object's id is a digest of (bucket, key, version) or, when
  the bucket names no version, (bucket, key, ETag, sequencer): a redelivered event is the
  same import, a new PUT (even of the same bytes) a new one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from typing import Annotated, Literal
from urllib.parse import quote, unquote

from msgspec import Struct, field
from pydantic import AfterValidator, Field, ValidationError, model_validator

from ..columns import ColumnType
from ..models import ColumnName, CreateDataset, Strict

FORMATS: dict[str, str] = {".csv.gz": "csv.gz", ".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
CONTENT_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "csv.gz": "application/gzip",
    "jsonl": "application/x-ndjson",
}
MODES = ("append", "replace")
META_MODE = "mode"
META_UPSERT_ON = "upsert-on"
META_MAX_BAD_ROWS = "max-bad-rows"
META_TYPES = "types"
META_PREVIEW = "preview"
META_IMPORT_ID = "import-id"
META_CHUNK_ROWS = "chunk-rows"
CHUNK_ROWS_RANGE = (1_000, 1_000_000)
IMPORT_ID = re.compile(r"^imp_[0-9a-f]{24}$")
MAX_FILENAME = 255
STATUSES = ("queued", "running", "succeeded", "failed")


def format_of(filename: str) -> str | None:
    """``parquet`` / ``csv`` / ``csv.gz`` / ``jsonl`` from the file's extension, or None."""
    lowered = filename.lower()
    for extension, name in FORMATS.items():
        if lowered.endswith(extension) and len(lowered) > len(extension):
            return name
    return None


def supported_extensions() -> str:
    return ", ".join(sorted(FORMATS, key=len))


def import_id_of(
    bucket: str, key: str, version: str | None, etag: str | None = None, sequencer: str | None = None
) -> str:
    """The import of one object version: the same event delivered twice is the same import.

    A versioned bucket names the version; otherwise the ETag (the content) and the event's
    sequencer (S3's order of PUTs to one key) tell one PUT from another, so the same bytes
    uploaded again are a new import while a redelivered notification is not.
    """
    identity = version if version else f"etag={etag or ''};sequencer={sequencer or ''}"
    digest = hashlib.sha256(f"{bucket}\n{key}\n{identity}".encode()).hexdigest()
    return "imp_" + digest[:24]


def new_import_id() -> str:
    """The id promised to an upload (``POST .../uploads``) before its file exists."""
    return "imp_" + secrets.token_hex(12)


def filename_problem(filename: str) -> str | None:
    if not 1 <= len(filename) <= MAX_FILENAME:
        return f"filename must be 1–{MAX_FILENAME} characters"
    if "/" in filename or "\\" in filename:
        return "filename cannot contain '/' or '\\'"
    if any(unicodedata.category(ch) == "Cc" for ch in filename):
        return "filename cannot contain control characters"
    if format_of(filename) is None:
        return f"filename must end with one of {supported_extensions()}"
    return None


class DropKey(Struct, frozen=True):
    """Where a dropped object goes: ``drop/<workspace>/<dataset name>/<filename>``."""

    workspace: str
    dataset_name: str
    filename: str
    format: str

    @staticmethod
    def parse(key: str, prefix: str) -> DropKey | str:
        """The parts of a decoded object key, or why the key is not a drop-folder file."""
        if not key.startswith(prefix):
            return f"the key is outside the drop folder '{prefix}'"
        parts = key[len(prefix) :].split("/")
        if len(parts) != 3 or not all(parts):
            return f"expected {prefix}<workspace>/<dataset name>/<file>"
        workspace, dataset_name, filename = parts
        problem = filename_problem(filename)
        if problem:
            return problem
        try:
            name = CreateDataset(name=dataset_name).name  # NFC, as the API stores names
        except ValidationError as exc:
            return f"'{dataset_name}' cannot be a dataset name: {exc.errors()[0]['msg']}"
        return DropKey(workspace, name, filename, format_of(filename) or "")

    def key(self, prefix: str) -> str:
        return f"{prefix}{self.workspace}/{self.dataset_name}/{self.filename}"


def _encode_name(name: str) -> str:
    return quote(name, safe="")


def types_text(types: dict[str, str]) -> str:
    """``types`` as object metadata carries it: ``name:type,...`` (names percent-encoded)."""
    return ",".join(f"{_encode_name(name)}:{kind}" for name, kind in types.items())


def parse_types(text: str) -> dict[str, str] | str:
    """``name:type,...`` → ``{name: type}``, or what is wrong with it."""
    types: dict[str, str] = {}
    allowed = ", ".join(kind.value for kind in ColumnType)
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        name, sep, kind = entry.rpartition(":")
        name = unquote(name.strip())
        kind = kind.strip().lower()
        if not sep or not name:
            return f"x-amz-meta-{META_TYPES} entries are column:type, not '{entry}'"
        if kind not in {k.value for k in ColumnType}:
            return f"x-amz-meta-{META_TYPES}: '{kind}' is not a column type ({allowed})"
        if name in types:
            return f"x-amz-meta-{META_TYPES} names column '{name}' twice"
        types[name] = kind
    return types


class ImportOptions(Struct, frozen=True):
    mode: str = "append"
    upsert_on: str | None = None
    max_bad_rows: int = 0
    types: dict[str, str] = field(default_factory=dict)
    preview: bool = False
    chunk_rows: int | None = None  # rows per chunk for this file (default: IMPORT_PART_ROWS)

    @staticmethod
    def from_metadata(metadata: dict[str, str]) -> ImportOptions | str:
        """Options from S3 user metadata (keys without ``x-amz-meta-``), or what is wrong with them."""
        meta = {name.lower().replace("_", "-"): value.strip() for name, value in metadata.items()}
        mode = (meta.get(META_MODE) or "append").lower()
        if mode not in MODES:
            return f"x-amz-meta-{META_MODE} must be 'append' or 'replace', not '{mode}'"
        upsert_on = meta.get(META_UPSERT_ON) or None
        if upsert_on is not None and mode == "replace":
            return f"x-amz-meta-{META_UPSERT_ON} cannot be combined with mode 'replace'"
        raw = meta.get(META_MAX_BAD_ROWS) or "0"
        if not raw.isdigit():
            return f"x-amz-meta-{META_MAX_BAD_ROWS} must be a non-negative integer, not '{raw}'"
        types = parse_types(meta.get(META_TYPES) or "")
        if isinstance(types, str):
            return types
        preview = (meta.get(META_PREVIEW) or "false").lower()
        if preview not in ("true", "false"):
            return f"x-amz-meta-{META_PREVIEW} must be 'true' or 'false', not '{preview}'"
        chunk_rows = meta.get(META_CHUNK_ROWS) or None
        low, high = CHUNK_ROWS_RANGE
        if chunk_rows is not None and not (chunk_rows.isdigit() and low <= int(chunk_rows) <= high):
            return (
                f"x-amz-meta-{META_CHUNK_ROWS} must be a whole number from {low} to {high}, "
                f"not '{chunk_rows}'"
            )
        return ImportOptions(
            mode, upsert_on, int(raw), types, preview == "true", int(chunk_rows) if chunk_rows else None
        )

    def metadata(self) -> dict[str, str]:
        """The S3 user metadata that carries these options (what an upload must send)."""
        meta = {META_MODE: self.mode}
        if self.upsert_on is not None:
            meta[META_UPSERT_ON] = self.upsert_on
        if self.max_bad_rows:
            meta[META_MAX_BAD_ROWS] = str(self.max_bad_rows)
        if self.types:
            meta[META_TYPES] = types_text(self.types)
        if self.preview:
            meta[META_PREVIEW] = "true"
        if self.chunk_rows is not None:
            meta[META_CHUNK_ROWS] = str(self.chunk_rows)
        return meta


def _filename(name: str) -> str:
    problem = filename_problem(name)
    if problem:
        raise ValueError(problem)
    return name


class CreateUpload(Strict):
    """``POST /v1/datasets/{id}/uploads`` body."""

    filename: Annotated[str, AfterValidator(_filename)]
    mode: Literal["append", "replace"] = "append"
    upsert_on: ColumnName | None = None
    max_bad_rows: Annotated[int, Field(ge=0, le=1_000_000_000)] = 0
    types: Annotated[
        dict[ColumnName, ColumnType] | None,
        Field(
            description="Column types that override inference for the file's columns "
            "(sent as the `x-amz-meta-types` header).",
            max_length=500,
        ),
    ] = None
    preview: Annotated[
        bool,
        Field(
            description="Stop after validation: `GET /v1/imports/{id}/preview` shows the detected "
            "columns and first rows, `POST /v1/imports/{id}/commit` imports it."
        ),
    ] = False

    @model_validator(mode="after")
    def _upsert_appends(self) -> CreateUpload:
        if self.upsert_on is not None and self.mode == "replace":
            raise ValueError("upsert_on cannot be combined with mode 'replace'")
        return self

    def options(self) -> ImportOptions:
        types = {name: ColumnType(kind).value for name, kind in (self.types or {}).items()}
        return ImportOptions(self.mode, self.upsert_on, self.max_bad_rows, types, self.preview)


class CommitImport(Strict):
    """``POST /v1/imports/{id}/commit`` body (optional): types overriding the detected ones."""

    types: Annotated[
        dict[ColumnName, ColumnType] | None,
        Field(description="Column types that override the detected ones.", max_length=500),
    ] = None
