"""Configuration, read once per cold start from the environment (pydantic-settings).

Logic never reads ``os.environ``; it asks ``settings()``.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    meta_table: str = "datasets-meta"
    rows_table: str = "datasets-rows"
    idempotency_table: str = "datasets-idempotency"
    drop_bucket: str = "datasets-drop-local"
    drop_prefix: str = "drop/"
    export_prefix: str = "exports/"
    import_queue_url: str = ""
    maintenance_queue_url: str = ""

    # Plan defaults for a workspace that has no explicit plan (set-plan overrides them).
    default_max_rows: int = 1_000_000
    default_max_datasets: int = 100

    # Rows of one dataset spread over this many partition keys (fixed per dataset at creation).
    row_shards: int = 8
    # Keys are re-read at most this often, so a revocation is effective within the minute.
    key_cache_seconds: int = 30
    max_body_bytes: int = 6 * 1024 * 1024
    max_rows_per_request: int = 1000
    max_columns: int = 500
    max_indexes: int = 5
    changes_retention_days: int = 90
    # Signs pagination cursors; the same value must reach every function of a deployment.
    cursor_secret: str = ""


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings()
