"""A part's integrity over plain http against the real server (versitygw): the
payload goes ``UNSIGNED-PAYLOAD`` and its SHA-256 rides in the signed
``x-amz-checksum-sha256`` header (collectors/store/client.py), so a body changed
after signing is refused by the store, and a checksum changed to match is
refused as a bad signature. The requests are the writer's own; only the wire is
tampered with (botocore's ``before-send`` event, after signing)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from collectors.store.client import Store, StoreError
from collectors.store.upload import MultipartWriter
from tests.support.s3server import S3Server, s3_fixture

PART = 5 << 20


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from s3_fixture(tmp_path_factory)


def _on_the_wire(store: Store, op: str, fn: Any) -> None:
    store.client.meta.events.register(f"before-send.s3.{op}", fn)


def _header(request: Any, name: str) -> str:
    value = request.headers[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def _signed_headers(request: Any) -> list[str]:
    m = re.search(r"SignedHeaders=([^,]+)", _header(request, "Authorization"))
    assert m, _header(request, "Authorization")
    return m.group(1).split(";")


def _body(request: Any) -> bytes:
    """The prepared request's body (botocore gives a part as a BytesIO)."""
    body = request.body
    return body.getvalue() if isinstance(body, io.BytesIO) else bytes(body)


def _write(w: MultipartWriter, data: bytes) -> None:
    for i in range(0, len(data), 1 << 20):
        w.write(data[i : i + (1 << 20)])


def test_parts_go_unsigned_with_a_signed_checksum_and_the_object_verifies(s3: S3Server) -> None:
    store = Store(endpoint_url=s3.endpoint)
    assert store.endpoint and store.endpoint.startswith("http://")
    seen: list[tuple[str, str, list[str], bytes]] = []
    completes: list[tuple[str, bytes]] = []

    def part(request: Any, **_: Any) -> None:
        seen.append((_header(request, "X-Amz-Content-SHA256"),
                     _header(request, "x-amz-checksum-sha256"), _signed_headers(request),
                     _body(request)))  # fmt: skip

    def complete(request: Any, **_: Any) -> None:
        completes.append((_header(request, "X-Amz-Content-SHA256"), _body(request)))

    _on_the_wire(store, "UploadPart", part)
    _on_the_wire(store, "CompleteMultipartUpload", complete)
    data = os.urandom(PART * 2 + 4321)
    w = MultipartWriter(store, "plain", "integrity/ok.bin", part_size=PART)
    _write(w, data)
    w.complete()
    assert len(seen) == 3
    for content_sha, checksum, signed, body in seen:
        assert content_sha == "UNSIGNED-PAYLOAD"  # botocore did not hash the body again
        assert "x-amz-checksum-sha256" in signed  # ... the checksum the store checks is signed
        assert checksum == base64.b64encode(hashlib.sha256(body).digest()).decode()
    # two upload threads: the parts reach the wire in either order
    chunks = [data[i : i + PART] for i in range(0, len(data), PART)]
    assert sorted(s[3] for s in seen) == sorted(chunks)
    # a request without a checksum of its body keeps its payload signed
    (content_sha, body), = completes  # fmt: skip
    assert content_sha == hashlib.sha256(body).hexdigest()
    got = s3.client().get_object(Bucket="plain", Key="integrity/ok.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data


def _flip(body: bytes) -> bytes:
    return body[:100] + bytes([body[100] ^ 1]) + body[101:]


@pytest.mark.parametrize("fix_checksum", [False, True], ids=["body", "body+checksum"])
def test_a_part_changed_after_signing_is_refused_by_the_store(
    s3: S3Server, fix_checksum: bool
) -> None:
    """Part 2's body changed on the wire: BadDigest. Its checksum changed to
    match as well: the signature no longer matches. Either way nothing is stored."""
    store = Store(endpoint_url=s3.endpoint)
    key = f"integrity/tampered-{fix_checksum}.bin"

    def tamper(request: Any, **_: Any) -> None:
        if "partNumber=2" not in request.url:
            return
        body = _flip(_body(request))
        request.body = io.BytesIO(body)  # same length: only the bytes differ
        if fix_checksum:
            request.headers["x-amz-checksum-sha256"] = base64.b64encode(
                hashlib.sha256(body).digest()
            ).decode()

    _on_the_wire(store, "UploadPart", tamper)
    data = os.urandom(PART * 2 + 10)
    w = MultipartWriter(store, "plain", key, part_size=PART)
    with pytest.raises(StoreError) as err:
        _write(w, data)
        w.complete()
    expected = "secret key does not match" if fix_checksum else "BadDigest"
    assert expected in str(err.value), err.value
    assert w.abort()
    c = s3.client()
    assert "Contents" not in c.list_objects_v2(Bucket="plain", Prefix=key)
