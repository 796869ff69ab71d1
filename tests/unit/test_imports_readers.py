"""Readers and the §7 type mapping: files in, typed column values and per-row problems out (no AWS)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets_core import values
from datasets_core.imports import convert, validate
from datasets_core.imports.readers import FileProblem, open_reader
from datasets_core.records import Column, Dataset
from datasets_core.store import rows as row_store


def dataset_of(columns: list[dict[str, Any]]) -> Dataset:
    return Dataset(
        workspace="w",
        id="ds_test",
        name="test",
        columns=tuple(Column.from_item(column) for column in columns),
        next_column=len(columns),
        shards=2,
        created_at="2024-01-01T00:00:00.000Z",
        updated_at="2024-01-01T00:00:00.000Z",
    )


def convert_file(
    path: Path,
    file_format: str,
    columns: list[dict[str, Any]] | None = None,
    chunk_rows: int = 1000,
    types: dict[str, str] | None = None,
) -> tuple[dict[str, str], list[dict[str, Any]], dict[int, tuple[str | None, str]]]:
    """(column types, API rows of the good rows, problems by 1-based row) as the import sees them:
    a detection pass when the file needs one, then the conversion with the decided types."""
    dataset = dataset_of(columns or [])
    reader = open_reader(str(path), file_format, chunk_rows)
    types_option = dict(types or {})
    detection = None
    if validate.needs_detection(reader, dataset, types_option):
        detection = validate.Detection(reader.style)
        for chunk in reader.chunks():
            detection.add(chunk, validate.settled_columns(dataset, types_option))
    targets = validate.targets(reader, dataset, None, types_option, detection)
    found_types = {target["name"]: target["type"] for target in targets}
    rows: list[dict[str, Any]] = []
    problems: dict[int, tuple[str | None, str]] = {}
    for chunk in reader.chunks():
        converted = validate.convert_chunk(chunk, targets, reader.style, None)
        for position, problem in converted.problems.items():
            problems[chunk.first_row + position] = problem
        for position in converted.good_positions():
            rows.append(
                {
                    target["name"]: values.from_store(column[position], target["type"])
                    for target, column in zip(targets, converted.columns, strict=True)
                }
            )
    return found_types, rows, problems


def write_parquet(tmp_path: Path, table: pa.Table, **kwargs: Any) -> Path:
    path = tmp_path / "file.parquet"
    pq.write_table(table, path, **kwargs)
    return path


# --- Parquet ----------------------------------------------------------------------------------
def test_every_parquet_logical_type_maps_as_spec_section_7(tmp_path: Path) -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    table = pa.table(
        {
            "i8": pa.array([-8, None], pa.int8()),
            "i16": pa.array([16, 0], pa.int16()),
            "i32": pa.array([32, 1], pa.int32()),
            "i64": pa.array([2**62, -1], pa.int64()),
            "u8": pa.array([255, 0], pa.uint8()),
            "u64": pa.array([2**64 - 1, 0], pa.uint64()),
            "f32": pa.array([0.1, -2.5], pa.float32()),
            "f64": pa.array([1e-3, 12345.678], pa.float64()),
            "dec": pa.array([Decimal("1234.50"), Decimal("-0.01")], pa.decimal128(10, 2)),
            "text": pa.array(["héllo", None], pa.string()),
            "big_text": pa.array(["a", "b"], pa.large_string()),
            "dict": pa.array(["red", "blue"]).dictionary_encode(),
            "flag": pa.array([True, False]),
            "day": pa.array([dt.date(2024, 2, 29), None], pa.date32()),
            "day64": pa.array([dt.date(1999, 12, 31), dt.date(2000, 1, 1)], pa.date64()),
            "ts_s": pa.array([dt.datetime(2024, 5, 1, 12, 0, 0), None], pa.timestamp("s")),
            "ts_ms": pa.array([dt.datetime(2024, 5, 1, 12, 0, 0, 123000)] * 2, pa.timestamp("ms")),
            "ts_us_utc": pa.array(
                [dt.datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=dt.UTC)] * 2, pa.timestamp("us", tz="UTC")
            ),
            "ts_ns_zoned": pa.array(
                [dt.datetime(2024, 5, 1, 14, 0, tzinfo=paris)] * 2, pa.timestamp("ns", tz="Europe/Paris")
            ),
            "clock": pa.array([dt.time(8, 30), dt.time(23, 59, 59, 500000)], pa.time64("us")),
            "tags": pa.array([[1, 2], []], pa.list_(pa.int64())),
            "point": pa.array(
                [{"x": 1.5, "y": None}, None], pa.struct([("x", pa.float64()), ("y", pa.int32())])
            ),
            "attrs": pa.array([[("a", 1)], [("b", 2), ("c", 3)]], pa.map_(pa.string(), pa.int64())),
            "nothing": pa.array([None, None], pa.null()),
        }
    )
    types, rows, problems = convert_file(write_parquet(tmp_path, table), "parquet")
    assert problems == {}
    assert types == {
        **dict.fromkeys(["i8", "i16", "i32", "i64", "u8", "u64", "f32", "f64", "dec"], "number"),
        **dict.fromkeys(["text", "big_text", "dict", "clock"], "string"),
        "flag": "boolean",
        "day": "date",
        "day64": "date",
        **dict.fromkeys(["ts_s", "ts_ms", "ts_us_utc", "ts_ns_zoned"], "datetime"),
        **dict.fromkeys(["tags", "point", "attrs"], "json"),
    }  # the all-null column makes no column yet
    first, second = rows
    assert (first["i8"], second["i8"]) == (-8, None)
    assert first["i64"] == 2**62 and first["u64"] == 2**64 - 1
    assert first["f32"] == Decimal("0.1")  # the float32's shortest text, not 0.10000000149
    assert (first["dec"], second["dec"]) == (Decimal("1234.5"), Decimal("-0.01"))
    assert (first["text"], second["text"]) == ("héllo", None)
    assert (first["dict"], second["dict"]) == ("red", "blue")
    assert (first["day"], second["day"], first["day64"]) == ("2024-02-29", None, "1999-12-31")
    assert first["ts_s"] == "2024-05-01T12:00:00Z"  # naive timestamps are taken as UTC
    assert second["ts_s"] is None
    assert first["ts_ms"] == "2024-05-01T12:00:00.123Z"
    assert first["ts_us_utc"] == "2024-05-01T12:00:00.000001Z"
    assert first["ts_ns_zoned"] == "2024-05-01T12:00:00Z"  # 14:00 in Paris (+2) is 12:00 UTC
    assert (first["clock"], second["clock"]) == ("08:30:00", "23:59:59.5")
    assert (first["tags"], second["tags"]) == ([1, 2], [])
    assert (first["point"], second["point"]) == ({"x": Decimal("1.5"), "y": None}, None)
    assert second["attrs"] == {"b": 2, "c": 3}


def test_dictionary_encoded_parquet_columns_are_decoded(tmp_path: Path) -> None:
    table = pa.table({"city": pa.array(["Oslo", "Lima", "Oslo", None] * 50).dictionary_encode()})
    path = write_parquet(tmp_path, table, use_dictionary=True)
    chunk = next(open_reader(str(path), "parquet").chunks())
    assert pa.types.is_dictionary(chunk.columns["city"].type)  # the reader hands the encoding on
    types, rows, problems = convert_file(path, "parquet")
    assert types == {"city": "string"} and not problems
    assert [row["city"] for row in rows[:4]] == ["Oslo", "Lima", "Oslo", None]


def test_nan_and_infinity_reject_their_rows_not_the_file(tmp_path: Path) -> None:
    table = pa.table({"x": pa.array([1.0, float("nan"), float("inf"), 2.0]), "n": [1, 2, 3, 4]})
    _types, rows, problems = convert_file(write_parquet(tmp_path, table), "parquet")
    assert [row["n"] for row in rows] == [1, 4]
    assert set(problems) == {2, 3}
    assert problems[2][0] == "x" and "NaN" in problems[2][1]


def test_binary_parquet_column_rejects_the_file_naming_it(tmp_path: Path) -> None:
    table = pa.table({"ok": [1], "blob": pa.array([b"\x00\x01"], pa.binary())})
    with pytest.raises(FileProblem) as caught:
        convert_file(write_parquet(tmp_path, table), "parquet")
    assert caught.value.column == "blob"
    assert "binary" in caught.value.message


def test_parquet_column_that_does_not_fit_the_declared_type_is_a_file_problem(tmp_path: Path) -> None:
    table = pa.table({"age": pa.array([True])})
    columns = [{"name": "age", "type": "number", "attr": "c0"}]
    with pytest.raises(FileProblem, match="'age' column is number"):
        convert_file(write_parquet(tmp_path, table), "parquet", columns)


def test_parquet_strings_into_typed_columns_are_parsed_per_row(tmp_path: Path) -> None:
    table = pa.table({"n": pa.array(["12", "x", None])})
    columns = [{"name": "n", "type": "number", "attr": "c0"}]
    _types, rows, problems = convert_file(write_parquet(tmp_path, table), "parquet", columns)
    assert [row["n"] for row in rows] == [12, None]
    assert list(problems) == [2] and problems[2][0] == "n"


def test_large_decimals_and_row_groups_resume_at_their_position(tmp_path: Path) -> None:
    table = pa.table({"d": pa.array([Decimal(f"{i}.125") for i in range(10)], pa.decimal128(38, 3))})
    path = write_parquet(tmp_path, table, row_group_size=4)
    reader = open_reader(str(path), "parquet", chunk_rows=3)
    chunks = list(reader.chunks())
    assert [chunk.size for chunk in chunks] == [3, 1, 3, 1, 2]
    resumed = list(reader.chunks(chunks[2].start))
    assert [chunk.first_row for chunk in resumed] == [5, 8, 9]
    _types, rows, _ = convert_file(path, "parquet")
    assert rows[9]["d"] == 9.125


def test_a_broken_parquet_file_is_a_file_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(FileProblem, match="not a readable Parquet file"):
        open_reader(str(path), "parquet")


# --- CSV --------------------------------------------------------------------------------------
CSV_EDGE_CASES = (
    "\ufeffname,amount,active,day,at,note\r\n"
    '"Doe, Jane",12.50,true,2024-01-31,2024-01-31T10:00:00+02:00,"she said ""hi"""\r\n'
    '"multi\nline",-3,FALSE,,2024-02-01 08:00:00,\r\n'
    "\r\n"  # a blank line is not a row
    'plain,1e3,false,2024-02-29,2024-02-29T00:00:00Z,"trailing, comma,"\r\n'
    ',0,true,2024-03-01,2024-03-01T00:00:00Z,""\r\n'
)


