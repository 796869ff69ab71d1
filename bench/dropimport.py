"""An import through the drop folder of the running stack, end to end (informational).

A Parquet file of bench rows is put into the local drop bucket with boto3, as a user's
``aws s3 cp`` would; the stack's import worker picks up the notification and the import is
followed through the public API (``GET /v1/imports/{id}``) until it ends. The write
requests it sends cannot be counted from here (they leave another process), so the
requests-per-row figure is measured in-process on the same write call (``writes.py``).
"""

from __future__ import annotations

import io
import secrets
import time
from typing import Any

import boto3
import pyarrow.parquet as pq

from . import report, tables
from .report import Figure
from .stack import ROOT, ApiError, LocalStack

ROWS = 10_000
TIMEOUT = 240.0
WORKSPACE = "default"  # the stack's bootstrap key's workspace (local/__main__.py)


def figures(stack: LocalStack) -> list[Figure]:
    if not (ROOT / "functions" / "import_file" / "handler.py").exists():
        return [report.info("import through the drop folder", "not measured", "no import function yet")]
    try:
        return [_measure(stack)]
    except Exception as exc:  # noqa: BLE001 - informational: shown with its reason, the run goes on
        return [report.info("import through the drop folder", "not measured", f"{type(exc).__name__}: {exc}")]


def _measure(stack: LocalStack) -> Figure:
    name = f"bench-import-{secrets.token_hex(4)}"
    buffer = io.BytesIO()
    pq.write_table(tables.arrow_table(ROWS), buffer)
    seconds, record = drop(stack, name, buffer.getvalue())
    if record.get("status") != "succeeded" or record.get("rows_imported") != ROWS:
        raise RuntimeError(f"import ended {record.get('status')!r}: {record.get('errors')}")
    return report.info(
        "import through the drop folder (Parquet, local stack)",
        f"{seconds:.1f} s",
        note=f"{ROWS:,} rows imported, {ROWS / seconds:,.0f} rows/s end to end on moto",
    )


def drop(
    stack: LocalStack,
    name: str,
    body: bytes,
    timeout: float = TIMEOUT,
    metadata: dict[str, str] | None = None,
) -> tuple[float, dict[str, Any]]:
    """Put ``body`` (a Parquet file) into the drop folder for dataset ``name``, as ``aws s3 cp``
    would (``metadata``: the import options), and follow the import through the API: (seconds
    until it ended, its record)."""
    from datasets_core.config import settings

    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    key = f"{settings().drop_prefix}{WORKSPACE}/{name}/rows.parquet"
    began = time.perf_counter()
    s3.put_object(Bucket=settings().drop_bucket, Key=key, Body=body, Metadata=metadata or {})
    record = _wait(stack, name, began, timeout)
    return time.perf_counter() - began, record


def _wait(stack: LocalStack, name: str, began: float, timeout: float) -> dict[str, Any]:
    """The import's final record, followed through the API."""
    import_id = None
    while time.perf_counter() - began < timeout:
        if import_id is None:
            datasets = stack.call("GET", "/datasets", params={"q": name})["data"]
            found = [d for d in datasets if d["name"] == name]
            if found:
                imports = stack.call("GET", f"/datasets/{found[0]['id']}/imports")["data"]
                import_id = imports[0]["id"] if imports else None
        if import_id is not None:
            try:
                record: dict[str, Any] = stack.call("GET", f"/imports/{import_id}")["data"]
            except ApiError as exc:
                # A status read that timed out while the stack's one process serves a million
                # rows' writes says nothing about the import: ask again.
                if " answered 504" not in str(exc):
                    raise
                continue
            if record.get("status") in ("succeeded", "failed"):
                return record
        time.sleep(0.5)
    raise RuntimeError(f"the import did not end within {timeout:.0f} s")
