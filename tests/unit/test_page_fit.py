"""How many items a page carries (``query.answer.fit``): under 5 MB of JSON and under Lambda's
6 MB as the runtime carries the body (a JSON string), its continuation included."""

from __future__ import annotations

import json
from typing import Any

from datasets_core.jsonutil import dumps
from datasets_core.query.answer import CARRIED_BYTES, PAGE_BYTES, bound, fit, weight

SHELL = {"data": {"rows": []}, "meta": {"next_cursor": None}}


def body_of(items: list[Any]) -> str:
    return dumps({"data": {"rows": items}, "meta": {"next_cursor": None}})


def test_weight_is_the_json_and_its_size_inside_a_json_string() -> None:
    for value in ({"a": 'say "hi"\\n'}, ["é", "😀", "\x00"], {"n": 1.5}):
        size, carried = weight(value)
        text = dumps(value)
        assert size == len(text.encode())
        assert carried == len(json.dumps(text, ensure_ascii=False).encode()) - 2


def test_small_pages_are_whole() -> None:
    items = [{"n": n} for n in range(1000)]
    assert fit(items, SHELL, more=False) == 1000
    assert fit(items, SHELL, more=True, continuation=lambda k: "c" * 100) == 1000
    assert fit([], SHELL, more=False) == 0


def test_plain_rows_stop_at_5_mb_of_json() -> None:
    items = [{"text": "x" * 100_000} for _ in range(80)]
    kept = fit(items, SHELL, more=False, continuation=lambda k: "c" * 100)
    assert len(body_of(items[:kept]).encode()) <= PAGE_BYTES < len(body_of(items[: kept + 1]).encode())


def test_quoted_rows_stop_at_lambdas_6_mb() -> None:
    items = [{"text": '"' * 100_000} for _ in range(80)]
    kept = fit(items, SHELL, more=False, continuation=lambda k: "c" * 100)
    carried = len(json.dumps(body_of(items[:kept]), ensure_ascii=False).encode())
    assert len(body_of(items[:kept]).encode()) < PAGE_BYTES
    assert carried <= CARRIED_BYTES
    assert len(json.dumps(body_of(items[: kept + 1]), ensure_ascii=False).encode()) > CARRIED_BYTES


def test_the_continuation_is_weighed_in() -> None:
    # A cursor carries the last row's order values: a page keeps room for it.
    items = [{"text": "x" * 100_000} for _ in range(80)]
    without = fit(items, SHELL, more=True, continuation=lambda k: "c")
    heavy = fit(items, SHELL, more=True, continuation=lambda k: "c" * 250_000)
    assert heavy == without - 3


def test_bound_cuts_rows_by_cursor_and_groups_by_offset() -> None:
    rows = [{"text": "x" * 400_000} for _ in range(30)]
    data: dict[str, Any] = {"rows": list(rows), "total": 30}
    meta: dict[str, Any] = {"offset": 0, "next_cursor": None}
    bound(data, meta, "rows", more=False, cursor_after=lambda k: f"after-{k}")
    kept = len(data["rows"])
    assert 0 < kept < 30 and meta == {"offset": 0, "next_cursor": f"after-{kept}", "cut_at_bytes": True}
    groups: dict[str, Any] = {"rows": list(rows), "total": 30}
    meta = {"offset": 7, "next_cursor": None}
    bound(groups, meta, "rows", more=False)
    assert meta == {"offset": 7, "next_cursor": None, "next_offset": 7 + kept, "cut_at_bytes": True}