def test_csv_with_every_quoting_edge_case(tmp_path: Path) -> None:
    path = tmp_path / "file.csv"
    path.write_bytes(CSV_EDGE_CASES.encode())
    types, rows, problems = convert_file(path, "csv")
    assert not problems
    assert types == {
        "name": "string",  # the BOM is not part of the first column's name
        "amount": "number",
        "active": "boolean",
        "day": "date",
        "at": "datetime",
        "note": "string",
    }
    assert rows == [
        {
            "name": "Doe, Jane",
            "amount": 12.5,
            "active": True,
            "day": "2024-01-31",
            "at": "2024-01-31T08:00:00Z",
            "note": 'she said "hi"',
        },
        {
            "name": "multi\nline",
            "amount": -3,
            "active": False,
            "day": None,
            "at": "2024-02-01T08:00:00Z",
            "note": None,
        },
        {
            "name": "plain",
            "amount": 1000,
            "active": False,
            "day": "2024-02-29",
            "at": "2024-02-29T00:00:00Z",
            "note": "trailing, comma,",
        },
        {
            "name": None,
            "amount": 0,
            "active": True,
            "day": "2024-03-01",
            "at": "2024-03-01T00:00:00Z",
            "note": None,
        },
    ]


def test_csv_gz_reads_the_same_and_resumes_by_byte_offset(tmp_path: Path) -> None:
    plain = tmp_path / "file.csv"
    plain.write_bytes(CSV_EDGE_CASES.encode())
    packed = tmp_path / "file.csv.gz"
    packed.write_bytes(gzip.compress(CSV_EDGE_CASES.encode()))
    assert convert_file(packed, "csv.gz") == convert_file(plain, "csv")
    for path, file_format in ((plain, "csv"), (packed, "csv.gz")):
        reader = open_reader(str(path), file_format, chunk_rows=1)
        chunks = list(reader.chunks())
        assert [chunk.first_row for chunk in chunks] == [1, 2, 3, 4]
        resumed = list(reader.chunks(chunks[1].end))
        assert [chunk.columns["name"] for chunk in resumed] == [["plain"], [""]]


