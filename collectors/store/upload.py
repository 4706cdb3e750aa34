"""A write-only byte stream that becomes one object through a multipart upload.

:class:`MultipartWriter` is what a :class:`forensics.bundle.writer.BundleWriter`
writes to (it needs ``write`` and ``flush`` only). Bytes are cut into parts of
``part_size``; ``workers`` threads upload them while the capture goes on, with
at most ``queue_parts`` parts waiting, so memory stays at a few parts whatever
the bundle's size. The store checks every part's SHA-256 (see ``part_checksums``). The
object exists under its key only after :meth:`complete`; :meth:`abort`
removes the parts. A part that fails is retried (visibly, through
``on_retry``) before the stream gives up with a :class:`StoreError`.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from collectors.store.client import Store, StoreError, StoreUnreachable, translate
from collectors.store.fallback import LocalParts
from forensics.errors import OutputError

PART_SIZE = 8 << 20
MIN_PART = 5 << 20  # S3's smallest part but the last
_DEFERRED = {signal.SIGINT, signal.SIGTERM}
#: a part's bytes: a bytearray when gathered from small writes (handed over, not copied)
Part = bytes | bytearray


class MultipartWriter:
    def __init__(
        self,
        store: Store,
        bucket: str,
        key: str,
        *,
        create_args: dict[str, Any] | None = None,
        part_size: int = PART_SIZE,
        queue_parts: int = 1,
        workers: int = 2,
        part_retries: int = 3,
        track_sha256: bool = True,
        on_retry: Callable[[str], None] | None = None,
        part_checksums: bool = True,
        fallback: LocalParts | None = None,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        """``fallback``: where the parts go when the store stops answering (after
        the retries) instead of failing the stream (fallback.py)."""
        if part_size < MIN_PART:
            raise ValueError("a part is at least 5 MiB")
        self.store = store
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self.part_retries = part_retries
        self.on_retry = on_retry or (lambda _msg: None)
        self.bytes_written = 0
        #: SHA-256 of every byte written (``push`` compares it; a capture's sink has its own)
        self.sha256 = hashlib.sha256() if track_sha256 else None
        self._buf = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._error: StoreError | None = None
        self._queue: queue.Queue[tuple[int, Part] | None] = queue.Queue(maxsize=queue_parts)
        self._next_part = 1
        self.closed = False
        self.fallback = fallback
        self.on_fallback = on_fallback or (lambda _msg: None)
        #: why the parts go to ``fallback`` now (the store's last error), if they do
        self.degraded: StoreError | None = None
        #: the parts uploaded again from ``fallback`` once the store answered
        self.resumed: list[int] = []
        # One SHA-256 per part, checked by the store: the part carries it as
        # x-amz-checksum-sha256 (signed), its payload goes unsigned (client.py)
        self.part_checksums = part_checksums
        extra = {"ChecksumAlgorithm": "SHA256"} if self.part_checksums else {}
        resp = store.call(
            f"starting the upload of {self.url}",
            store.client.create_multipart_upload,
            Bucket=bucket,
            Key=key,
            **extra,
            **(create_args or {}),
        )
        self.upload_id: str = resp["UploadId"]
        # started with the first part, not here: the capture forks its read-only
        # view's helper after the upload is created, and a fork should see no threads
        self._workers = max(1, workers)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    # -- the stream -----------------------------------------------------------
    def write(self, data: bytes | memoryview) -> int:
        """All of ``data`` or nothing: SIGINT/SIGTERM wait until it is buffered or
        queued (the capture turns them into an exception raised wherever Python
        is; in the middle of this method it would lose or tear a part, and the
        sealed ``.incomplete`` bundle would not verify)."""
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
        try:
            return self._write(data)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _write(self, data: bytes | memoryview) -> int:
        self._raise_if_failed()
        n = len(data)
        if self.sha256 is not None:
            self.sha256.update(data)
        self.bytes_written += n
        size = self._size()
        if not self._buf and n >= size:
            view = memoryview(data)
            while len(view) >= size:
                self._send(bytes(view[:size]))
                view = view[size:]
                size = self._size()
            self._buf += view
            return n
        self._buf += data
        if len(self._buf) >= size:
            # the buffer itself becomes the part (botocore takes a bytearray body
            # as it is): only the tail past the part is copied, never the part
            part, self._buf = self._buf, self._buf[size:]
            del part[size:]
            self._send(part)
        return n

    def _size(self) -> int:
        """The next part's size: doubled every 2,000 parts, so S3's 10,000-part limit
        is ~500 GiB at 8 MiB while a usual bundle keeps small parts."""
        return self.part_size << min(4, (self._next_part - 1) // 2000)

    def flush(self) -> None:
        """Nothing is durable before :meth:`complete`; a part below 5 MiB cannot be sent."""
        self._raise_if_failed()

    def _send(self, part: Part) -> None:
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._run, name=f"s3-upload-{i}", daemon=True)
                for i in range(self._workers)
            ]
            for t in self._threads:
                t.start()
        number = self._next_part
        self._next_part += 1
        while True:
            try:
                self._queue.put((number, part), timeout=0.5)
                return
            except queue.Full:
                self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the uploading thread ---------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain, so the writer never blocks on a dead upload
            number, data = item
            try:
                if self.degraded is None:
                    self._parts.append(self._upload_part(number, data))
                    continue
            except StoreUnreachable as err:
                if self.fallback is None:
                    self._error = err
                    continue
                self._degrade(err)
            except StoreError as err:
                self._error = err
                continue
            self._spill(number, data)

    def _degrade(self, err: StoreError) -> None:
        with self._lock:
            if self.degraded is not None:
                return
            self.degraded = err
        assert self.fallback is not None
        self.on_fallback(f"{err}; the store is not answering: the bundle goes on "
                         f"into {self.fallback.path}, nothing is lost")  # fmt: skip

    def _spill(self, number: int, data: Part) -> None:
        assert self.fallback is not None
        try:
            self.fallback.put(number, data)
        except OutputError as err:
            self._error = StoreError(
                f"{self.degraded}; and keeping the parts locally failed: {err}"
            )

    def _upload_part(self, number: int, data: Part) -> dict[str, Any]:
        sums: dict[str, str] = {}
        if self.part_checksums:
            sums["ChecksumSHA256"] = base64.b64encode(hashlib.sha256(data).digest()).decode()
        what = f"uploading part {number} of {self.url}"
        attempt = 0
        while True:
            try:
                resp = self.store.client.upload_part(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                    PartNumber=number, Body=data, **sums,
                )  # fmt: skip
            except Exception as err:  # noqa: BLE001 - translated below
                failure = translate(err, what)
                if not isinstance(failure, StoreUnreachable) or attempt >= self.part_retries:
                    raise failure from None
                attempt += 1
                delay = min(8.0, 0.5 * 2**attempt)
                self.on_retry(f"{failure}; retry {attempt}/{self.part_retries} in {delay:.1f}s")
                time.sleep(delay)
                continue
            return {"PartNumber": number, "ETag": resp["ETag"], **sums}

    def _drain(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()

    # -- the end ------------------------------------------------------------
    def complete(self, if_none_match: bool = True) -> dict[str, Any]:
        """Send the last part and create the object; returns the store's answer
        (``VersionId``, ``ETag``). The key existing by now is an error."""
        if self._buf or self._next_part == 1:
            part, self._buf = self._buf, bytearray()
            self._send(part)
        self._drain()
        self.closed = True
        self._raise_if_failed()
        if self.degraded is not None:
            self._resume()
        parts = sorted(self._parts, key=lambda p: int(p["PartNumber"]))
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "UploadId": self.upload_id,
            "MultipartUpload": {"Parts": parts},
        }
        if if_none_match:
            args["IfNoneMatch"] = "*"
        out: dict[str, Any] = self.store.call(
            f"completing the upload of {self.url}",
            self.store.client.complete_multipart_upload,
            **args,
        )
        return out

    def _resume(self) -> None:
        """The parts kept locally, uploaded now that the bundle is sealed; a
        StoreUnreachable if the store still does not answer (they stay kept)."""
        assert self.fallback is not None
        for number in self.fallback.numbers():
            try:
                data = self.fallback.read(number)
            except OSError as err:
                raise StoreError(f"reading back part {number} from {self.fallback.path}: "
                                 f"{err.strerror}") from None  # fmt: skip
            self._parts.append(self._upload_part(number, data))
            self.fallback.remove(number)
            self.resumed.append(number)
        self.fallback.remove_dir()
        self.degraded = None

    def uploaded(self) -> list[dict[str, Any]]:
        """The parts the store holds (number, ETag), in order."""
        return sorted(self._parts, key=lambda p: int(p["PartNumber"]))

    def abort(self) -> bool:
        """Drop the parts; True if the store confirmed. Never raises. When parts
        were kept locally the upload is left as it is: it holds the others."""
        if not self.closed:
            self._error = self._error or StoreError("aborted")
            self._drain()
            self.closed = True
        if self.fallback is not None and self.fallback.used:
            return False
        try:
            self.store.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )
        except Exception:  # noqa: BLE001 - the store may be the thing that failed
            return False
        return True
