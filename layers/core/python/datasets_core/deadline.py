"""How long an invocation may go on starting work: background jobs and imports stop before
their Lambda deadline, leaving time to checkpoint and queue a continuation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from msgspec import Struct


class Deadline(Struct, frozen=True):
    """When to stop starting steps (or chunks): ``remaining_ms()`` below ``margin_ms``."""

    remaining_ms: Callable[[], int]
    margin_ms: int

    def near(self) -> bool:
        return self.remaining_ms() < self.margin_ms

    def lease_until(self) -> int:
        # The invocation cannot outlive its remaining time; a crashed run's lease lapses then.
        return int(time.time() + self.remaining_ms() / 1000) + 2

    @staticmethod
    def of(context: Any, margin_ms: int) -> Deadline:
        """The deadline of an invocation: stop ``margin_ms`` before its end, or halfway through
        a run shorter than twice that (a short timeout still leaves room for several steps
        rather than one per invocation)."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            remaining = context.get_remaining_time_in_millis
            return Deadline(remaining, min(margin_ms, int(remaining()) // 2))
        return Deadline(lambda: 15 * 60 * 1000, margin_ms)

    @staticmethod
    def fixed(context: Any, margin_ms: int) -> Deadline:
        """Stop ``margin_ms`` before the invocation's end, however short the run."""
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            return Deadline(context.get_remaining_time_in_millis, margin_ms)
        return Deadline(lambda: 15 * 60 * 1000, margin_ms)
