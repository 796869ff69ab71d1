"""The per-key limiter's arithmetic: slices taken from one shared counter by several containers."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from datasets_core.errors import RateLimited
from datasets_core.ratelimit import MAX_SLICE, Limiter, max_slice
from datasets_core.store.ratelimits import RatePlan


class Counter:
    """The window counters as DynamoDB keeps them: a conditional ADD that returns the new count."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.writes = 0

    def take(self, key_id: str, start: int, _seconds: int, wanted: int, limit: int) -> int:
        self.writes += 1
        before = self.counts.get((key_id, start), 0)
        if before >= limit:  # the condition fails: nothing written
            return 0
        self.counts[(key_id, start)] = before + wanted
        return min(wanted, limit - before)


def admitted(limiter: Limiter, key: str, plan: RatePlan, now: float, requests: int) -> int:
    count = 0
    for _ in range(requests):
        try:
            limiter.admit(key, plan, now)
            count += 1
        except RateLimited:
            pass
    return count


def test_one_container_gets_exactly_the_limit_with_few_writes() -> None:
    counter = Counter()
    limiter = Limiter(counter.take)
    plan = RatePlan(limit=100, window_seconds=1)
    assert admitted(limiter, "k", plan, 1000.2, 150) == 100
    # Slices of 1, 2, 4, then 5 (limit // 20): 22 writes for 100 requests, then one refusal
    # written and every later refusal answered from memory.
    assert counter.writes == 23


def test_several_containers_together_never_pass_the_limit() -> None:
    counter = Counter()
    containers = [Limiter(counter.take) for _ in range(4)]
    plan = RatePlan(limit=100, window_seconds=1)
    total = 0
    for _ in range(60):  # the containers take turns, each serving bursts of 3
        for limiter in containers:
            total += admitted(limiter, "k", plan, 50.5, 3)
    assert total <= 100
    # A refusal can come early by what the other containers hold unused: < one slice each.
    assert total > 100 - len(containers) * max_slice(100)


def test_keys_have_their_own_windows() -> None:
    counter = Counter()
    limiter = Limiter(counter.take)
    plan = RatePlan(limit=3, window_seconds=60)
    assert admitted(limiter, "a", plan, 120.0, 5) == 3
    assert admitted(limiter, "b", plan, 120.0, 5) == 3


def test_the_next_window_starts_afresh() -> None:
    counter = Counter()
    limiter = Limiter(counter.take)
    plan = RatePlan(limit=3, window_seconds=60)
    assert admitted(limiter, "a", plan, 60.0, 4) == 3
    assert admitted(limiter, "a", plan, 119.9, 1) == 0
    assert admitted(limiter, "a", plan, 120.0, 4) == 3


@pytest.mark.parametrize(("now", "retry_after"), [(60.0, 60), (60.2, 60), (118.5, 2), (119.99, 1)])
def test_a_refusal_says_when_the_window_ends(now: float, retry_after: int) -> None:
    limiter = Limiter(Counter().take)
    plan = RatePlan(limit=1, window_seconds=60)
    limiter.admit("a", plan, now)
    with pytest.raises(RateLimited) as refused:
        limiter.admit("a", plan, now)
    assert refused.value.status == 429 and refused.value.code == "rate_limited"
    assert refused.value.headers == {"Retry-After": str(retry_after)}
    assert refused.value.details == {"limit": 1, "window_seconds": 60, "retry_after_seconds": retry_after}


def test_slices_are_bounded() -> None:
    assert max_slice(1) == max_slice(19) == 1
    assert max_slice(100) == 5
    assert max_slice(10**9) == MAX_SLICE


def test_an_unavailable_counter_admits() -> None:
    def failing(*_args: object) -> int:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "UpdateItem")

    limiter = Limiter(failing)
    assert admitted(limiter, "a", RatePlan(limit=1, window_seconds=1), 5.0, 3) == 3
