"""Pure logic of the evidence store: s3:// parsing, durations, lock arguments,
and the translation of botocore's errors into one line (the real server is in
tests/integration/test_store.py)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from collectors.store.client import KeyExists, StoreUnreachable, translate
from collectors.store.lock import LockSpec, parse_duration
from collectors.store.uri import S3Url, is_s3, parse_s3
from forensics.errors import OutputError

REPO = Path(__file__).resolve().parents[2]


def test_parse_s3() -> None:
    u = parse_s3("s3://evidence/IR-7/web.exv")
    assert u == S3Url("evidence", "IR-7/web.exv") and not u.is_prefix and u.name == "web.exv"
    assert str(u.sibling(".custody.jsonl")) == "s3://evidence/IR-7/web.exv.custody.jsonl"
    p = parse_s3("s3://evidence/IR-7/")
    assert p.is_prefix and str(p.child("case.json")) == "s3://evidence/IR-7/case.json"
    assert parse_s3("s3://evidence").is_prefix
    assert is_s3("s3://x") and not is_s3(Path("s3:/x"))
    for bad in ("s3://Bad_Bucket/x", "s3://ab/x", "s3://evidence/a//b", "s3://evidence/../x",
                "s3://evidence/a/./b", "s3://evidence/a\x1b[31m", "http://evidence/x"):  # fmt: skip
        with pytest.raises(OutputError):
            parse_s3(bad)


def test_durations() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("1y") == timedelta(days=365)
    assert parse_duration("3600s") == timedelta(hours=1)
    for bad in ("", "0d", "5q", "-1d", "1.5d", "d"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_lock_arguments() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    spec = LockSpec(retain=timedelta(days=1), mode="COMPLIANCE", legal_hold=True)
    until = spec.until(now)
    assert until == datetime(2026, 1, 2, tzinfo=UTC)
    assert spec.put_args(until) == {
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": until,
        "ObjectLockLegalHoldStatus": "ON",
    }
    assert spec.describe(until)["retain_until"] == "2026-01-02T00:00:00+00:00"
    assert LockSpec().put_args(None) == {}
    with pytest.raises(OutputError, match="--no-lock"):
        LockSpec(use_lock=False, retain=timedelta(days=1))
    with pytest.raises(OutputError, match="lock mode"):
        LockSpec(mode="LOOSE")


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


def test_translated_errors_are_one_line_and_typed() -> None:
    cases = {
        ("NoSuchBucket", 404): "the bucket does not exist",
        ("NoSuchKey", 404): "no such object",
        ("AccessDenied", 403): "access denied",
        ("SignatureDoesNotMatch", 403): "secret key does not match",
        ("ExpiredToken", 400): "expired",
        ("InvalidAccessKeyId", 403): "access key is not known",
        ("InternalError", 500): "the store failed (HTTP 500",
        ("SlowDown", 503): "HTTP 503",
    }
    for (code, status), text in cases.items():
        err = translate(_client_error(code, status), "storing s3://b/k")
        assert text in str(err) and "\n" not in str(err), (code, str(err))
        assert str(err).startswith("storing s3://b/k: ")
    assert isinstance(translate(_client_error("PreconditionFailed", 412), "x"), KeyExists)
    assert isinstance(translate(_client_error("InternalError", 500), "x"), StoreUnreachable)
    down = translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), "x")
    assert isinstance(down, StoreUnreachable) and "cannot be reached" in str(down)
    assert "no AWS credentials" in str(translate(NoCredentialsError(), "x"))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os  # noqa: PLC0415

    full = {**os.environ, "PYTHONPATH": str(REPO), "AWS_ACCESS_KEY_ID": "",
            "AWS_SECRET_ACCESS_KEY": "", "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true", **(env or {})}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True,
                          text=True, env=full, cwd=REPO, timeout=60, check=False)  # fmt: skip


def test_cli_store_errors_are_one_line(tmp_path: Path) -> None:
    for args in (
        ("capture", "pid://1", "-o", "s3://Bad_Bucket/x.exv"),
        ("verify", "s3://evidence/../x"),
        ("push", str(tmp_path / "missing.exv"), "s3://evidence/"),
        ("capture", "pid://1", "-o", "s3://evidence/x.exv", "--no-lock", "--retain", "1d"),
        ("info", "s3://evidence/x.exv"),  # no credentials anywhere
    ):
        res = _cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("exuvia: error: "), res.stderr
        assert "Traceback" not in res.stderr
    assert "no AWS credentials" in _cli("info", "s3://evidence/x.exv").stderr
    res = _cli("push", "--retain", "soon", str(tmp_path), "s3://evidence/")
    assert res.returncode == 2 and "not a duration" in res.stderr


def test_fallback_parts_and_their_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real files: parts kept whole by number, listed in order, the directory made
    only when needed and refused when it exists; the error line's ranges."""
    from collectors.store.capture import _ranges  # noqa: PLC0415
    from collectors.store.fallback import FALLBACK_ENV, LocalParts, fallback_dir  # noqa: PLC0415

    local = LocalParts(tmp_path, "web.exv.partial")
    assert not local.used and local.numbers() == [] and list(tmp_path.iterdir()) == []
    for n in (12, 3, 4):
        local.put(n, bytes([n]) * 1000)
    assert local.numbers() == [3, 4, 12] and local.read(12) == b"\x0c" * 1000
    assert sorted(p.name for p in local.path.iterdir()) == ["00003.part", "00004.part",
                                                            "00012.part"]  # fmt: skip
    with pytest.raises(OutputError, match="already exists"):
        LocalParts(tmp_path, "web.exv.partial").refuse_existing()
    for n in local.numbers():
        local.remove(n)
    local.remove_dir()
    assert list(tmp_path.iterdir()) == []
    assert _ranges([]) == "none" and _ranges([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"
    monkeypatch.setenv(FALLBACK_ENV, str(tmp_path / "fb"))
    assert fallback_dir(None) == tmp_path / "fb" and fallback_dir(Path("x")) == Path("x")
    monkeypatch.delenv(FALLBACK_ENV)
    assert fallback_dir(None) == Path.cwd()


def test_a_kept_partial_is_added_to_the_capture_warnings_and_nothing_else() -> None:
    from collectors.store.seal import Sealed  # noqa: PLC0415
    from collectors.store.uri import parse_s3  # noqa: PLC0415

    url = parse_s3("s3://evidence/case/web.exv")
    staging = url.sibling(".partial")
    gone = Sealed(final=url, version_id="v1", custody_url=url.sibling(".custody.jsonl"),
                  partial_kept=None)  # fmt: skip
    assert gone.warnings(["memory skipped"], staging) == ["memory skipped"]
    kept = Sealed(final=url, version_id="v1", custody_url=url.sibling(".custody.jsonl"),
                  partial_kept="AccessDenied")  # fmt: skip
    assert kept.warnings(["memory skipped"], staging) == [
        "memory skipped",
        "s3://evidence/case/web.exv.partial (a copy of the bundle) could not be removed: "
        "AccessDenied",
    ]
