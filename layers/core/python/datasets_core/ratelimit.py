"""Per-key rate limits (SPEC §2): at most ``limit`` requests per fixed window, per API key.

Each key's window has one counter item in DynamoDB (``store.ratelimits``), so the limit holds
across every function and warm container together. A container does not write the counter
on every request: it takes a *slice* of the window's allowance with one conditional ``ADD``
and spends it locally. Slices start at 1 and double while a container keeps using them up
(up to ``limit // 20``, at most 64), so a key busy on one container costs a handful of
writes per window instead of one per request, and the counter item is never hot.

Precision: the limit is never passed (a slice is only what the counter still allowed), but a
key may be refused a little early: requests a container took and did not use before its
window ended are lost, at most ``slice - 1`` per warm container per window (5 % of the limit
per container, and nothing while a key is quiet, when slices stay at 1). A container that
found the window used up refuses locally until the window ends, so an abusive caller costs
no writes either. If DynamoDB fails, the request is admitted (the limiter protects the
service; it must not become its outage); the stage's throttle stays the backstop.

Windows are aligned to the epoch (``floor(now / window) * window``); a refusal's
``Retry-After`` is the time left in the window, rounded up.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError
from msgspec import Struct

from .config import settings
from .errors import RateLimited
from .observability import logger
from .store import ratelimits as store
from .store.ratelimits import RatePlan

MAX_SLICE = 64


def _now() -> float:
    return time.time()


class _Window(Struct):
    start: int
    seconds: int
    tokens: int = 0  # taken from the counter, not used yet
    next_slice: int = 1
    used_up: bool = False  # the counter refused: nothing left in this window


def max_slice(limit: int) -> int:
    return max(1, min(MAX_SLICE, limit // 20))


class Limiter:
    """One container's view of the keys' windows (thread-safe; the counter is shared)."""

    def __init__(self, take: Callable[[str, int, int, int, int], int] = store.take) -> None:
        self._take = take
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def admit(self, key_id: str, plan: RatePlan, now: float) -> None:
        """Count one request of ``key_id`` at ``now``; ``RateLimited`` past the plan's limit."""
        start = int(now // plan.window_seconds) * plan.window_seconds
        with self._lock:
            window = self._windows.get(key_id)
            if window is None or window.start != start or window.seconds != plan.window_seconds:
                window = self._windows[key_id] = _Window(start, plan.window_seconds)
            if window.tokens > 0:
                window.tokens -= 1
                return
            if window.used_up:
                raise _refusal(plan, start, now)
            wanted = window.next_slice
        try:
            granted = self._take(key_id, start, plan.window_seconds, wanted, plan.limit)
        except (ClientError, BotoCoreError):
            logger.warning("rate limiter unavailable; request admitted", extra={"key_id": key_id})
            return
        with self._lock:
            current = self._windows.get(key_id) is window
            if granted == 0:
                if current:
                    window.used_up = True
                raise _refusal(plan, start, now)
            if current:
                window.tokens += granted - 1
                if granted == wanted:
                    window.next_slice = min(max_slice(plan.limit), wanted * 2)

    def forget(self) -> None:
        with self._lock:
            self._windows.clear()


_limiter = Limiter()
_plans: dict[str, tuple[RatePlan, float]] = {}  # workspace → (plan, monotonic time it was read)


def plan_for(workspace: str) -> RatePlan:
    """The workspace's per-key limit, re-read at most every ``key_cache_seconds``."""
    cached = _plans.get(workspace)
    if cached and time.monotonic() - cached[1] < settings().key_cache_seconds:
        return cached[0]
    try:
        plan = store.get_plan(workspace)
    except (ClientError, BotoCoreError):
        logger.warning("could not read the rate plan; using the defaults", extra={"workspace": workspace})
        plan = store.default_plan()
    _plans[workspace] = (plan, time.monotonic())
    return plan


def admit(workspace: str, key_id: str) -> None:
    """Count one request of ``key_id``; ``RateLimited`` (429, with Retry-After) past its limit."""
    _limiter.admit(key_id, plan_for(workspace), _now())


def _refusal(plan: RatePlan, start: int, now: float) -> RateLimited:
    retry_after = max(1, math.ceil(start + plan.window_seconds - now))
    return RateLimited(
        f"This API key reached its limit of {plan.limit} requests per {plan.window_seconds} s; "
        f"retry after {retry_after} s.",
        {"limit": plan.limit, "window_seconds": plan.window_seconds, "retry_after_seconds": retry_after},
        retry_after=retry_after,
    )


def forget() -> None:
    """Drop this container's windows and cached plans."""
    _limiter.forget()
    _plans.clear()
