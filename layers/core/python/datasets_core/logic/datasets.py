"""Datasets: list, create, read, change and delete the tables rows live in."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from .. import auth
from ..config import settings
from ..errors import InvalidBody, InvalidQuery
from ..query.paging import parse_page, single
from ..store import datasets as dataset_store
from ..timeutil import now_iso
from . import indexes, maintenance

if TYPE_CHECKING:  # pydantic models: the read and delete functions must not load pydantic
    from ..models import CreateDataset, UpdateDataset

SORT_FIELDS = ("name", "created_at", "updated_at", "row_count")


def new_dataset_id() -> str:
    return "ds_" + secrets.token_hex(10)


def summary(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item["id"],
        "name": item["name"],
        "description": item.get("description"),
        "row_count": item.get("row_count", 0),
        "created_at": item["created_at"],
        "updated_at": item["updated_at"],
    }


def detail(item: dict[str, Any]) -> dict[str, Any]:
    return {
        **summary(item),
        "columns": [indexes.describe(column) for column in item.get("columns", [])],
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
    text = (single(params, "q") or "").casefold()
    sort_field, descending = _parse_sort(single(params, "sort"))
    unknown = sorted(set(params) - {"limit", "offset", "q", "sort"})
    if unknown:
        raise InvalidQuery(f"Unknown query parameter '{unknown[0]}'.", {"parameters": unknown})

    items = [item for item in dataset_store.list_all(principal.workspace) if text in item["name"].casefold()]

    def sort_key(item: dict[str, Any]) -> tuple[Any, ...]:
        if sort_field == "name":
            return (item["name"].casefold(), item["name"], item["id"])
        return (item.get(sort_field, 0), item["id"])

    items.sort(key=sort_key, reverse=descending)
    window = items[page.offset : page.offset + page.limit]
    return [summary(item) for item in window], {
        "total": len(items),
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


def create(principal: auth.Principal, request: CreateDataset) -> dict[str, Any]:
    names = [column.name for column in request.columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidBody(f"Column '{duplicates[0]}' is declared twice.", {"columns": duplicates})
    columns = [
        {"name": column.name, "type": column.type.value, "attr": f"c{ordinal}", "indexed": False}
        for ordinal, column in enumerate(request.columns)
    ]
    # A new dataset has no rows, so its declared indexes are ready at once.
    columns = indexes.with_indexes(columns, [c.name for c in request.columns if c.indexed], status="ready")
    at = now_iso()
    item = {
        "id": new_dataset_id(),
        "name": request.name,
        "description": request.description,
        "columns": columns,
        "next_column": len(request.columns),
        "shards": settings().row_shards,
        "row_count": 0,
        "next_row_index": 0,
        "created_at": at,
        "updated_at": at,
    }
    return detail(dataset_store.create(principal.workspace, item))


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
    backfill = []
    if request.indexes is not None and (request.indexes.add or request.indexes.drop):
        columns = indexes.without_indexes(current.get("columns", []), request.indexes.drop)
        columns = indexes.with_indexes(columns, request.indexes.add, status="building")
        backfill = [c["name"] for c in columns if c.get("index_status") == "building"]
        changes["columns"] = columns
    if not changes:
        return detail(current)
    changes["updated_at"] = now_iso()
    updated = dataset_store.update(
        principal.workspace,
        dataset_id,
        changes,
        expected_updated_at=current["updated_at"],
        rename_from=current["name"] if "name" in changes else None,
    )
    if request.indexes is not None and (request.indexes.drop or backfill):
        maintenance.request_reindex(principal.workspace, dataset_id)
    return detail(updated)


def delete(principal: auth.Principal, dataset_id: str) -> dict[str, Any]:
    current = dataset_store.get(principal.workspace, dataset_id)
    dataset_store.delete(principal.workspace, current, now_iso())
    maintenance.request_purge(principal.workspace, dataset_id)
    return {"id": dataset_id, "deleted": True}
