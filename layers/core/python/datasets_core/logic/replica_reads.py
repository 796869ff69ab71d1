"""Reads answered only by the replica: profile and export (SPEC §8), and its versions.

Profile and export run in the analytics function (``replica.remote``), which reads the
dataset and parses the query itself; the versions listing is the meta table's version items.
"""

from __future__ import annotations

from typing import Any

from .. import auth
from ..replica import layout, remote
from ..store import datasets as dataset_store


def profile(
    principal: auth.Principal, dataset_id: str, params: dict[str, list[str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    dataset = dataset_store.get(principal.workspace, dataset_id)
    answer = remote.profile(dataset, params)
    return answer["data"], answer["meta"]


def export(
    principal: auth.Principal, dataset_id: str, params: dict[str, list[str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    dataset = dataset_store.get(principal.workspace, dataset_id)
    answer = remote.export(dataset, params)
    return answer["data"], answer["meta"]


def versions(principal: auth.Principal, dataset_id: str) -> list[dict[str, Any]]:
    dataset = dataset_store.get(principal.workspace, dataset_id)
    current = dataset.replica.version if dataset.replica else None
    return [layout.public(pointer, current) for pointer in layout.published(dataset)]
