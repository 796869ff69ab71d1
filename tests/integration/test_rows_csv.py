"""``POST .../rows`` with ``Content-Type: text/csv`` (SPEC §5 extension): RFC 4180 rows, typed by
the dataset's columns and, for new columns, by the drop folder's inference (SPEC §7); every
problem names its 1-based line and column and writes nothing. A CSV body sent anywhere else,
or labelled as JSON or a form, is answered with where CSV goes."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Client
from .import_support import drop, run_handler

CSV = "text/csv"
COLUMNS = [
    {"name": "name", "type": "string", "indexed": True},
    {"name": "amount", "type": "number"},
    {"name": "active", "type": "boolean"},
    {"name": "day", "type": "date"},
]
# A BOM, CRLF line ends, quoted commas, doubled quotes, a line break inside a quoted field, a
# blank line, empty cells, and new columns of each inferred type.
BODY = (
    "\ufeffname,amount,active,day,code,score,seen,flag,remark\r\n"
    'Acme,1200,true,2024-05-01,007,1.5,2024-05-01T10:00:00Z,TRUE,"Hello, ""world"""\r\n'
    '"Beta, Inc.",75.25,FALSE,,12,2,2024-05-02T08:30:00+02:00,false,"two\r\nlines"\r\n'
    "\r\n"
    ",,,,,,,,\r\n"
    "Gamma,-3,,2024-02-29,x1,,,,plain\r\n"
)


def _dataset(client: Client, name: str = "csv", columns: list[dict[str, Any]] | None = None) -> str:
    created = client.post("/datasets", {"name": name, "columns": COLUMNS if columns is None else columns})
    assert created.status == 201, created.body
    return str(created.json()["data"]["id"])


def _post_csv(client: Client, dataset_id: str, body: str, content_type: str = CSV, **kw: Any) -> Any:
    headers = {"Content-Type": content_type, **kw.pop("headers", {})}
    return client.request("POST", f"/datasets/{dataset_id}/rows", body=body, headers=headers, **kw)


def _state(client: Client, dataset_id: str) -> tuple[Any, Any, Any]:
    detail = client.get(f"/datasets/{dataset_id}").json()["data"]
    rows = client.get(f"/datasets/{dataset_id}/rows").json()["data"]["rows"]
    return detail["row_count"], detail["columns"], rows


def test_csv_rows_are_inserted_typed_by_the_dataset_and_by_inference(client: Client) -> None:
    dataset_id = _dataset(client)
    response = _post_csv(client, dataset_id, BODY)
    assert response.status == 201, response.body
    data = response.json()["data"]
    assert data["inserted"] == 4
    columns = {c["name"]: c["type"] for c in client.get(f"/datasets/{dataset_id}").json()["data"]["columns"]}
    assert columns == {
        "name": "string",
        "amount": "number",
        "active": "boolean",
        "day": "date",
        "code": "string",  # 007 is an identifier, not a number
        "score": "number",
        "seen": "datetime",
        "flag": "boolean",
        "remark": "string",
    }
    rows = client.get(f"/datasets/{dataset_id}/rows").json()["data"]["rows"]
    user = [{k: v for k, v in row.items() if k in columns} for row in rows]
    assert user == [
        {
            "name": "Acme",
            "amount": 1200,
            "active": True,
            "day": "2024-05-01",
            "code": "007",
            "score": 1.5,
            "seen": "2024-05-01T10:00:00Z",
            "flag": True,
            "remark": 'Hello, "world"',
        },
        {
            "name": "Beta, Inc.",
            "amount": 75.25,
            "active": False,
            "day": None,
            "code": "12",
            "score": 2,
            "seen": "2024-05-02T06:30:00Z",
            "flag": False,
            "remark": "two\r\nlines",
        },
        dict.fromkeys(columns),  # a record of empty cells: a row of nulls
        {
            "name": "Gamma",
            "amount": -3,
            "active": None,
            "day": "2024-02-29",
            "code": "x1",
            "score": None,
            "seen": None,
            "flag": None,
            "remark": "plain",
        },
    ]
    assert client.get(f"/datasets/{dataset_id}").json()["data"]["row_count"] == 4
    by_name = client.get(f"/datasets/{dataset_id}/rows", params={"name": "eq.Beta, Inc."}).json()
    assert by_name["meta"]["plan"] == "index:name" and by_name["data"]["total"] == 1
    trail = client.get(f"/datasets/{dataset_id}/rows/{rows[0]['id']}/changes").json()["data"]
    assert [entry["op"] for entry in trail] == ["insert"]


