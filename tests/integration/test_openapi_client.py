"""A Python client generated from GET /v1/openapi.json (openapi-python-client) works against the API.

The document is fetched from the running handlers, the client generated into a temporary
folder and imported; its HTTP transport hands each request to ``local.dispatch`` (the path
the local server takes), so every call runs the real handler against moto.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import httpx
import pytest

from local.dispatch import dispatch
from tests.integration.conftest import Client, make_key

PACKAGE = "datasets_api_client"


def _transport(request: httpx.Request) -> httpx.Response:
    answer = dispatch(
        request.method,
        request.url.path,
        query_string=request.url.query.decode(),
        headers=dict(request.headers),
        body=request.content or None,
    )
    return httpx.Response(answer.status, headers=answer.headers, content=answer.body)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    folder = tmp_path_factory.mktemp("generated")
    answer = Client(None).get("/openapi.json")  # public: no AWS needed
    assert answer.status == 200
    document = folder / "openapi.json"
    document.write_bytes(answer.body)
    config = folder / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))  # no formatter needed to import the code
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:

        def load(name: str) -> ModuleType:
            return importlib.import_module(f"{PACKAGE}.{name}")

        yield SimpleNamespace(
            client=load("client"),
            models=load("models"),
            types=load("types"),
            create_dataset=load("api.datasets.create_dataset"),
            list_datasets=load("api.datasets.list_datasets"),
            insert_rows=load("api.rows.insert_rows"),
            query_rows=load("api.rows.query_rows"),
            get_row=load("api.rows.get_row"),
        )
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_generated_client_creates_a_dataset_inserts_lists_and_queries(
    aws_env: None, generated: SimpleNamespace
) -> None:
    m = generated.models
    api = generated.client.AuthenticatedClient(
        base_url="http://datasets.test/v1",
        token=make_key(),
        httpx_args={"transport": httpx.MockTransport(_transport)},
    )

    # Given a dataset created through the generated operation,
    created = generated.create_dataset.sync_detailed(
        client=api,
        body=m.CreateDataset(
            name="Leads",
            columns=[
                m.ColumnDeclaration(name="email", type_=m.ColumnType.STRING, indexed=True),
                m.ColumnDeclaration(name="amount", type_=m.ColumnType.NUMBER),
            ],
        ),
    )
    assert created.status_code == 201, created.content
    dataset = created.parsed.data
    assert isinstance(dataset, m.DatasetDetail)
    assert [(c.name, c.type_, c.indexed) for c in dataset.columns] == [
        ("email", m.ColumnType.STRING, True),
        ("amount", m.ColumnType.NUMBER, False),
    ]

    # when rows are inserted with the {"rows": [...]} shape,
    rows = [
        {"email": "a@acme.io", "name": "Acme", "amount": 1200},
        {"email": "b@beta.io", "name": "Beta", "amount": 75},
        {"email": "c@gamma.io", "name": "Gamma", "amount": 310},
    ]
    inserted = generated.insert_rows.sync_detailed(
        dataset_id=dataset.id,
        client=api,
        body=m.InsertRows(rows=[m.InsertRowsRowsItem.from_dict(row) for row in rows]),
        idempotency_key="generated-client-1",
    )
    assert inserted.status_code == 201, inserted.content
    assert inserted.parsed.data.inserted == 3
    first = inserted.parsed.data.rows[0]
    assert isinstance(first, m.Row) and first.row_index == 0 and first["email"] == "a@acme.io"

    # then the dataset is listed (with q and sort),
    listed = generated.list_datasets.sync(client=api, q="lea", sort=m.ListDatasetsSort.NAME)
    assert [d.name for d in listed.data] == ["Leads"] and listed.meta.total == 1
    assert listed.data[0].row_count == 3

    # a filtered, ordered query returns the matching rows (the filter is the free-form
    # `filters` object parameter of the document),
    page = generated.query_rows.sync(
        dataset_id=dataset.id,
        client=api,
        filters=m.QueryRowsFilters.from_dict({"amount": "gte.100"}),
        order="amount.desc",
        select="email,amount",
    )
    assert isinstance(page.data, m.RowsPage)
    assert [(r["email"], r["amount"]) for r in page.data.rows] == [("a@acme.io", 1200), ("c@gamma.io", 310)]
    assert page.data.total == 2 and page.meta.plan == "replica"  # amount is not indexed

    # an index-backed filter too, and one row reads back by id,
    by_email = generated.query_rows.sync(
        dataset_id=dataset.id, client=api, filters=m.QueryRowsFilters.from_dict({"email": "eq.b@beta.io"})
    )
    assert [r["name"] for r in by_email.data.rows] == ["Beta"] and by_email.meta.plan == "index:email"
    one = generated.get_row.sync(dataset_id=dataset.id, row_id=str(first.id), client=api)
    assert one.data.id == first.id

    # and errors come back parsed in the documented envelope.
    bad = generated.query_rows.sync_detailed(
        dataset_id=dataset.id, client=api, filters=m.QueryRowsFilters.from_dict({"nope": "eq.1"})
    )
    assert bad.status_code == 400
    assert isinstance(bad.parsed, m.ErrorResponse) and bad.parsed.error.code == "invalid_query"