def test_csv_type_detection_keeps_identifiers_and_mixed_columns_as_text(tmp_path: Path) -> None:
    path = tmp_path / "file.csv"
    path.write_text("zip,mixed,maybe_bool,n\n007,1,yes,1\n123,x,no,2.5\n")
    types, rows, _ = convert_file(path, "csv")
    assert types == {"zip": "string", "mixed": "string", "maybe_bool": "string", "n": "number"}
    assert rows[0]["zip"] == "007"


def test_csv_bad_cells_and_ragged_rows_are_row_problems(tmp_path: Path) -> None:
    path = tmp_path / "file.csv"
    path.write_text("n,flag\n1,true\nabc,false\n2\n3,true,extra\n")
    columns = [
        {"name": "n", "type": "number", "attr": "c0"},
        {"name": "flag", "type": "boolean", "attr": "c1"},
    ]
    _types, rows, problems = convert_file(path, "csv", columns)
    assert rows == [{"n": 1, "flag": True}]
    assert problems[2][0] == "n" and "not a number" in problems[2][1]
    assert problems[3] == (None, "the row has 1 fields; the header has 2")
    assert problems[4] == (None, "the row has 3 fields; the header has 2")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"a,,b\n1,2,3\n", "header field 2 is empty"),
        (b"a,a\n1,2\n", "names column 'a' twice"),
        (b'a,b\n"unterminated,1\n', "malformed"),
        (b"a\n\xff\xfe\n", "not UTF-8"),
        (b"\x1f\x8b\x08 not really gzip", "compressed file is broken"),
        (gzip.compress(b"a\n" + b"1\n" * 5000)[:-30], "compressed file is broken"),
    ],
)
def test_unreadable_csv_is_a_file_problem(tmp_path: Path, content: bytes, message: str) -> None:
    compressed = content.startswith(b"\x1f\x8b")
    path = tmp_path / ("file.csv.gz" if compressed else "file.csv")
    path.write_bytes(content)
    with pytest.raises(FileProblem, match=message):
        convert_file(path, "csv.gz" if compressed else "csv")


