"""Typed records of what the meta table holds about a dataset: its columns and its state.

The store reads items into these records and writes them back; everything above the store
works with attributes, never with item dictionaries. A ``Dataset`` is immutable: a change is
a new record (``with_columns`` ...) written by the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Any

from msgspec import Struct
from msgspec.structs import replace

from .columns import ColumnType

INDEX_BUILDING = "building"
INDEX_READY = "ready"


class Column(Struct, frozen=True):
    """A user column: its name, type, stored attribute (``c0``, ``c1`` ...) and index slot."""

    name: str
    type: ColumnType
    attr: str
    slot: int | None = None  # the rows table's GSI ``idx<slot>`` when indexed
    index_status: str | None = None  # building | ready, when ``slot`` is set
    retired_slot: int | None = None  # a dropped index's slot, until its entries are gone

    @property
    def indexed(self) -> bool:
        return self.slot is not None

    @property
    def index_ready(self) -> bool:
        return self.slot is not None and self.index_status == INDEX_READY

    def describe(self) -> dict[str, Any]:
        """The API's view of a column."""
        shown: dict[str, Any] = {"name": self.name, "type": str(self.type), "indexed": self.indexed}
        if self.slot is not None:
            shown["index_status"] = self.index_status
        return shown

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"name": self.name, "type": str(self.type), "attr": self.attr}
        if self.slot is not None:
            item.update(slot=self.slot, index_status=self.index_status)
        if self.retired_slot is not None:
            item["retired_slot"] = self.retired_slot
        return item

    @staticmethod
    def from_item(item: dict[str, Any]) -> Column:
        slot = item.get("slot")
        retired = item.get("retired_slot")
        return Column(
            name=str(item["name"]),
            type=ColumnType(item["type"]),
            attr=str(item["attr"]),
            slot=int(slot) if slot else None,
            index_status=str(item.get("index_status") or INDEX_READY) if slot else None,
            retired_slot=int(retired) if retired else None,
        )


class Part(Struct, frozen=True):
    """One Parquet file of a snapshot: rows ``first``..``last`` (row indexes), sorted by them."""

    key: str
    rows: int
    bytes: int
    first: int
    last: int

    def to_item(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "rows": self.rows,
            "bytes": self.bytes,
            "first": self.first,
            "last": self.last,
        }

    @staticmethod
    def from_item(item: dict[str, Any]) -> Part:
        return Part(
            str(item["key"]), int(item["rows"]), int(item["bytes"]), int(item["first"]), int(item["last"])
        )


def import_origin(import_id: str) -> str:
    """The change log's origin for the rows an import writes (``api`` for the API's writes)."""
    return f"import:{import_id}"


def held_past(imports: Iterable[tuple[str, int]], cut: int) -> tuple[tuple[str, int], ...]:
    """Of a new snapshot's held imports (``(import id, its last log item)``), those whose log
    items reach past its ``cut``: readers keep skipping them; the others are behind the cut."""
    return tuple((import_id, last) for import_id, last in imports if last > cut)


class ReplicaPointer(Struct, frozen=True):
    """A columnar snapshot of the dataset's rows (SPEC §6b), one version of them.

    ``cut`` is a change-log position: the snapshot holds every change logged at or before it,
    and readers add the rows logged after it. ``imports`` lists imports whose rows the
    snapshot holds although their log items are after ``cut`` (an append import writes its
    rows' snapshot parts from the file): readers skip the log items of those origins, as
    ``(import id, position of its last log item)`` (past that position the entry is dropped).
    """

    version: int
    generation: int
    cut: int
    rows: int
    parts: tuple[Part, ...] = ()
    imports: tuple[tuple[str, int], ...] = ()
    created_at: str = ""
    cause: str = ""

    @property
    def bytes(self) -> int:
        return sum(part.bytes for part in self.parts)

    @property
    def end(self) -> int:
        """One past the highest row index the snapshot holds (0 when it holds none)."""
        return max((part.last for part in self.parts), default=-1) + 1

    def holds_origin(self, origin: str) -> bool:
        """Whether the snapshot already holds the rows of log items of ``origin``."""
        return any(origin == import_origin(import_id) for import_id, _ in self.imports)

    def to_item(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "generation": self.generation,
            "cut": self.cut,
            "rows": self.rows,
            "parts": [part.to_item() for part in self.parts],
            "imports": [[import_id, position] for import_id, position in self.imports],
            "created_at": self.created_at,
            "cause": self.cause,
        }

    @staticmethod
    def from_item(item: dict[str, Any] | None) -> ReplicaPointer | None:
        if not item:
            return None
        return ReplicaPointer(
            version=int(item["version"]),
            generation=int(item["generation"]),
            cut=int(item["cut"]),
            rows=int(item.get("rows", 0)),
            parts=tuple(Part.from_item(part) for part in item.get("parts", [])),
            imports=tuple((str(a), int(b)) for a, b in item.get("imports", [])),
            created_at=str(item.get("created_at", "")),
            cause=str(item.get("cause", "")),
        )


class Dataset(Struct, frozen=True, dict=True):  # dict: room for the cached_property
    """A dataset of a workspace, as read (with its counters) from the meta table."""

    workspace: str
    id: str
    name: str
    columns: tuple[Column, ...]
    next_column: int
    shards: int
    created_at: str
    updated_at: str
    description: str | None = None
    generation: int = 0
    row_count: int = 0  # the sum of its counter items, read with the dataset
    replacing: str | None = None  # the import id of a replace import that is writing
    replica: ReplicaPointer | None = None

    @cached_property
    def _by_name(self) -> dict[str, Column]:
        return {column.name: column for column in self.columns}

    def column(self, name: str) -> Column | None:
        return self._by_name.get(name)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def ready_indexes(self) -> dict[str, Column]:
        """Indexed columns whose index serves queries (a new index is backfilled first)."""
        return {column.name: column for column in self.columns if column.index_ready}

    @property
    def slotted(self) -> list[Column]:
        """Columns holding an index slot, ready or building: every write fills their entries."""
        return [column for column in self.columns if column.slot is not None]

    def with_columns(
        self, columns: tuple[Column, ...] | list[Column], next_column: int | None = None
    ) -> Dataset:
        return replace(
            self, columns=tuple(columns), next_column=self.next_column if next_column is None else next_column
        )

    def with_generation(self, generation: int) -> Dataset:
        return replace(self, generation=generation)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "row_count": self.row_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def to_item(self) -> dict[str, Any]:
        """The attributes of the dataset item (counters live in their own items)."""
        item: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "name_lower": self.name.casefold(),
            "description": self.description,
            "columns": [column.to_item() for column in self.columns],
            "next_column": self.next_column,
            "shards": self.shards,
            "generation": self.generation,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.replica is not None:
            item["replica"] = self.replica.to_item()
        return item

    @staticmethod
    def from_item(
        workspace: str, item: dict[str, Any], *, row_count: int = 0, replacing: str | None = None
    ) -> Dataset:
        columns = tuple(Column.from_item(column) for column in item.get("columns", []))
        return Dataset(
            workspace=workspace,
            id=str(item["id"]),
            name=str(item["name"]),
            description=item.get("description"),
            columns=columns,
            next_column=int(item.get("next_column", len(columns))),
            shards=int(item["shards"]),
            generation=int(item.get("generation", 0)),
            created_at=str(item["created_at"]),
            updated_at=str(item["updated_at"]),
            row_count=row_count,
            replacing=replacing,
            replica=ReplicaPointer.from_item(item.get("replica")),
        )
