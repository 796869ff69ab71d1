"""Request models (pydantic); the column vocabulary is in ``columns``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Re-exported: the vocabulary lives in ``columns`` (importable without pydantic).
from .columns import (
    MAX_COLUMN_NAME,
    RESERVED_COLUMNS,
    ColumnType,
    column_name_problem,
    invisible_problem,
    normal_name,
)

__all__ = ["MAX_COLUMN_NAME", "RESERVED_COLUMNS", "ColumnType", "column_name_problem"]


def _column_name(name: str) -> str:
    name = normal_name(name)
    problem = column_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def _dataset_name(name: str) -> str:
    name = normal_name(name)
    if not name.strip():
        raise ValueError("dataset names cannot be blank")
    problem = invisible_problem(name, "dataset")
    if problem:
        raise ValueError(problem)
    if "/" in name:
        raise ValueError("dataset names cannot contain '/' (they name a drop-folder directory)")
    return name


ColumnName = Annotated[str, AfterValidator(_column_name)]
DatasetName = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_dataset_name)]
Description = Annotated[str, Field(max_length=2000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnDeclaration(Strict):
    name: ColumnName
    type: ColumnType
    indexed: bool = False


class CreateDataset(Strict):
    name: DatasetName
    description: Description | None = None
    columns: list[ColumnDeclaration] = Field(default_factory=list, max_length=500)
    # How many rows the dataset is expected to hold: sizes its partitions (README "Sharding").
    expected_rows: Annotated[int, Field(ge=0, le=10_000_000_000)] | None = None


class IndexChanges(Strict):
    add: list[ColumnName] = Field(default_factory=list, max_length=5)
    drop: list[ColumnName] = Field(default_factory=list, max_length=5)


class UpdateDataset(Strict):
    name: DatasetName | None = None
    description: Description | None = None
    indexes: IndexChanges | None = None


class CreateKey(Strict):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    scopes: Annotated[list[str], Field(min_length=1)]
    expires_at: datetime | None = None
