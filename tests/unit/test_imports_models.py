"""Drop-folder vocabulary: keys, formats, options from S3 metadata, import ids, upload bodies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from datasets_core.imports.models import CreateUpload, DropKey, ImportOptions, format_of, import_id_of

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.parquet", "parquet"),
        ("A.CSV", "csv"),
        ("a.csv.gz", "csv.gz"),
        ("a.jsonl", "jsonl"),
        ("a.json", None),
        (".csv", None),
        ("a.gz", None),
    ],
)
def test_format_comes_from_the_extension(name: str, expected: str | None) -> None:
    assert format_of(name) == expected


def test_drop_keys_parse_into_workspace_dataset_and_file() -> None:
    parsed = DropKey.parse("drop/acme/Sales 2024/q1 data.csv.gz", "drop/")
    assert parsed == DropKey("acme", "Sales 2024", "q1 data.csv.gz", "csv.gz")
    assert isinstance(parsed, DropKey) and parsed.key("drop/") == "drop/acme/Sales 2024/q1 data.csv.gz"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("other/acme/ds/a.csv", "outside the drop folder"),
        ("drop/acme/a.csv", "expected drop/<workspace>/<dataset name>/<file>"),
        ("drop/acme/ds/sub/a.csv", "expected drop/"),
        ("drop/acme//a.csv", "expected drop/"),
        ("drop/acme/ds/a.xlsx", "filename must end with one of"),
        ("drop/acme/ /a.csv", "cannot be a dataset name"),
    ],
)
def test_keys_outside_the_layout_say_why(key: str, problem: str) -> None:
    parsed = DropKey.parse(key, "drop/")
    assert isinstance(parsed, str) and problem in parsed


def test_options_from_s3_metadata() -> None:
    assert ImportOptions.from_metadata({}) == ImportOptions("append", None, 0)
    options = ImportOptions.from_metadata({"Mode": " Replace ", "max_bad_rows": "12"})
    assert options == ImportOptions("replace", None, 12)
    assert ImportOptions.from_metadata({"upsert-on": "email"}) == ImportOptions("append", "email", 0)
    assert "must be 'append' or 'replace'" in str(ImportOptions.from_metadata({"mode": "merge"}))
    assert "non-negative integer" in str(ImportOptions.from_metadata({"max-bad-rows": "-1"}))
    assert "cannot be combined" in str(ImportOptions.from_metadata({"mode": "replace", "upsert-on": "e"}))
    assert ImportOptions("replace", None, 3).metadata() == {"mode": "replace", "max-bad-rows": "3"}


def test_import_id_is_one_per_object_version() -> None:
    first = import_id_of("bucket", "drop/a/b/c.csv", "v1")
    assert first == import_id_of("bucket", "drop/a/b/c.csv", "v1")
    assert first.startswith("imp_") and len(first) == 28
    assert (
        len(
            {
                first,
                import_id_of("bucket", "drop/a/b/c.csv", "v2"),
                import_id_of("other", "drop/a/b/c.csv", "v1"),
            }
        )
        == 3
    )


def test_an_object_without_version_is_known_by_etag_and_sequencer() -> None:
    first = import_id_of("bucket", "drop/a/b/c.csv", None, "etag1", "0055AED6DCD90281E5")
    # The same event again: the same import.
    assert first == import_id_of("bucket", "drop/a/b/c.csv", None, "etag1", "0055AED6DCD90281E5")
    # The same bytes PUT again (a new sequencer), other bytes: new imports.
    assert first != import_id_of("bucket", "drop/a/b/c.csv", None, "etag1", "0055AED6DCD90281F0")
    assert first != import_id_of("bucket", "drop/a/b/c.csv", None, "etag2", "0055AED6DCD90281E5")
    # A version, when there is one, names the object by itself.
    assert import_id_of("b", "k", "v1", "etag1", "01") == import_id_of("b", "k", "v1", "etag2", "02")


def test_types_travel_as_metadata_and_come_back() -> None:
    options = ImportOptions(types={"amount": "number", "zip, code:x%": "string", "größe": "number"})
    meta = options.metadata()
    assert meta["types"].isascii()
    assert ImportOptions.from_metadata(meta) == options
    assert ImportOptions.from_metadata({"types": "a:number, b : DATE"}).types == {"a": "number", "b": "date"}
    assert "not a column type" in str(ImportOptions.from_metadata({"types": "a:integer"}))
    assert "column:type" in str(ImportOptions.from_metadata({"types": "a"}))
    assert "twice" in str(ImportOptions.from_metadata({"types": "a:number,a:string"}))
    assert ImportOptions.from_metadata({"preview": "true"}) == ImportOptions(preview=True)
    assert ImportOptions.from_metadata({"chunk-rows": "5000"}) == ImportOptions(chunk_rows=5000)
    assert "from 1000 to 1000000" in str(ImportOptions.from_metadata({"chunk-rows": "10"}))
    assert ImportOptions(chunk_rows=5000).metadata()["chunk-rows"] == "5000"
    assert "'true' or 'false'" in str(ImportOptions.from_metadata({"preview": "yes"}))


def test_upload_bodies_are_checked() -> None:
    assert CreateUpload(filename="x.csv").options() == ImportOptions()
    body = CreateUpload.model_validate({"filename": "x.csv", "types": {"a": "date"}, "preview": True})
    assert body.options() == ImportOptions(types={"a": "date"}, preview=True)
    for body in (
        {"filename": "x.txt"},
        {"filename": "a/x.csv"},
        {"filename": "x.csv", "mode": "replace", "upsert_on": "email"},
        {"filename": "x.csv", "max_bad_rows": -1},
        {"filename": "x.csv", "other": 1},
        {"filename": "x.csv", "types": {"a": "integer"}},
        {"filename": "x.csv", "types": {"id": "string"}},
    ):
        with pytest.raises(ValidationError):
            CreateUpload.model_validate(body)


def test_api_functions_of_imports_do_not_load_pyarrow() -> None:
    # pyarrow ships only in the import function's layer (SPEC §10: API functions stay small).
    code = (
        "import sys, importlib\n"
        "for name in ('create_upload', 'list_imports', 'get_import', 'import_preview', 'commit_import'):\n"
        "    importlib.import_module(name + '.handler')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'polars')))\n"
    )
    env_path = f"{REPO / 'layers/core/python'}:{REPO / 'functions'}:{REPO}"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
