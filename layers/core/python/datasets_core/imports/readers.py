"""File readers: a dropped file as a sequence of resumable chunks of rows.

Every reader yields ``Chunk``s of at most ``chunk_rows`` rows. A chunk knows the position it
starts at and the one after it, so an import interrupted between two chunks resumes at
exactly the next one:

- Parquet: ``{"group": row group, "offset": row within the group, "row": rows before}``.
  Row groups are read one at a time (memory follows the row group, not the file).
- CSV / CSV.gz / JSON Lines: ``{"byte": offset in the (decompressed) text, "row": rows
  before}``. Resuming seeks there (gzip seeks forward by decompressing) instead of
  re-parsing every earlier record.

Row numbers are 1-based data rows: a CSV's header is not a row, blank lines are not rows.
A problem that makes the rest of the file unreadable raises ``FileProblem``; a problem of
one row (a CSV record with the wrong number of fields, a line that is not a JSON object)
is reported in ``Chunk.problems`` and the row is bad.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
from msgspec import Struct, field

from .. import jsonutil
from .mapping import Kind, Unsupported, kind_of

CHUNK_ROWS = 2000
# A cell larger than a row may hold (rows are limited to 400 KB) is a bad row, reported as such;
# only a cell past this much text makes the file unreadable (it must fit in memory).
MAX_CSV_FIELD = 64 * 1024 * 1024
csv.field_size_limit(MAX_CSV_FIELD)

Position = dict[str, int]
# What a truncated or corrupt gzip stream raises, at open, at seek or in the middle of a read.
_BROKEN_STREAM = (OSError, EOFError, zlib.error)


class FileProblem(ValueError):
    """The file cannot be imported at all; ``column`` names the culprit when there is one."""

    def __init__(self, message: str, column: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.column = column
        self.row = row


class Chunk(Struct):
    start: Position
    end: Position
    first_row: int
    size: int
    # Source column → Arrow array (Parquet), text cells (CSV) or JSON values (JSON Lines).
    columns: dict[str, Any]
    problems: dict[int, str] = field(default_factory=dict)

    def column(self, name: str) -> Any:
        values = self.columns.get(name)
        return values if values is not None else [None] * self.size


class ParquetReader:
    style = "arrow"

    def __init__(self, path: str, chunk_rows: int = CHUNK_ROWS) -> None:
        self.chunk_rows = chunk_rows
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise FileProblem(f"the file is not a readable Parquet file: {exc}") from exc
        self.schema = self.file.schema_arrow
        self.kinds: dict[str, Kind] = {}
        for arrow_field in self.schema:
            try:
                self.kinds[arrow_field.name] = kind_of(arrow_field.type)
            except Unsupported as exc:
                raise FileProblem(f"column '{arrow_field.name}': {exc}", column=arrow_field.name) from exc
        if len(set(self.schema.names)) != len(self.schema.names):
            raise FileProblem("the file has two columns with the same name")
        self.rows_total = self.file.metadata.num_rows

    def chunks(self, start: Position | None = None) -> Iterator[Chunk]:
        start = start or {}
        group, offset, row = start.get("group", 0), start.get("offset", 0), start.get("row", 0)
        for index in range(group, self.file.num_row_groups):
            try:
                table = self.file.read_row_group(index)
            except (pa.ArrowException, OSError) as exc:
                raise FileProblem(f"row group {index} cannot be read: {exc}", row=row + 1) from exc
            while offset < table.num_rows:
                size = min(self.chunk_rows, table.num_rows - offset)
                part = table.slice(offset, size)
                columns = {name: part.column(name).combine_chunks() for name in part.column_names}
                begin = {"group": index, "offset": offset, "row": row}
                offset += size
                row += size
                end = (
                    {"group": index, "offset": offset, "row": row}
                    if offset < table.num_rows
                    else {"group": index + 1, "offset": 0, "row": row}
                )
                yield Chunk(begin, end, begin["row"] + 1, size, columns)
            offset = 0


class _Lines:
    """Decoded lines of a binary stream, counting the bytes consumed (for resumable positions)."""

    def __init__(self, stream: IO[bytes], position: int) -> None:
        self.stream = stream
        self.position = position

    def __iter__(self) -> Iterator[str]:
        for raw in self.stream:
            start = self.position
            self.position += len(raw)
            if start == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # byte order mark written by spreadsheet programs
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FileProblem(f"the file is not UTF-8 text (byte {start + exc.start})") from exc


def _open_text(path: str, compressed: bool, position: int) -> IO[bytes]:
    stream: IO[bytes] = (
        gzip.GzipFile(path, "rb") if compressed else open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
    )
    try:
        if position:
            stream.seek(position)
    except _BROKEN_STREAM as exc:
        stream.close()
        raise FileProblem(f"the compressed file is broken: {exc}") from exc
    return stream


class CsvReader:
    style = "text"

    def __init__(self, path: str, compressed: bool = False, chunk_rows: int = CHUNK_ROWS) -> None:
        self.path = path
        self.compressed = compressed
        self.chunk_rows = chunk_rows
        self.header, self.data_start = self._header()
        self.kinds: dict[str, Kind] = {}

    def _header(self) -> tuple[list[str], int]:
        with _open_text(self.path, self.compressed, 0) as stream:
            lines = _Lines(stream, 0)
            try:
                for record in self._records(lines):
                    if record:
                        return self._check_header(record), lines.position
            except _BROKEN_STREAM as exc:
                raise FileProblem(f"the compressed file is broken: {exc}") from exc
        raise FileProblem("the file is empty: a CSV file needs a header line naming its columns")

    @staticmethod
    def _check_header(record: list[str]) -> list[str]:
        names = [name.strip() for name in record]
        for position, name in enumerate(names):
            if not name:
                raise FileProblem(f"header field {position + 1} is empty: every column needs a name")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise FileProblem(f"the header names column '{duplicates[0]}' twice", column=duplicates[0])
        return names

    @staticmethod
    def _records(lines: _Lines) -> Iterator[list[str]]:
        # strict: an unterminated quote is an error rather than a silently swallowed rest of file.
        reader = csv.reader(iter(lines), strict=True)
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileProblem(f"the CSV is malformed near line {reader.line_num}: {exc}") from exc
            yield record

    def chunks(self, start: Position | None = None) -> Iterator[Chunk]:
        start = start or {}
        position, row = start.get("byte", self.data_start), start.get("row", 0)
        width = len(self.header)
        with _open_text(self.path, self.compressed, position) as stream:
            lines = _Lines(stream, position)
            records: list[list[str]] = []
            begin = {"byte": position, "row": row}
            try:
                for record in self._records(lines):
                    if not record:
                        continue
                    records.append(record)
                    if len(records) == self.chunk_rows:
                        row += len(records)
                        end = {"byte": lines.position, "row": row}
                        yield self._chunk(records, begin, end, width)
                        records, begin = [], end
            except _BROKEN_STREAM as exc:
                raise FileProblem(
                    f"the compressed file is broken: {exc}", row=row + len(records) + 1
                ) from exc
            if records:
                row += len(records)
                yield self._chunk(records, begin, {"byte": lines.position, "row": row}, width)

    def _chunk(self, records: list[list[str]], begin: Position, end: Position, width: int) -> Chunk:
        problems: dict[int, str] = {}
        for position, record in enumerate(records):
            if len(record) != width:
                problems[position] = f"the row has {len(record)} fields; the header has {width}"
                records[position] = (record + [""] * width)[:width]
        columns = {name: [record[i] for record in records] for i, name in enumerate(self.header)}
        return Chunk(begin, end, begin["row"] + 1, len(records), columns, problems)


class JsonLinesReader:
    style = "json"

    def __init__(self, path: str, chunk_rows: int = CHUNK_ROWS) -> None:
        self.path = path
        self.chunk_rows = chunk_rows
        self.kinds: dict[str, Kind] = {}

    def chunks(self, start: Position | None = None) -> Iterator[Chunk]:
        start = start or {}
        position, row = start.get("byte", 0), start.get("row", 0)
        with _open_text(self.path, False, position) as stream:
            lines = _Lines(stream, position)
            parsed: list[dict[str, Any] | str] = []
            begin = {"byte": position, "row": row}
            for line in lines:
                if not line.strip():
                    continue
                parsed.append(_json_object(line))
                if len(parsed) == self.chunk_rows:
                    row += len(parsed)
                    end = {"byte": lines.position, "row": row}
                    yield _json_chunk(parsed, begin, end)
                    parsed, begin = [], end
            if parsed:
                row += len(parsed)
                yield _json_chunk(parsed, begin, {"byte": lines.position, "row": row})


def _json_object(line: str) -> dict[str, Any] | str:
    try:
        value = jsonutil.loads(line)  # numbers exact (Decimal), like API bodies
    except jsonutil.TooDeep:
        return "the line is nested too deeply"
    except ValueError as exc:
        return f"the line is not valid JSON: {exc}"
    if not isinstance(value, dict):
        return "each line must be a JSON object"
    return value


def _json_chunk(parsed: list[dict[str, Any] | str], begin: Position, end: Position) -> Chunk:
    problems: dict[int, str] = {}
    names: dict[str, None] = {}
    for position, item in enumerate(parsed):
        if isinstance(item, str):
            problems[position] = item
        else:
            names.update(dict.fromkeys(item))
    columns = {
        name: [item.get(name) if isinstance(item, dict) else None for item in parsed] for name in names
    }
    return Chunk(begin, end, begin["row"] + 1, len(parsed), columns, problems)


Reader = ParquetReader | CsvReader | JsonLinesReader


def open_reader(path: str, file_format: str, chunk_rows: int = CHUNK_ROWS) -> Reader:
    """A reader for a local copy of a dropped file (``FileProblem`` if it cannot even be opened)."""
    if file_format == "parquet":
        return ParquetReader(path, chunk_rows)
    if file_format in ("csv", "csv.gz"):
        return CsvReader(path, compressed=file_format == "csv.gz", chunk_rows=chunk_rows)
    if file_format == "jsonl":
        return JsonLinesReader(path, chunk_rows)
    raise FileProblem(f"unsupported format '{file_format}'")
