"""A CSV request body (``POST .../rows`` with ``Content-Type: text/csv``, SPEC §5) as rows.

- RFC 4180: a header record naming the columns, then one record per row; a field may be
  double-quoted (holding commas, line breaks, and quotes written twice); CRLF or LF line ends;
  a leading UTF-8 byte order mark is ignored; blank lines are skipped. At most
  ``max_rows_per_request`` records (413 beyond).
- Header names lose surrounding spaces and are taken in NFC, like every column name; an empty,
  repeated or invalid name (metadata fields included: an insert cannot set ``id``) is refused.
- An empty cell is null. A cell is read as a value of its column: the dataset's type for a
  column it has, and for a new column the type SPEC §7 infers from all of the body's cells (the
  narrowest of boolean, number, date, datetime that fits every non-empty cell, else string,
  ``imports.text_types``) — as the drop folder types a CSV file.
- The first bad cell or record refuses the request, naming its 1-based line (the header is
  line 1; a record spanning lines is named by its first line) and its column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from msgspec import Struct

from .. import values
from ..columns import ColumnType, column_name_problem, normal_name
from ..config import settings
from ..errors import InvalidBody, PayloadTooLarge
from ..imports.text_types import TextTypes
from ..records import Dataset
from ..store import rows as row_store

_BOM = "\ufeff"


class CsvTable(Struct, frozen=True):
    """The body's header (column names, NFC) and records, each with the line it starts on."""

    names: list[str]
    records: list[tuple[int, list[str]]]


def parse(text: str) -> CsvTable:
    """The header and records of a CSV body; ``InvalidBody`` / ``PayloadTooLarge`` naming the line."""
    text = text.removeprefix(_BOM)
    if text.lstrip()[:1] in ("{", "["):
        raise InvalidBody(
            "The body was sent as text/csv but is JSON: send JSON rows with "
            "'Content-Type: application/json'.",
            {"content_type": "text/csv"},
        )
    limit = settings().max_rows_per_request
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1  # where the next record starts
    with _fields_up_to(settings().max_body_bytes):
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise InvalidBody(f"Line {line}: the CSV is malformed: {exc}.", {"line": line}) from exc
            start, line = line, reader.line_num + 1
            if not record:
                continue  # a blank line
            if header is None:
                header = _header(record)
                continue
            if len(record) != len(header):
                raise InvalidBody(
                    f"Line {start} has {len(record)} fields; the header has {len(header)}.",
                    {"line": start, "fields": len(record), "header_fields": len(header)},
                )
            records.append((start, record))
            if len(records) > limit:
                raise PayloadTooLarge(
                    f"At most {limit} rows per request; this CSV body has more.", {"limit": limit}
                )
    if header is None:
        raise InvalidBody("The CSV body is empty: it needs a header line naming its columns, then rows.")
    if not records:
        raise InvalidBody("Line 2: the CSV body has a header but no rows.", {"line": 2})
    return CsvTable(header, records)


def typed_rows(table: CsvTable, dataset: Dataset) -> tuple[list[dict[str, Any]], dict[str, ColumnType]]:
    """The rows of ``table`` with each cell read for its column, and the types of new columns."""
    types: dict[str, ColumnType] = {}
    for position, name in enumerate(table.names):
        known = dataset.column(name)
        if known is not None:
            types[name] = ColumnType(known.type)
            continue
        detector = TextTypes()
        for _, record in table.records:
            detector.add(record[position])
        detected = detector.result()
        if detected is not None:  # no value in any row: no column yet (as for JSON nulls)
            types[name] = detected
    rows = []
    for line, record in table.records:
        row = {
            name: _value(cell, name, types.get(name), line)
            for name, cell in zip(table.names, record, strict=True)
        }
        problem = row_store.oversize_problem(row.values())
        if problem:
            raise InvalidBody(
                f"Line {line}: {problem}.", {"line": line, "limit_bytes": row_store.MAX_ROW_BYTES}
            )
        rows.append(row)
    new_types = {name: kind for name, kind in types.items() if dataset.column(name) is None}
    return rows, new_types


def _value(cell: str, name: str, kind: ColumnType | None, line: int) -> Any:
    if cell == "" or kind is None:
        return None
    if kind is ColumnType.STRING:
        return cell
    try:
        return values.parse_text(cell, kind)
    except values.ValueProblem as exc:
        raise InvalidBody(
            f"Line {line}, column '{name}' ({kind.value}): {exc}.",
            {"line": line, "column": name, "type": kind.value, "value": cell[:100]},
        ) from exc


def _header(record: list[str]) -> list[str]:
    names = [normal_name(field.strip(" ")) for field in record]
    for position, name in enumerate(names):
        if not name:
            raise InvalidBody(
                f"Line 1: header field {position + 1} is empty; every column needs a name.",
                {"line": 1, "field": position + 1},
            )
        problem = column_name_problem(name)
        if problem:
            raise InvalidBody(f"Line 1: '{name}' cannot be a column: {problem}.", {"line": 1, "column": name})
        if names.index(name) != position:
            raise InvalidBody(f"Line 1: the header names '{name}' twice.", {"line": 1, "column": name})
    return names


@contextmanager
def _fields_up_to(size: int) -> Iterator[None]:
    """Let one field be as long as a body may be (``csv``'s default stops at 128 KB, while a row
    may hold far more). The limit is the module's, so it is restored afterwards."""
    previous = csv.field_size_limit(size)
    try:
        yield
    finally:
        csv.field_size_limit(previous)
