"""Per-key rate limits (SPEC §2) through the real handlers: 429 ``rate_limited`` with Retry-After
past a key's limit, other keys unaffected, the next window open again, nothing written."""

from __future__ import annotations

import pytest

from datasets_core import auth, ratelimit
from datasets_core.store import ratelimits, workspaces

from .conftest import Client, make_key

LIMIT = 5
WINDOW = 60
WINDOW_START = 1_800_000_000 - 1_800_000_000 % WINDOW  # a window boundary


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The limiter's clock, 18.5 s into a window; tests move it by assigning ``clock[0]``."""
    now = [WINDOW_START + 18.5]
    monkeypatch.setattr(ratelimit, "_now", lambda: now[0])
    return now


@pytest.fixture
def limited(client: Client, clock: list[float]) -> Client:
    """A client whose workspace allows each key 5 requests per minute."""
    workspaces.set_plan("default", rate_limit=LIMIT, rate_window_seconds=WINDOW)
    ratelimit.forget()  # the plan is cached per container, as keys are
    return client


def burst(client: Client, count: int, path: str = "/datasets", key: str | None = None) -> list:
    return [client.get(path, key=key) for _ in range(count)]


def test_a_burst_above_the_limit_gets_429_with_retry_after(limited: Client) -> None:
    # Given a limit of 5 requests per minute, when one key sends 8,
    answers = burst(limited, LIMIT + 3)
    # then the first 5 are answered and the rest refused in the envelope, saying when to retry
    # (the window ends 41.5 s later).
    assert [a.status for a in answers] == [200] * LIMIT + [429] * 3
    for refused in answers[LIMIT:]:
        assert refused.headers["Retry-After"] == "42"
        error = refused.json()["error"]
        assert error["code"] == "rate_limited"
        assert error["details"] == {"limit": LIMIT, "window_seconds": WINDOW, "retry_after_seconds": 42}
    # The window's counter holds the grants (slices of one at this limit); refusals add nothing.
    key_id = auth.split_key(limited.key or "")[0]
    assert ratelimits.counted(key_id, WINDOW_START) == LIMIT


def test_the_limit_holds_across_containers(limited: Client) -> None:
    # Each new container starts without slices: the counter in DynamoDB still holds the count.
    statuses = []
    for _ in range(LIMIT + 2):
        ratelimit.forget()
        statuses.append(limited.get("/datasets").status)
    assert statuses == [200] * LIMIT + [429] * 2


def test_another_key_is_unaffected(limited: Client) -> None:
    assert burst(limited, LIMIT + 1)[-1].status == 429
    other = make_key(name="other")
    elsewhere = make_key("elsewhere", name="elsewhere")
    assert [a.status for a in burst(limited, LIMIT, key=other)] == [200] * LIMIT
    # A workspace without a plan of its own has the default limit (100 per second here raised).
    assert [a.status for a in burst(limited, LIMIT + 1, key=elsewhere)] == [200] * (LIMIT + 1)
    assert limited.get("/datasets").status == 429


def test_the_next_window_is_open_again(limited: Client, clock: list[float]) -> None:
    assert burst(limited, LIMIT + 1)[-1].status == 429
    clock[0] = WINDOW_START + WINDOW - 0.01
    assert limited.get("/datasets").status == 429
    clock[0] = WINDOW_START + WINDOW
    assert [a.status for a in burst(limited, LIMIT + 1)] == [200] * LIMIT + [429]


def test_a_refused_write_writes_nothing(limited: Client) -> None:
    created = limited.post("/datasets", {"name": "leads"})
    assert created.status == 201
    dataset_id = created.json()["data"]["id"]
    burst(limited, LIMIT - 1)
    refused = limited.post(f"/datasets/{dataset_id}/rows", {"rows": [{"name": "Acme"}]})
    assert refused.status == 429 and refused.headers["Retry-After"]
    workspaces.set_plan("default", rate_limit=1000)
    ratelimit.forget()
    answer = limited.get(f"/datasets/{dataset_id}/rows")
    assert answer.status == 200 and answer.json()["data"]["rows"] == []


def test_public_routes_are_not_limited(limited: Client) -> None:
    assert burst(limited, LIMIT + 1)[-1].status == 429
    assert [a.status for a in burst(limited, 3, "/health")] == [200] * 3


def test_the_plan_says_the_limit(client: Client) -> None:
    assert ratelimits.get_plan("default") == ratelimits.RatePlan(1_000_000, 1)  # the test default
    plan = workspaces.set_plan("default", rate_limit=7)
    assert (plan["rate_limit"], plan["rate_window_seconds"]) == (7, 1)
    plan = workspaces.set_plan("default", rate_window_seconds=10)
    assert (plan["rate_limit"], plan["rate_window_seconds"]) == (7, 10)