def test_a_new_csv_column_is_typed_as_the_drop_folder_types_it(client: Client) -> None:
    text = "n,code,ratio,at,ok,mixed\n1,007,0.5,2024-01-01,true,1\n2,010,1e3,2024-01-02,false,x\n3,,,,,\n"
    posted = _dataset(client, "posted", columns=[])
    assert _post_csv(client, posted, text).status == 201
    run_handler(drop("dropped/file.csv", text.encode()))
    listing = client.get("/datasets").json()["data"]
    dropped = next(item["id"] for item in listing if item["name"] == "dropped")

    def typed(dataset_id: str) -> tuple[Any, Any]:
        detail = client.get(f"/datasets/{dataset_id}").json()["data"]
        rows = client.get(f"/datasets/{dataset_id}/rows").json()["data"]["rows"]
        names = [c["name"] for c in detail["columns"]]
        return detail["columns"], [{name: row[name] for name in names} for row in rows]

    assert typed(posted) == typed(dropped)
    assert {c["name"]: c["type"] for c in typed(posted)[0]} == {
        "n": "number",
        "code": "string",
        "ratio": "number",
        "at": "date",
        "ok": "boolean",
        "mixed": "string",
    }


def test_charset_parameter_idempotency_and_a_long_cell(client: Client) -> None:
    dataset_id = _dataset(client)
    long_text = "x" * 140_000  # beyond the csv module's default field limit (131,072 characters)
    body = f"name,remark\nlong,{long_text}\n"
    headers = {"Idempotency-Key": "csv-1"}
    first = _post_csv(client, dataset_id, body, "text/csv; charset=utf-8", headers=headers)
    assert first.status == 201, first.body[:300]
    replay = _post_csv(client, dataset_id, body, "text/csv; charset=utf-8", headers=headers)
    assert (replay.status, replay.json()) == (201, first.json())
    rows = client.get(f"/datasets/{dataset_id}/rows").json()["data"]["rows"]
    assert len(rows) == 1 and rows[0]["remark"] == long_text


REFUSED = [
    # (case, body, status, code, line named, column named)
    (
        "bad number after a two-line record",
        'name,amount\n"a\nb",1\nc,2\nd,lots\n',
        400,
        "invalid_body",
        5,
        "amount",
    ),
    ("bad boolean", "name,active\na,yes\n", 400, "invalid_body", 2, "active"),
    ("bad date", "name,day\na,2024-02-30\n", 400, "invalid_body", 2, "day"),
    ("number with stray spaces in a date", "day\n 2024-01-01\n", 400, "invalid_body", 2, "day"),
    ("too few fields", "name,amount\na,1\nb\n", 400, "invalid_body", 3, None),
    ("too many fields", "name,amount\na,1,2\n", 400, "invalid_body", 2, None),
    ("unclosed quote", 'name,amount\na,1\n"b,2\n', 400, "invalid_body", 3, None),
    ("text after a closing quote", 'name,amount\n"a"x,1\n', 400, "invalid_body", 2, None),
    ("empty header field", "name,,amount\na,b,1\n", 400, "invalid_body", 1, None),
    ("header names a column twice", "name,name\na,b\n", 400, "invalid_body", 1, "name"),
    ("header names a metadata field", "id,name\nx,a\n", 400, "invalid_body", 1, "id"),
    ("header with an invisible character", "na\u200bme\na\n", 400, "invalid_body", 1, None),
    ("header only", "name,amount\n", 400, "invalid_body", 2, None),
    ("empty body", "", 400, "invalid_body", None, None),
    ("JSON labelled text/csv", '{"rows": [{"name": "a"}]}', 400, "invalid_body", None, None),
    ("1,001 rows", "amount\n" + "1\n" * 1001, 413, "payload_too_large", None, None),
    ("an oversize row", "name,remark\na," + "x" * 400_000 + "\n", 400, "invalid_body", 2, None),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code", "line", "column"), REFUSED, ids=[case[0] for case in REFUSED]
)
def test_a_bad_csv_body_names_its_line_and_column_and_writes_nothing(
    client: Client, case: str, body: str, status: int, code: str, line: int | None, column: str | None
) -> None:
    dataset_id = _dataset(client)
    assert _post_csv(client, dataset_id, "name\nseed\n").status == 201
    before = _state(client, dataset_id)
    response = _post_csv(client, dataset_id, body)
    assert response.status == status, response.body
    error = response.json()["error"]
    assert error["code"] == code, error
    if line is not None:
        assert error["details"]["line"] == line, error
        assert error["message"].startswith(f"Line {line}"), error
    if column is not None:
        assert error["details"]["column"] == column, error
    assert _state(client, dataset_id) == before


def test_csv_sent_as_json_or_as_a_form_is_pointed_to_the_csv_form(client: Client) -> None:
    dataset_id = _dataset(client)
    as_json = _post_csv(client, dataset_id, "name,amount\na,1\n", "application/json")
    assert as_json.status == 400, as_json.body
    message = as_json.json()["error"]["message"]
    assert message.startswith("The request body is not valid JSON; it looks like CSV.")
    assert "'Content-Type: text/csv'" in message
    # curl -d @file.csv: a form, line breaks dropped
    as_form = _post_csv(client, dataset_id, "name,amounta,1b,2", "application/x-www-form-urlencoded")
    assert as_form.status == 400, as_form.body
    message = as_form.json()["error"]["message"]
    assert message.startswith("This endpoint takes JSON; the body was sent as a form")
    assert "--data-binary" in message and "text/csv" in message
    assert client.get(f"/datasets/{dataset_id}").json()["data"]["row_count"] == 0