def test_reserved_column_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "file.csv"
    path.write_text("id,name\n1,a\n")
    with pytest.raises(FileProblem, match="'id' is reserved"):
        convert_file(path, "csv")


# --- JSON Lines -------------------------------------------------------------------------------
def test_json_lines_types_nulls_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        {"name": "a", "n": 1, "obj": {"k": [1]}, "when": "2024-01-01T00:00:00Z", "day": "2024-01-01"},
        {"name": "b", "n": 2.5, "extra": True, "day": "2024-01-02"},
        "not json",
        [1, 2],
        {"name": "c", "n": "three"},
    ]
    path = tmp_path / "file.jsonl"
    path.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines) + "\n\n")
    types, rows, problems = convert_file(path, "jsonl")
    assert types == {
        "name": "string",
        "n": "number",
        "obj": "json",
        "when": "datetime",
        "day": "date",
        "extra": "boolean",
    }
    assert rows[0] == {
        "name": "a",
        "n": 1,
        "obj": {"k": [1]},
        "when": "2024-01-01T00:00:00Z",
        "day": "2024-01-01",
        "extra": None,
    }
    assert rows[1]["extra"] is True and rows[1]["n"] == 2.5
    assert problems[3][1].startswith("the line is not valid JSON")
    assert problems[4] == (None, "each line must be a JSON object")
    assert problems[5][0] == "n"


