"""Datasets: list, create, read, change and delete the tables rows live in."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from .. import auth
from ..columns import normal_name
from ..config import settings
from ..errors import InvalidBody, InvalidQuery
from ..jobs import purge, reindex
from ..query.paging import parse_page, single
from ..records import INDEX_BUILDING, INDEX_READY, Column, Dataset
from ..store import datasets as dataset_store
from ..timeutil import now_iso
from . import indexes

if TYPE_CHECKING:  # pydantic models: the read and delete functions must not load pydantic
    from ..models import CreateDataset, UpdateDataset

SORT_FIELDS = ("name", "created_at", "updated_at", "row_count")
ROWS_PER_SHARD = 100_000


def new_dataset_id() -> str:
    return "ds_" + secrets.token_hex(10)


def detail(dataset: Dataset) -> dict[str, Any]:
    return {
        **dataset.summary(),
        "columns": [column.describe() for column in dataset.columns],
        "limits": {
            "max_columns": settings().max_columns,
            "max_indexes": settings().max_indexes,
            "max_rows_per_request": settings().max_rows_per_request,
        },
    }


def list_datasets(
    principal: auth.Principal, params: dict[str, list[str]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    page = parse_page(single(params, "limit"), single(params, "offset"))
    text = normal_name(single(params, "q") or "").casefold()
    sort_field, descending = _parse_sort(single(params, "sort"))
    unknown = sorted(set(params) - {"limit", "offset", "q", "sort"})
    if unknown:
        raise InvalidQuery(f"Unknown query parameter '{unknown[0]}'.", {"parameters": unknown})

    found = [
        dataset for dataset in dataset_store.list_all(principal.workspace) if text in dataset.name.casefold()
    ]

    def sort_key(dataset: Dataset) -> tuple[Any, ...]:
        if sort_field == "name":
            return (dataset.name.casefold(), dataset.name, dataset.id)
        return (getattr(dataset, sort_field), dataset.id)

    found.sort(key=sort_key, reverse=descending)
    window = found[page.offset : page.offset + page.limit]
    return [dataset.summary() for dataset in window], {
        "total": len(found),
        "limit": page.limit,
        "offset": page.offset,
    }


def _parse_sort(raw: str | None) -> tuple[str, bool]:
    if raw is None:
        return "created_at", False
    field, _, direction = raw.partition(".")
    if field not in SORT_FIELDS or direction not in ("", "asc", "desc"):
        raise InvalidQuery(
            f"sort must be one of {', '.join(SORT_FIELDS)}, optionally followed by .asc or .desc.",
            {"parameter": "sort", "value": raw},
        )
    return field, direction == "desc"


def shards_for(expected_rows: int) -> int:
    """Partition keys a generation's rows are spread over (README "Sharding"): one per
    ``ROWS_PER_SHARD`` expected rows, so a small dataset reads one partition and a big import
    writes at ``shards`` × 1,000 rows/s."""
    return max(1, min(settings().max_shards, -(-max(expected_rows, 1) // ROWS_PER_SHARD)))


def create(
    principal: auth.Principal, request: CreateDataset, *, expected_rows: int | None = None
) -> dict[str, Any]:
    return detail(create_dataset(principal.workspace, request, expected_rows=expected_rows))


def create_dataset(workspace: str, request: CreateDataset, *, expected_rows: int | None = None) -> Dataset:
    names = [column.name for column in request.columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidBody(f"Column '{duplicates[0]}' is declared twice.", {"columns": duplicates})
    columns = [
        Column(column.name, column.type, f"c{ordinal}") for ordinal, column in enumerate(request.columns)
    ]
    # A new dataset has no rows, so its declared indexes are ready at once.
    columns = indexes.with_indexes(
        columns, [c.name for c in request.columns if c.indexed], status=INDEX_READY
    )
    at = now_iso()
    expected = expected_rows if expected_rows is not None else (request.expected_rows or 0)
    dataset = Dataset(
        workspace=workspace,
        id=new_dataset_id(),
        name=request.name,
        description=request.description,
        columns=tuple(columns),
        next_column=len(columns),
        shards=shards_for(expected),
        created_at=at,
        updated_at=at,
    )
    return dataset_store.create(dataset)


def get(principal: auth.Principal, dataset_id: str) -> dict[str, Any]:
    return detail(dataset_store.get(principal.workspace, dataset_id))


def update(principal: auth.Principal, dataset_id: str, request: UpdateDataset) -> dict[str, Any]:
    current = dataset_store.get(principal.workspace, dataset_id)
    changes: dict[str, Any] = {}
    if "name" in request.model_fields_set:
        if request.name is None:
            raise InvalidBody("name cannot be null.", {"field": "name"})
        changes["name"] = request.name
        changes["name_lower"] = request.name.casefold()
    if "description" in request.model_fields_set:
        changes["description"] = request.description
    reindexing = False
    if request.indexes is not None and (request.indexes.add or request.indexes.drop):
        columns = indexes.without_indexes(current.columns, request.indexes.drop)
        columns = indexes.with_indexes(columns, request.indexes.add, status=INDEX_BUILDING)
        changes["columns"] = [column.to_item() for column in columns]
        reindexing = True
    if not changes:
        return detail(current)
    changes["updated_at"] = now_iso()
    updated = dataset_store.update(
        current,
        changes,
        expected_updated_at=current.updated_at,
        rename_from=current.name if "name" in changes else None,
    )
    if reindexing:
        reindex.request(principal.workspace, dataset_id, changes["updated_at"])
    return detail(updated)


def delete(principal: auth.Principal, dataset_id: str) -> dict[str, Any]:
    """Gone at once (name free, rows given back to the plan); its items are purged later."""
    current = dataset_store.get(principal.workspace, dataset_id)
    generations = dataset_store.generations_used(principal.workspace, dataset_id)
    job = purge.request_dataset(principal.workspace, dataset_id, current.shards, max(generations, 1))
    dataset_store.delete(current, [{"Put": {"TableName": settings().meta_table, "Item": job}}])
    purge.start_dataset(principal.workspace, dataset_id)
    return {"id": dataset_id, "deleted": True}
