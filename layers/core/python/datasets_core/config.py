"""Configuration, read once per cold start from the environment.

Logic never reads ``os.environ``; it asks ``settings()``. Each field is set by the
environment variable of the same name in any case (``ROWS_TABLE`` sets ``rows_table``);
variables that name no field are ignored. A plain record rather than pydantic-settings:
importing that costs every function ~0.1 s of cold start for a dozen strings and numbers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache

from msgspec import Struct
from msgspec.structs import fields


class Settings(Struct, frozen=True):
    meta_table: str = "datasets-meta"
    rows_table: str = "datasets-rows"
    idempotency_table: str = "datasets-idempotency"
    drop_bucket: str = "datasets-drop-local"
    drop_prefix: str = "drop/"
    export_prefix: str = "exports/"
    # The columnar replica (SPEC §6b): Parquet snapshots under this bucket and prefix.
    replica_bucket: str = "datasets-replica-local"
    replica_prefix: str = "replica/"
    # Rows per import chunk: the unit of parallel writing (one message, one invocation each).
    import_part_rows: int = 100_000
    # The function answering replica queries (invoked by the API functions that need it).
    analytics_function_name: str = "analytics"
    import_queue_url: str = ""
    maintenance_queue_url: str = ""

    # Plan defaults for a workspace that has no explicit plan (set-plan overrides them).
    default_max_rows: int = 1_000_000
    default_max_datasets: int = 100
    # Per-key request limit of a workspace that has no rate plan (set-plan --rate-limit):
    # ``default_rate_limit`` requests per window of ``default_rate_window_seconds``, per key.
    default_rate_limit: int = 100
    default_rate_window_seconds: int = 1

    # A generation's rows spread over at most this many partition keys (README "Sharding").
    max_shards: int = 32
    # Keys are re-read at most this often, so a revocation is effective within the minute.
    key_cache_seconds: int = 30
    max_body_bytes: int = 6 * 1024 * 1024
    max_rows_per_request: int = 1000
    max_columns: int = 500
    max_indexes: int = 5
    changes_retention_days: int = 90
    # A snapshot cuts the change log this long before the clock (longer than any one write).
    cut_margin_seconds: int = 60
    # Compaction folds the change log into a new snapshot once this many rows changed.
    compact_after_rows: int = 10_000
    # Snapshot versions are kept this long (the current one always).
    version_retention_days: int = 7
    # A dataset's rows are purged this long after its deletion, so no write still in flight
    # (an API function runs at most 29 s) can land after the purge.
    purge_delay_seconds: int = 120
    # Signs pagination cursors; the same value must reach every function of a deployment.
    cursor_secret: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); ``ValueError`` names a bad number."""
        found = {name.lower(): value for name, value in (os.environ if environ is None else environ).items()}
        values: dict[str, str | int] = {}
        for field in fields(cls):
            if field.name not in found:
                continue
            raw = found[field.name]
            if field.type is int:
                try:
                    values[field.name] = int(raw.strip())
                except ValueError:
                    raise ValueError(f"{field.name.upper()} must be a whole number, got {raw!r}") from None
            else:
                values[field.name] = raw
        return cls(**values)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
