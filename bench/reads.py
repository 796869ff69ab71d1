"""Items read (``meta.items_read``) by queries over HTTP: index-backed, scan, cursor, totals.

The look-ahead: rows are sharded over ``shards`` partition keys and every read merges one
walk per shard (README, "Sharding"). An index walk's first page holds ``first_page_size(L +
1, shards)`` index entries (keys only: the shard's share of the page plus three standard
deviations, ``query/paths.py``), and the page's rows, look-ahead row included, are then
fetched by key (README, "Index projections"). So "L + look-ahead" is the page's L rows plus
every shard's first index page and the one look-ahead row.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets_core.query.paths import first_page_size

from . import report
from .report import Figure
from .stack import LocalStack

LIMIT = 20
CURSOR_DEPTH = 2_000  # rows before the measured page
CURSOR_STEP = 500  # page size of the walk to that depth

# (label, query parameters): each filters or orders on an indexed column; the range and
# starts_with queries order by their column, the order the index walks (README, "Query
# planning": a range in row_index order reads every match).
INDEX_QUERIES: list[tuple[str, list[tuple[str, str]]]] = [
    ("eq city=Paris", [("city", "eq.Paris")]),
    (
        "range 2500 ≤ amount < 2600, order=amount",
        [("amount", "gte.2500"), ("amount", "lt.2600"), ("order", "amount")],
    ),
    ("starts_with city=san, order=city", [("city", "starts_with.san"), ("order", "city")]),
    ("order=ordered_at.desc", [("order", "ordered_at.desc")]),
]
SCAN_QUERY = ("unindexed filter status=eq.returned", [("status", "eq.returned")])
CURSOR_QUERY = [("order", "amount")]


def look_ahead(limit: int, shards: int) -> int:
    """Items read beyond the page's rows: every shard's first index page and the look-ahead
    row (see module doc)."""
    return shards * first_page_size(limit + 1, shards) + 1


@dataclass(frozen=True)
class Answer:
    plan: str
    items_read: int
    rows: int
    total: int | None
    next_cursor: str | None


def get_rows(stack: LocalStack, dataset_id: str, params: list[tuple[str, str]]) -> Answer:
    body = stack.call("GET", f"/datasets/{dataset_id}/rows", params=params)
    meta, data = body["meta"], body["data"]
    rows = len(data["rows"])
    return Answer(meta["plan"], int(meta["items_read"]), rows, data["total"], meta["next_cursor"])


def index_figures(stack: LocalStack, dataset_id: str, n: int, shards: int) -> list[Figure]:
    """Each index-backed query at ``limit=LIMIT``, with ``count=none`` and with the default total."""
    extra = look_ahead(LIMIT, shards)
    figures = []
    for label, params in INDEX_QUERIES:
        counted = get_rows(stack, dataset_id, [*params, ("limit", str(LIMIT))])
        bare = get_rows(stack, dataset_id, [*params, ("limit", str(LIMIT)), ("count", "none")])
        matches = int(counted.total or 0)
        _expect_page(label, bare, matches)
        _expect_index(label, bare)
        figures.append(
            report.at_most(
                f"items read, {label}, count=none, N={n:,}",
                bare.items_read,
                LIMIT + extra,
                note=f"plan {bare.plan}; L={LIMIT} + look-ahead {extra} (independent of N)",
            )
        )
        figures.append(
            report.at_most(
                f"items read, {label}, with total, N={n:,}",
                counted.items_read,
                LIMIT + extra + matches,
                note=f"plan {counted.plan}; L + look-ahead + M, M={matches:,} matches",
            )
        )
    return figures


def scan_figures(stack: LocalStack, dataset_id: str, n: int) -> list[Figure]:
    label, params = SCAN_QUERY
    answer = get_rows(stack, dataset_id, [*params, ("limit", str(LIMIT)), ("count", "none")])
    return [
        report.info(
            f"items read, {label}, count=none, N={n:,}",
            f"{answer.items_read:,}",
            note=(
                f"plan {answer.plan}; DynamoDB items the replica's delta read (rows changed since its "
                "snapshot: all of them until the first compaction)"
            ),
        )
    ]


def cursor_figures(stack: LocalStack, dataset_id: str, shards: int) -> list[Figure]:
    """A ``limit=LIMIT`` page ``CURSOR_DEPTH`` rows deep must cost what the first page costs.

    The walk to that depth uses ``cursor=`` with wide pages (a cursor is bound to the query,
    not to its limit): on moto every DynamoDB call costs time in proportion to the table,
    and fifty narrow pages would take minutes for the same answer.
    """
    extra = look_ahead(LIMIT, shards)
    params = [*CURSOR_QUERY, ("count", "none")]
    first = get_rows(stack, dataset_id, [*params, ("limit", str(LIMIT))])
    step = [*params, ("limit", str(CURSOR_STEP))]
    walked = [get_rows(stack, dataset_id, step)]
    depth = walked[-1].rows
    while depth < CURSOR_DEPTH:
        walked.append(get_rows(stack, dataset_id, [*step, ("cursor", _next_cursor(walked[-1], depth))]))
        depth += walked[-1].rows
    deep_page = [*params, ("limit", str(LIMIT)), ("cursor", _next_cursor(walked[-1], depth))]
    deep = get_rows(stack, dataset_id, deep_page)
    if deep.rows != LIMIT:
        raise RuntimeError(f"the deep cursor page has {deep.rows} rows, not {LIMIT}")
    return [
        report.at_most(
            f"items read, cursor page of {LIMIT} at rows {depth + 1:,}–{depth + LIMIT:,}, order=amount",
            deep.items_read,
            LIMIT + extra,
            note=(
                f"plan {deep.plan}; reached with cursor= over {len(walked)} pages of {CURSOR_STEP}; "
                f"page 1 read {first.items_read}; page size {LIMIT} + look-ahead {extra}"
            ),
        )
    ]


def _next_cursor(answer: Answer, depth: int) -> str:
    if answer.next_cursor is None:
        raise RuntimeError(f"the result ended after {depth} rows")
    return answer.next_cursor


def total_figures(stack: LocalStack, dataset_id: str, n: int) -> list[Figure]:
    """Unfiltered ``total`` and ``row_count`` come from counters: the total adds no reads."""
    counted = get_rows(stack, dataset_id, [("limit", str(LIMIT))])
    bare = get_rows(stack, dataset_id, [("limit", str(LIMIT)), ("count", "none")])
    if counted.total != n:
        raise RuntimeError(f"unfiltered total is {counted.total}, expected {n}")
    row_count = int(stack.call("GET", f"/datasets/{dataset_id}")["data"]["row_count"])
    if row_count != n:
        raise RuntimeError(f"row_count is {row_count}, expected {n}")
    return [
        report.at_most(
            f"items read for the unfiltered total (total={n:,}), N={n:,}",
            counted.items_read - bare.items_read,
            0,
            note=(
                f"plan {counted.plan}; page with total read {counted.items_read}, "
                f"same page with count=none read {bare.items_read}; row_count={row_count:,} from the counter"
            ),
        )
    ]


def _expect_page(label: str, answer: Answer, matches: int) -> None:
    # A figure is only meaningful for a query that answers correctly.
    if answer.rows != min(LIMIT, matches):
        raise RuntimeError(f"{label}: {answer.rows} rows returned, expected {min(LIMIT, matches)}")


def _expect_index(label: str, answer: Answer) -> None:
    if not answer.plan.startswith("index:"):
        raise RuntimeError(f"{label}: planned as {answer.plan!r}, not on an index")
