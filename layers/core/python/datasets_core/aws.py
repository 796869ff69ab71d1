"""boto3 clients and resources, created lazily and reused across warm invocations.

Nothing talks to AWS at import time. boto3 itself honours ``AWS_ENDPOINT_URL``, which is how
the local stack and tests point every client at moto.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=3,
    read_timeout=10,
    # S3 bodies are not hashed into the request signature: over HTTPS with the checksum botocore
    # sends (CRC32), that is already what it does. Said explicitly, it also holds for a plain-HTTP
    # endpoint (the local stack), where botocore would otherwise SHA-256 every uploaded byte
    # (about a tenth of a second per 80 MB export).
    s3={"payload_signing_enabled": False},
)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


@cache
def table(name: str) -> Any:
    """A DynamoDB ``Table`` resource (typed values: Decimal numbers, native str/bool/list/map)."""
    return boto3.session.Session().resource("dynamodb", config=_CONFIG).Table(name)


def reset() -> None:
    """Forget cached clients (tests switch endpoints between sessions)."""
    client.cache_clear()
    table.cache_clear()