def test_items_built_for_import_match_the_rows_api_layout(tmp_path: Path) -> None:
    path = tmp_path / "file.csv"
    path.write_text("name,n\nx,1\n")
    dataset = dataset_of([])
    reader = open_reader(str(path), "csv")
    detection = validate.Detection(reader.style)
    detection.add(next(reader.chunks()), set())
    found = validate.targets(reader, dataset, None, {}, detection)
    targets = [{**t, "attr": f"c{i}"} for i, t in enumerate(found)]
    chunk = next(reader.chunks())
    converted = validate.convert_chunk(chunk, targets, reader.style, None)
    at = "2024-01-01T00:00:00.000Z"
    typed = dataset_of(targets)
    items = convert.build_items(typed, 3, targets, converted, [0], [7], ["row-id"], at)
    expected = row_store.to_item(typed, 7, "row-id", {"name": "x", "n": 1}, at, at, 3)
    assert items == [expected]


# --- majority typing and the types option (SPEC §7) ------------------------------------------
def test_a_csv_number_column_with_a_few_odd_values_is_a_number_column_with_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "file.csv"
    ages = [str(20 + i) for i in range(10)] + ["forty", "n/a", "?"]
    path.write_text("age,half\n" + "".join(f"{age},{i if i % 2 else 'x'}\n" for i, age in enumerate(ages)))
    types, rows, problems = convert_file(path, "csv")
    # The odd values do not turn the column into text: they are bad rows, one each, named.
    assert types == {"age": "number", "half": "string"}
    assert sorted(problems) == [11, 12, 13]
    assert {problem[0] for problem in problems.values()} == {"age"}
    assert "'forty' is not a number" in problems[11][1]
    assert [row["age"] for row in rows] == list(range(20, 30))


def test_json_lines_columns_are_typed_by_their_majority(tmp_path: Path) -> None:
    lines = [{"day": f"2024-01-{d:02d}", "n": d} for d in range(1, 8)] + [{"day": "soon", "n": "many"}]
    path = tmp_path / "file.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    types, rows, problems = convert_file(path, "jsonl")
    assert types == {"day": "date", "n": "number"}
    assert list(problems) == [8] and len(rows) == 7


def test_the_types_option_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "file.csv"
    path.write_text("zip,amount\n007,1\n12345,2\n")
    types, rows, _ = convert_file(path, "csv", types={"zip": "string", "amount": "string"})
    assert types == {"zip": "string", "amount": "string"}
    assert rows == [{"zip": "007", "amount": "1"}, {"zip": "12345", "amount": "2"}]
    # Parquet numbers set to string keep their exact text.
    table = pa.table({"n": pa.array([1, 250], pa.int64()), "d": pa.array([Decimal("1.50"), None])})
    parquet = write_parquet(tmp_path, table)
    types, rows, _ = convert_file(parquet, "parquet", types={"n": "string", "d": "string"})
    assert types == {"n": "string", "d": "string"}
    assert rows == [{"n": "1", "d": "1.5"}, {"n": "250", "d": None}]


def test_the_types_option_cannot_change_or_invent_columns(tmp_path: Path) -> None:
    path = tmp_path / "file.csv"
    path.write_text("n\n1\n")
    with pytest.raises(FileProblem, match="cannot change"):
        convert_file(path, "csv", [{"name": "n", "type": "number", "attr": "c0"}], types={"n": "string"})
    with pytest.raises(FileProblem, match="does not have"):
        convert_file(path, "csv", types={"m": "string"})
    parquet = write_parquet(tmp_path, pa.table({"b": pa.array([True])}))
    with pytest.raises(FileProblem, match="holds bool values"):
        convert_file(parquet, "parquet", types={"b": "date"})
