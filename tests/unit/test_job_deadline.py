"""When a background job stops starting steps: a margin before its invocation's end, at most half
of the time the invocation had (a short timeout still runs several steps per invocation)."""

from __future__ import annotations

from dataclasses import dataclass

from datasets_core.jobs.engine import Deadline


@dataclass
class Context:
    remaining: int

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining


def test_a_long_run_stops_its_margin_before_the_end() -> None:
    context = Context(900_000)
    deadline = Deadline.of(context, 30_000)
    assert deadline.margin_ms == 30_000 and not deadline.near()
    context.remaining = 29_999
    assert deadline.near()


def test_a_short_run_stops_halfway() -> None:
    # A 6 s local timeout with a 30 s margin would stop before the first step's end every time.
    context = Context(6_000)
    deadline = Deadline.of(context, 30_000)
    assert deadline.margin_ms == 3_000 and not deadline.near()
    context.remaining = 2_999
    assert deadline.near()


def test_without_a_context_the_deployed_timeout_is_assumed() -> None:
    assert not Deadline.of(None, 30_000).near()
