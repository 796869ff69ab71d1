"""Uploads and import reports: the API side of the drop folder (no pyarrow here).

``POST .../uploads`` presigns a PUT into ``drop/<workspace>/<dataset name>/<file>`` carrying
the import options as S3 user metadata; the import itself runs in the import function when
S3 announces the object. Reports are read from the import records, keyed by workspace.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from .. import auth
from ..config import settings
from ..errors import ImportNotFound, InvalidBody, InvalidQuery
from ..query.paging import parse_page, single
from ..store import datasets as dataset_store
from ..store import imports as import_store
from ..timeutil import iso, now

if TYPE_CHECKING:  # pydantic models: reading import reports must not load pydantic
    from ..imports.models import CreateUpload

UPLOAD_URL_SECONDS = 3600


def create_upload(principal: auth.Principal, dataset_id: str, request: CreateUpload) -> dict[str, Any]:
    from ..imports.models import DropKey, format_of  # pydantic: already loaded by the request model

    dataset = dataset_store.get(principal.workspace, dataset_id)
    if request.upsert_on is not None and request.upsert_on not in dataset.ready_indexes:
        raise InvalidBody(
            f"upsert_on must name a column with a ready index; '{request.upsert_on}' is not one.",
            {"field": "upsert_on", "column": request.upsert_on},
        )
    drop = DropKey(principal.workspace, dataset.name, request.filename, format_of(request.filename) or "")
    key = drop.key(settings().drop_prefix)
    metadata = request.options().metadata()
    url = _presigner().generate_presigned_url(
        "put_object",
        Params={"Bucket": settings().drop_bucket, "Key": key, "Metadata": metadata},
        ExpiresIn=UPLOAD_URL_SECONDS,
        HttpMethod="PUT",
    )
    return {
        "upload_url": url,
        "method": "PUT",
        "headers": {f"x-amz-meta-{name}": value for name, value in metadata.items()},
        "bucket": settings().drop_bucket,
        "key": key,
        "expires_at": iso(now() + timedelta(seconds=UPLOAD_URL_SECONDS)),
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
