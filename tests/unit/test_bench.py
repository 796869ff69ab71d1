"""The bench's verdicts: targets compared, a broken measurement counted as missed, the exit status."""

from __future__ import annotations

from bench import report
from bench.reads import look_ahead


def test_at_most_and_at_least_compare_with_the_bound_inclusive() -> None:
    assert report.at_most("reads", 52, 52).verdict == report.PASS
    assert report.at_most("reads", 53, 52).verdict == report.MISS
    assert report.at_least("rows/s", 100_000, 100_000, unit="rows/s").verdict == report.PASS
    assert report.at_least("rows/s", 99_999.5, 100_000, unit="rows/s").verdict == report.MISS


def test_figures_without_a_target_never_fail_the_run() -> None:
    figures = [report.info("scan", "20,000"), report.at_most("reads", 1, 2)]
    assert [figure.verdict for figure in figures] == [report.INFO, report.PASS]
    assert report.exit_code(figures) == 0


def test_one_missed_target_fails_the_run() -> None:
    assert report.exit_code([report.at_most("a", 1, 2), report.at_least("b", 1, 2)]) == 1


def test_a_measurement_that_raises_is_a_missed_figure_with_its_reason() -> None:
    def broken() -> list[report.Figure]:
        raise RuntimeError("stack died")

    [figure] = report.guarded("cold start", "≤ 1.3 ×", broken)
    assert figure.ok is False
    assert "RuntimeError: stack died" in figure.note
    assert report.exit_code([figure]) == 1


def test_table_is_markdown_with_one_row_per_figure_and_escaped_pipes() -> None:
    text = report.table([report.at_most("a|b", 1_234, 2_000, unit="ms", note="n")])
    lines = text.splitlines()
    assert lines[0].startswith("| figure | measured | target | result |")
    assert lines[1].startswith("| --- |")
    assert lines[2] == "| a\\|b | 1,234 ms | ≤ 2,000 ms | PASS | n |"


def test_look_ahead_is_one_index_page_on_every_shard_and_the_look_ahead_row() -> None:
    # query/paths.py: each of 8 shards reads a first page of 21/8 + 3 standard deviations
    # (ceil(2.625 + 4.55) + 1 = 9 entries); the 21 rows (page and look-ahead) are fetched.
    assert look_ahead(20, 8) == 8 * 9 + 1
    assert look_ahead(20, 1) == 21 + 1


def test_monthly_cost_prices_the_measured_units_at_on_demand_rates() -> None:
    from decimal import Decimal

    from bench.amplification import Kind, Measured, Page, Traffic, monthly_cost

    page = Page(
        "p", items_read=0, index_entries=0, rows_fetched=0, index_units=4, get_units=10.5, round_trips=3
    )
    writes = {
        "insert": Kind(rows=2, all_units=8),  # 4 units per row
        "update indexed": Kind(rows=1, all_units=3),
        "update unindexed": Kind(rows=1, all_units=1),
    }
    traffic = Traffic(
        rows=0,
        inserts_per_second=1,
        indexed_updates_per_second=0,
        unindexed_updates_per_second=0,
        index_pages_per_second=1,
    )
    keys_only = monthly_cost(Measured("KEYS_ONLY", writes, [page], 400, 100), traffic)
    # 4 write units a second for 30 days at $1.25 per million; 14.5 read units at $0.25.
    assert keys_only["writes"] == Decimal("12.96")
    assert keys_only["reads"] == Decimal("9.396")
    # With ALL the index pages hold the rows: the batched gets are not paid.
    assert monthly_cost(Measured("ALL", writes, [page], 400, 100), traffic)["reads"] == Decimal("2.592")
