"""Errors that say what to do: closest column names, JSON-only bodies, '+' in query strings, keys."""

from __future__ import annotations

from typing import Any

import pytest

from datasets_core import auth

from .conftest import Client


def error(response: Any) -> dict[str, Any]:
    return response.json()["error"]


@pytest.fixture
def dataset(client: Client) -> str:
    created = client.post(
        "/datasets",
        {
            "name": "Guidance",
            "columns": [
                {"name": "amount", "type": "number"},
                {"name": "email", "type": "string", "indexed": True},
                {"name": "signed_at", "type": "datetime"},
            ],
        },
    )
    assert created.status == 201, created.body
    return str(created.json()["data"]["id"])


@pytest.mark.parametrize(
    ("query", "column", "suggested"),
    [
        ("amout=gt.100", "amout", ["amount"]),
        ("select=emial,amount", "emial", ["email"]),
        ("order=Amount.desc", "Amount", ["amount"]),
        ("distinct=signed", "signed", ["signed_at"]),
        ("created=gt.2024-01-01", "created", ["created_at"]),
    ],
)
def test_an_unknown_column_in_a_query_names_the_closest_columns(
    client: Client, dataset: str, query: str, column: str, suggested: list[str]
) -> None:
    answer = client.get(f"/datasets/{dataset}/rows", params=query)
    assert answer.status == 400
    assert error(answer)["code"] == "invalid_query"
    assert error(answer)["details"] == {"column": column, "did_you_mean": suggested}
    assert error(answer)["message"] == f"Unknown column '{column}'. Did you mean '{suggested[0]}'?"


def test_an_unknown_column_with_nothing_close_lists_the_columns(client: Client, dataset: str) -> None:
    answer = client.get(f"/datasets/{dataset}/rows", params="zzzz=eq.1")
    assert error(answer)["details"]["did_you_mean"] == []
    assert error(answer)["message"].startswith(
        "Unknown column 'zzzz'. Columns: 'amount', 'email', 'signed_at'"
    )


def test_an_unknown_column_in_a_body_names_the_closest_columns(client: Client, dataset: str) -> None:
    bulk = client.patch(f"/datasets/{dataset}/rows", {"where": {"emails": "a@acme.io"}, "set": {"amount": 1}})
    assert bulk.status == 400 and error(bulk)["code"] == "invalid_body"
    assert error(bulk)["details"]["did_you_mean"] == ["email"]
    index = client.patch(f"/datasets/{dataset}", {"indexes": {"add": ["amont"]}})
    assert index.status == 400 and error(index)["details"]["did_you_mean"] == ["amount"]


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    "path",
    ["/datasets", "/datasets/{dataset}/rows"],  # a body validated by Powertools, and one read by hand
)
def test_a_form_body_to_a_json_endpoint_says_so(client: Client, dataset: str, path: str) -> None:
    answer = client.request(
        "POST", path.format(dataset=dataset), body="name=Leads&amount=5", headers={"Content-Type": FORM}
    )
    assert answer.status == 400 and error(answer)["code"] == "invalid_body"
    assert error(answer)["message"].startswith(
        f"This endpoint takes JSON; the body was sent as a form ({FORM})"
    )
    assert "Content-Type: application/json" in error(answer)["message"]
    assert error(answer)["details"] == {"content_type": FORM}


@pytest.mark.parametrize(("method", "path"), [("PATCH", "/datasets/{dataset}/rows"), ("POST", "/datasets")])
def test_a_csv_body_says_the_endpoint_takes_json_and_where_csv_goes(
    client: Client, dataset: str, method: str, path: str
) -> None:
    answer = client.request(
        method,
        path.format(dataset=dataset),
        body="email,amount\na@acme.io,5\n",
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status == 400 and error(answer)["code"] == "invalid_body"
    message = error(answer)["message"]
    assert message.startswith("This endpoint takes JSON; the body was sent as text/csv.")
    assert "POST /v1/datasets/{dataset_id}/rows with 'Content-Type: text/csv'" in message
    assert "/uploads" in message


def test_json_sent_with_a_form_content_type_still_works(client: Client, dataset: str) -> None:
    # `curl -d '{...}'` sends JSON labelled as a form: only a body that is not JSON is refused.
    answer = client.request(
        "POST",
        f"/datasets/{dataset}/rows",
        body='{"email": "a@acme.io", "amount": 5}',
        headers={"Content-Type": FORM},
    )
    assert answer.status == 201, answer.body


def test_plain_invalid_json_says_only_that(client: Client, dataset: str) -> None:
    answer = client.request("POST", f"/datasets/{dataset}/rows", body='{"email": ', headers={})
    assert error(answer)["message"] == "The request body is not valid JSON."


@pytest.mark.parametrize(
    ("query", "column"),
    [
        ("amount=gt.1e+5", "amount"),  # the '+' of an exponent, sent raw
        ("signed_at=gt.2024-01-01T10:00:00+02:00", "signed_at"),  # a UTC offset
        ("amount=in.(1,2e+3)", "amount"),
    ],
)
def test_a_plus_read_as_a_space_says_to_send_2b(
    client: Client, dataset: str, query: str, column: str
) -> None:
    answer = client.get(f"/datasets/{dataset}/rows", params=query)  # sent as is: '+' means space
    assert answer.status == 400 and error(answer)["code"] == "invalid_query"
    assert "send it as %2B" in error(answer)["message"]
    assert error(answer)["details"]["column"] == column and "%2B" in error(answer)["details"]["hint"]
    encoded = client.get(f"/datasets/{dataset}/rows", params=query.replace("+", "%2B"))
    assert encoded.status == 200, encoded.body


def test_a_number_with_a_space_gets_the_plus_hint(client: Client, dataset: str) -> None:
    answer = client.get(f"/datasets/{dataset}/rows", params="amount=gt.1%205")  # amount=gt.1 5
    assert answer.status == 400 and "send it as %2B" in error(answer)["message"]


def test_a_bad_value_without_a_space_gets_no_plus_hint(client: Client, dataset: str) -> None:
    answer = client.get(f"/datasets/{dataset}/rows", params="amount=gt.abc")
    assert "%2B" not in error(answer)["message"] and "hint" not in error(answer)["details"]


def test_a_missing_key_names_both_headers(anonymous: Client) -> None:
    answer = anonymous.get("/datasets")
    assert answer.status == 401 and error(answer)["code"] == "unauthorized"
    assert "Authorization: Bearer <key>" in error(answer)["message"]
    assert "X-Api-Key: <key>" in error(answer)["message"]
    assert error(answer)["message"] == auth.UNAUTHORIZED
