"""Uploading a file while it is written (``replica/upload.py``): the object is exactly what was
written, and a failure on either side leaves no object, no open multipart upload and no thread."""

from __future__ import annotations

import io
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from datasets_core.replica.upload import upload_while_writing

BUCKET = "exports"
MB = 1024 * 1024


@pytest.fixture
def s3(mocked_aws: None) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _chunks(count: int, size: int) -> list[bytes]:
    return [bytes([index % 251]) * size for index in range(count)]


def _writing(chunks: list[bytes], fail_after: int | None = None) -> Any:
    def write(sink: io.RawIOBase) -> None:
        for index, chunk in enumerate(chunks):
            if index == fail_after:
                raise ValueError("the writer failed")
            sink.write(chunk)

    return write


def _writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "upload-writer"]


@pytest.mark.parametrize(("count", "size"), [(0, 0), (3, 1000), (20, MB)])
def test_the_object_is_what_was_written(s3: Any, count: int, size: int) -> None:
    # 20 MB passes boto3's 8 MB multipart threshold; the others go as one PUT.
    chunks = _chunks(count, size)
    written = upload_while_writing(_writing(chunks), s3, BUCKET, "out.csv", {"ContentType": "text/csv"})
    stored = s3.get_object(Bucket=BUCKET, Key="out.csv")
    assert written == count * size
    assert stored["Body"].read() == b"".join(chunks)
    assert stored["ContentType"] == "text/csv"
    assert not _writer_threads()


@pytest.mark.parametrize("fail_after", [2, 15])
def test_a_writer_that_fails_publishes_nothing(s3: Any, fail_after: int) -> None:
    # After 2 MB the file is still under the threshold; after 15 MB a part is already sent.
    with pytest.raises(ValueError, match="the writer failed"):
        upload_while_writing(_writing(_chunks(20, MB), fail_after), s3, BUCKET, "out.csv", {})
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=BUCKET)
    assert not _writer_threads()


def test_a_failed_transfer_stops_the_writer(s3: Any) -> None:
    # The transfer fails at its first request: the writer must stop soon after, not write
    # all of a long file into a transfer that discards it (nor hang on a full pipe).
    written: list[int] = []

    def write(sink: io.RawIOBase) -> None:
        chunk = b"x" * MB
        for _ in range(4096):
            sink.write(chunk)
            written.append(1)

    with pytest.raises(ClientError, match="NoSuchBucket"):
        upload_while_writing(write, s3, "no-such-bucket", "out.csv", {})
    assert len(written) < 256
    assert not _writer_threads()
