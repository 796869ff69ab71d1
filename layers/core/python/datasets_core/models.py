"""Request models (pydantic) and the column vocabulary shared by every endpoint."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

RESERVED_COLUMNS = frozenset({"id", "row_index", "created_at", "updated_at"})
MAX_COLUMN_NAME = 128


class ColumnType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"


def column_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user column, or None when it can."""
    if not 1 <= len(name) <= MAX_COLUMN_NAME:
        return f"column names are 1–{MAX_COLUMN_NAME} characters"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "column names cannot contain control characters"
    if name in RESERVED_COLUMNS:
        return f"'{name}' is reserved ({', '.join(sorted(RESERVED_COLUMNS))})"
    return None


def _column_name(name: str) -> str:
    problem = column_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def _dataset_name(name: str) -> str:
    if not name.strip():
        raise ValueError("dataset names cannot be blank")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise ValueError("dataset names cannot contain control characters")
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
