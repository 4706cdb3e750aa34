"""The evidence store against a real S3 server (versitygw, posix backend with
object lock) on 127.0.0.1, and real shell-less runc containers captured by the
real `exuvia` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.s3server import S3Server, s3_fixture

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from s3_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def target(lab: Any) -> Any:
    return lab.runc()


def cli(s3: S3Server, *args: str, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    full = {**os.environ, **s3.env(), "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args, "--endpoint-url", s3.endpoint],
        capture_output=True, text=True, env=full, cwd=cwd or REPO, timeout=600, check=False,
    )  # fmt: skip


def error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("exuvia: error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def keys(s3: S3Server, bucket: str, prefix: str = "") -> list[str]:
    page = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in page.get("Contents", []))


def uploads(s3: S3Server, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def test_capture_of_a_real_container_into_a_locked_bucket(
    s3: S3Server, target: Any, tmp_path: Path
) -> None:
    url = "s3://locked/cases/IR-1/web.exv"
    res = cli(s3, "capture", target.uri, "-o", url, "-q", "--retain", "1h",
              "--lock-mode", "governance", "--legal-hold", cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"bundle:          {url} (complete)" in res.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written locally, not even a .partial
    c = s3.client()
    head = c.head_object(Bucket="locked", Key="cases/IR-1/web.exv")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockLegalHoldStatus"] == "ON"
    assert head["Metadata"]["exuvia-target"] == target.uri
    side = c.get_object(Bucket="locked", Key="cases/IR-1/web.exv.custody.jsonl")
    log = [json.loads(line) for line in side["Body"].read().splitlines()]
    sealed = next(e for e in log if e["action"] == "bundle.sealed")["details"]
    assert sealed["bucket"] == "locked" and sealed["key"] == "cases/IR-1/web.exv"
    assert sealed["version_id"] == head["VersionId"]
    assert sealed["mode"] == "GOVERNANCE" and sealed["retain_until"] and sealed["legal_hold"]
    assert side["Metadata"]["exuvia-manifest-sha256"] == sealed["manifest_sha256"]
    assert f"manifest sha256: {sealed['manifest_sha256']}" in res.stdout
    side_head = c.head_object(Bucket="locked", Key="cases/IR-1/web.exv.custody.jsonl")
    assert side_head["ObjectLockMode"] == "GOVERNANCE"

    # verify straight from the bucket
    res = cli(s3, "verify", url)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"OK: {url}:" in res.stdout and "custody seal:    matches" in res.stdout
    res = cli(s3, "info", url)
    assert res.returncode == 0 and f"target:     {target.uri}" in res.stdout, res.stdout

    # the server refuses to delete or replace the locked version
    with pytest.raises(ClientError):
        c.delete_object(Bucket="locked", Key="cases/IR-1/web.exv", VersionId=head["VersionId"])
    with pytest.raises(ClientError):
        c.put_object(Bucket="locked", Key="cases/IR-1/web.exv", Body=b"x", IfNoneMatch="*")
    c.put_object_legal_hold(Bucket="locked", Key="cases/IR-1/web.exv",
                            VersionId=head["VersionId"], LegalHold={"Status": "OFF"})  # fmt: skip
    with pytest.raises(ClientError):  # retention still holds it without the legal hold
        c.delete_object(Bucket="locked", Key="cases/IR-1/web.exv", VersionId=head["VersionId"])
    assert (
        c.head_object(Bucket="locked", Key="cases/IR-1/web.exv")["VersionId"] == head["VersionId"]
    )

    # and exuvia itself refuses an existing key, before capturing anything
    res = cli(s3, "capture", target.uri, "-o", url, "-q", "--retain", "1h")
    assert "already exists; refusing to overwrite evidence" in error_line(res)

    # a copy with one changed byte (elsewhere) fails verification
    data = bytearray(c.get_object(Bucket="locked", Key="cases/IR-1/web.exv")["Body"].read())
    data[len(data) // 2] ^= 0x01
    c.put_object(Bucket="plain", Key="copies/web.exv", Body=bytes(data))
    res = cli(s3, "verify", "s3://plain/copies/web.exv")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "FAILED: s3://plain/copies/web.exv" in res.stdout

    # the secret never appears in any output, the bundle or the custody log
    blob = bytes(c.get_object(Bucket="locked", Key="cases/IR-1/web.exv")["Body"].read())
    import zstandard  # noqa: PLC0415

    plain = zstandard.ZstdDecompressor().stream_reader(blob).read()
    for text in (res.stdout, res.stderr, plain.decode("latin-1"), json.dumps(log)):
        assert s3.secret_key not in text
        assert s3.access_key not in text


def test_a_bucket_without_object_lock_is_refused_before_capture_unless_no_lock(
    s3: S3Server, target: Any
) -> None:
    res = cli(s3, "capture", target.uri, "-o", "s3://plain/a/web.exv", "-q", "--retain", "1h")
    assert "does not have object lock enabled" in error_line(res)
    assert keys(s3, "plain", "a/") == [] and "a/web.exv" not in uploads(s3, "plain")
    res = cli(s3, "capture", target.uri, "-o", "s3://plain/a/web.exv", "-q", "--no-lock")
    assert res.returncode == 0, res.stdout + res.stderr
    assert keys(s3, "plain", "a/") == ["a/web.exv", "a/web.exv.custody.jsonl"]
    res = cli(s3, "verify", "s3://plain/a/web.exv")
    assert res.returncode == 0, res.stdout + res.stderr


def test_bad_store_input_is_one_line(s3: S3Server, target: Any, tmp_path: Path) -> None:
    line = error_line(cli(s3, "capture", target.uri, "-o", "s3://nosuch/x.exv", "-q"))
    assert "does not exist" in line
    line = error_line(cli(s3, "capture", target.uri, "-o", "s3://locked/x.exv", "-q",
                          env={"AWS_SECRET_ACCESS_KEY": "wrong-secret"}))  # fmt: skip
    assert "secret key does not match" in line and "wrong-secret" not in line
    line = error_line(cli(s3, "capture", target.uri, "-o", "s3://locked/x.exv", "-q",
                          env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}))  # fmt: skip
    assert "no AWS credentials" in line
    line = error_line(cli(s3, "verify", "s3://locked/missing.exv"))
    assert "missing.exv" in line
    res = subprocess.run(
        [sys.executable, "-m", "tui.cli", "capture", target.uri, "-o", "s3://locked/x.exv",
         "-q", "--endpoint-url", "http://127.0.0.1:9"],
        capture_output=True, text=True, env={**os.environ, **s3.env()}, timeout=300,
        check=False,
    )  # fmt: skip
    assert "cannot be reached" in error_line(res)
    assert "x.exv" not in keys(s3, "locked") and uploads(s3, "locked") == []
