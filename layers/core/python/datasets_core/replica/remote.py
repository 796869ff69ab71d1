"""The API functions' side of the replica: hand the work to the analytics function.

API functions stay light (no pyarrow, fast cold starts); the analytics function holds the
snapshots in memory and answers. Requests carry the caller's workspace and the raw query, so
the analytics function reads the dataset and parses the query itself, exactly as here.
"""

from __future__ import annotations

from typing import Any

from .. import invoke, jsonutil
from ..config import settings
from ..records import Dataset


def _call(action: str, dataset: Dataset, **arguments: Any) -> Any:
    # Arguments travel as JSON text: Lambda parses a payload with binary floats, and a number in
    # a ``where`` must reach the analytics function exactly.
    return invoke.call(
        settings().analytics_function_name,
        {
            "action": action,
            "workspace": dataset.workspace,
            "dataset_id": dataset.id,
            "arguments": jsonutil.dumps(arguments),
        },
    )


def query(dataset: Dataset, params: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(data, meta)`` of a rows query answered from the replica."""
    answer = _call("query", dataset, params=params)
    return answer["data"], answer["meta"]


def count(dataset: Dataset, params: dict[str, list[str]]) -> int:
    """The total of a rows query, counted on the replica."""
    return int(_call("count", dataset, params=params))


def matching(dataset: Dataset, where: Any, limit: int) -> tuple[int, list[int]]:
    """How many rows a bulk write's ``where`` matches now, and their row indexes (none when
    more than ``limit`` match)."""
    answer = _call("match", dataset, where=where, limit=limit)
    return int(answer["matched"]), [int(index) for index in answer["indexes"]]


def profile(dataset: Dataset, params: dict[str, list[str]]) -> dict[str, Any]:
    return dict(_call("profile", dataset, params=params))


def export(dataset: Dataset, params: dict[str, list[str]]) -> dict[str, Any]:
    return dict(_call("export", dataset, params=params))
