"""Drop-folder vocabulary shared by the uploads endpoint and the import worker (no pyarrow here).

- Key layout: ``<drop prefix><workspace>/<dataset name>/<file>`` (S3 event keys arrive
  URL-encoded, ``+`` for a space; ``DropKey.parse`` takes the decoded key).
- Formats by file extension: ``.parquet``, ``.csv``, ``.csv.gz``, ``.jsonl``.
- Options from S3 object metadata (``x-amz-meta-*``): ``mode`` (append | replace),
  ``upsert-on`` (an indexed column), ``max-bad-rows`` (default 0).
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError, model_validator

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


def import_id_of(bucket: str, key: str, version: str) -> str:
    """The import of one object version: the same file delivered twice is the same import."""
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version}".encode()).hexdigest()
    return "imp_" + digest[:24]


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


@dataclass(frozen=True)
class DropKey:
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


@dataclass(frozen=True)
class ImportOptions:
    mode: str = "append"
    upsert_on: str | None = None
    max_bad_rows: int = 0

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
        return ImportOptions(mode, upsert_on, int(raw))

    def metadata(self) -> dict[str, str]:
        """The S3 user metadata that carries these options (what an upload must send)."""
        meta = {META_MODE: self.mode}
        if self.upsert_on is not None:
            meta[META_UPSERT_ON] = self.upsert_on
        if self.max_bad_rows:
            meta[META_MAX_BAD_ROWS] = str(self.max_bad_rows)
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

    @model_validator(mode="after")
    def _upsert_appends(self) -> CreateUpload:
        if self.upsert_on is not None and self.mode == "replace":
            raise ValueError("upsert_on cannot be combined with mode 'replace'")
        return self

    def options(self) -> ImportOptions:
        return ImportOptions(self.mode, self.upsert_on, self.max_bad_rows)
