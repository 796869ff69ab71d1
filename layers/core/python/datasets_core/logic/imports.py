"""Uploads and import reports: the API side of the drop folder (no pyarrow here).

``POST .../uploads`` presigns a PUT into ``drop/<workspace>/<dataset name>/<file>`` carrying
the import options as S3 user metadata, and records the import it promises (``queued`` until
the file arrives; the id travels in ``x-amz-meta-import-id``, so the import S3 starts is that
one). Reports are read from the import records, keyed by workspace. An import uploaded with
``preview`` waits after validation: its preview is read here, and ``commit`` sends it on.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from .. import auth, aws
from ..config import settings
from ..errors import Conflict, ImportNotFound, InvalidBody, InvalidQuery
from ..query.paging import parse_page, single
from ..store import datasets as dataset_store
from ..store import imports as import_store
from ..timeutil import iso, now

if TYPE_CHECKING:  # pydantic models: reading import reports must not load pydantic
    from ..imports.models import CommitImport, CreateUpload

UPLOAD_URL_SECONDS = 3600
# A promised import whose file never arrives disappears this long after its URL expired.
UNUSED_UPLOAD_SECONDS = 86400


def create_upload(principal: auth.Principal, dataset_id: str, request: CreateUpload) -> dict[str, Any]:
    from ..imports.models import (  # pydantic: already loaded by the request model
        META_IMPORT_ID,
        DropKey,
        format_of,
        new_import_id,
    )

    dataset = dataset_store.get(principal.workspace, dataset_id)
    if request.upsert_on is not None and request.upsert_on not in dataset.ready_indexes:
        raise InvalidBody(
            f"upsert_on must name a column with a ready index; '{request.upsert_on}' is not one.",
            {"field": "upsert_on", "column": request.upsert_on},
        )
    drop = DropKey(principal.workspace, dataset.name, request.filename, format_of(request.filename) or "")
    key = drop.key(settings().drop_prefix)
    options = request.options()
    import_id = new_import_id()
    metadata = {**options.metadata(), META_IMPORT_ID: import_id}
    expires = now() + timedelta(seconds=UPLOAD_URL_SECONDS)
    import_store.create(
        principal.workspace,
        {
            "id": import_id,
            "dataset_id": dataset.id,
            "dataset_name": dataset.name,
            "source": {"bucket": settings().drop_bucket, "key": key},
            "format": drop.format,
            "mode": options.mode,
            "upsert_on": options.upsert_on,
            "max_bad_rows": options.max_bad_rows,
            "types": options.types or None,
            "preview": options.preview,
            "status": "queued",
            "awaiting": "upload",
            "expires_at_epoch": int(time.time()) + UPLOAD_URL_SECONDS + UNUSED_UPLOAD_SECONDS,
            "rows_imported": 0,
            "rows_rejected": 0,
            "errors": [],
            "created_at": iso(now()),
        },
    )
    url = _presigner().generate_presigned_url(
        "put_object",
        Params={"Bucket": settings().drop_bucket, "Key": key, "Metadata": metadata},
        ExpiresIn=UPLOAD_URL_SECONDS,
        HttpMethod="PUT",
    )
    return {
        "import_id": import_id,
        "upload_url": url,
        "method": "PUT",
        "headers": {f"x-amz-meta-{name}": value for name, value in metadata.items()},
        "bucket": settings().drop_bucket,
        "key": key,
        "expires_at": iso(expires),
    }


@cache
def _presigner() -> Any:
    # SigV4 signs the x-amz-meta-* headers, so an upload without the import options is refused
    # (the legacy default would move them into the query string and sign nothing).
    return boto3.session.Session().client("s3", config=Config(signature_version="s3v4"))


def list_imports(
    principal: auth.Principal, dataset_id: str, params: dict[str, list[str]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    unknown = sorted(set(params) - {"limit", "offset"})
    if unknown:
        raise InvalidQuery(f"Unknown query parameter '{unknown[0]}'.", {"parameters": unknown})
    page = parse_page(single(params, "limit"), single(params, "offset"))
    dataset_store.get(principal.workspace, dataset_id)  # dataset_not_found, also across workspaces
    records = import_store.list_for_dataset(principal.workspace, dataset_id)
    window = records[page.offset : page.offset + page.limit]
    return [import_store.public(record) for record in window], {
        "total": len(records),
        "limit": page.limit,
        "offset": page.offset,
    }


def get_import(principal: auth.Principal, import_id: str) -> dict[str, Any]:
    record = import_store.get(principal.workspace, import_id)
    if record is None:
        raise ImportNotFound(import_id)
    return import_store.public(record)


def get_preview(principal: auth.Principal, import_id: str) -> dict[str, Any]:
    """What an import uploaded with ``preview`` found: its columns (type, new or not, and the
    vote that typed a detected one), its first rows as they would be imported, its bad rows."""
    record = import_store.get(principal.workspace, import_id)
    if record is None:
        raise ImportNotFound(import_id)
    if not record.get("preview"):
        raise Conflict(
            "This import was not uploaded with preview; it imports without waiting for a commit.",
            {"import_id": import_id},
        )
    if record.get("stage") != "preview" or record.get("status") != "queued":
        if record.get("committed") or record.get("status") in import_store.TERMINAL:
            raise Conflict(
                f"This import is past its preview (status {record.get('status')}); "
                f"GET /v1/imports/{import_id}.",
                {"import_id": import_id, "status": record.get("status")},
            )
        raise Conflict(
            "The file is still being validated; its preview is ready when the import's stage is "
            "'preview'. Retry shortly.",
            {"import_id": import_id, "retry_after_seconds": 5},
        )
    data = record.get("preview_data") or {}
    return {
        "import_id": import_id,
        "columns": data.get("columns", []),
        "rows": data.get("rows", []),
        "rows_total": record.get("rows_total"),
        "rows_rejected": record.get("rows_rejected"),
        "errors": record.get("errors") or [],
    }


def commit_request(body: Any) -> CommitImport | None:
    """The commit body (``{"types": {column: type}}``, optional), or ``invalid_body``."""
    if body is None:
        return None
    from pydantic import ValidationError

    from ..imports.models import CommitImport

    try:
        return CommitImport.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise InvalidBody(f"{where}: {first.get('msg')}", {"field": where}) from exc


def commit(principal: auth.Principal, import_id: str, request: CommitImport | None) -> dict[str, Any]:
    """Send a previewed import on, with types overriding the detected ones if given (the file is
    then validated again with them)."""
    record = import_store.get(principal.workspace, import_id)
    if record is None:
        raise ImportNotFound(import_id)
    types = {
        str(name): str(getattr(kind, "value", kind))
        for name, kind in ((request.types or {}) if request else {}).items()
    }
    merged = {**(record.get("types") or {}), **types}
    if not import_store.commit(principal.workspace, import_id, merged, revalidate=bool(types)):
        raise Conflict(
            "Only an import waiting in its preview can be committed (once).",
            {"import_id": import_id, "status": record.get("status"), "stage": record.get("stage")},
        )
    aws.client("sqs").send_message(
        QueueUrl=settings().import_queue_url,
        MessageBody=json.dumps(
            {"import_continuation": {"workspace": principal.workspace, "import_id": import_id}}
        ),
    )
    committed = import_store.get(principal.workspace, import_id) or record
    return import_store.public(committed)
