"""Upload a file to S3 while it is still being written.

An export writes its file batch by batch; uploading only once the last batch is written
would make the caller wait for the write and then for the whole transfer. Here the writer
runs on its own thread into a pipe, and boto3's managed transfer reads the other end,
sending each part as soon as it is full (multipart beyond its threshold, one PUT below it).
The writer's Arrow code and the transfer's sockets release the GIL, so the two overlap.

A file is never published half-written: when the writer fails, the transfer sees the
failure instead of the end of the file, so boto3 aborts the multipart upload (or never sends
the single PUT) and the writer's error is raised. When the transfer fails (S3 refuses a
part), the next read ends the transfer's reading (s3transfer would otherwise read the file to
its end for nothing) and the read end is closed, so the writer's next write fails and its
thread ends. Memory stays bounded: s3transfer holds at most ten parts of a stream at once.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from typing import Any

from boto3.s3.transfer import TransferConfig, create_transfer_manager


class TransferFailed(Exception):
    """Raised into s3transfer's reading once the transfer has failed; the transfer's own
    error is what the caller sees."""


class _CountingSink(io.RawIOBase):
    """The pipe's write end, counting what went through: Parquet's writer asks ``tell()``,
    which a pipe cannot answer, and the export reports the file's size."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._file.write(view)  # unbuffered: writes it all, blocking while the pipe is full
        self.written += len(view)
        return len(view)

    def tell(self) -> int:
        return self.written

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


class _Source(io.RawIOBase):
    """The pipe's read end as the transfer reads it: the end of the file only once the
    writer has finished without error."""

    def __init__(self, fd: int, writer: threading.Thread, failures: list[BaseException]) -> None:
        super().__init__()
        self._file = os.fdopen(fd, "rb")
        self._writer = writer
        self._failures = failures
        self.transfer: Any = None  # the s3transfer future reading this, once it exists

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.transfer is not None and self.transfer.done():
            raise TransferFailed  # a failed transfer is done before its reading ends
        data = self._file.read(size)
        if size < 0 or len(data) < size:  # the write end is closed: finished, or failed
            self._writer.join()
            if self._failures:
                raise self._failures[0]
        return data

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def upload_while_writing(
    write: Callable[[io.RawIOBase], None], s3: Any, bucket: str, key: str, extra_args: dict[str, str]
) -> int:
    """Run ``write(sink)`` and upload what it writes to ``bucket``/``key``; the file's size."""
    read_fd, write_fd = os.pipe()
    sink = _CountingSink(write_fd)
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            write(sink)
        except BaseException as error:  # noqa: BLE001 - handed to the reading side, raised there
            failures.append(error)
        finally:
            sink.close()

    writer = threading.Thread(target=produce, name="upload-writer", daemon=True)
    source = _Source(read_fd, writer, failures)
    writer.start()
    try:
        # What ``s3.upload_fileobj`` does, keeping the future so that reading can see a failure.
        with create_transfer_manager(s3, TransferConfig()) as transfers:
            source.transfer = transfers.upload(source, bucket, key, extra_args=extra_args)
            source.transfer.result()
    finally:
        source.close()  # a writer still writing (the transfer failed) now fails and ends
        writer.join()
    if failures:
        raise failures[0]
    return sink.written
