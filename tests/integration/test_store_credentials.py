"""Expired credentials, for real: versitygw cannot issue expiring tokens, but the
AWS chain's ``credential_process`` can hand exuvia credentials whose
``Expiration`` is past. botocore then refreshes them (it runs the process again)
and, still expired, raises from inside the first request; exuvia asks for them
when it opens the store and refuses in one line, before a target is touched or
a byte is pushed. The same profile with an ``Expiration`` in the future works,
so it is the expiry that is refused, not the profile mechanism.

Real versitygw, a real shell-less runc container, the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.s3server import S3Server, s3_fixture

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from s3_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def target(lab: Any) -> Any:
    return lab.runc()


@pytest.fixture
def aws_config(s3: S3Server, tmp_path: Path) -> Path:
    """A shared config file with two ``credential_process`` profiles giving the
    server's real key pair: ``expired`` (expired an hour ago) and ``fresh``
    (valid for two hours). No ``SessionToken``: versitygw refuses any it did not
    issue, and it issues none. Each run of the process is counted in a file."""
    script = tmp_path / "creds.py"
    script.write_text(textwrap.dedent(f"""\
        import json, sys
        with open({str(tmp_path / "runs")!r}, "a") as f:
            f.write(sys.argv[1] + "\\n")
        print(json.dumps({{"Version": 1, "AccessKeyId": {s3.access_key!r},
                           "SecretAccessKey": {s3.secret_key!r},
                           "Expiration": sys.argv[2]}}))
        """))  # fmt: skip
    now = datetime.now(UTC)
    past = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = tmp_path / "config"
    config.write_text(
        f"[profile expired]\nregion = us-east-1\n"
        f"credential_process = {sys.executable} {script} expired {past}\n\n"
        f"[profile fresh]\nregion = us-east-1\n"
        f"credential_process = {sys.executable} {script} fresh {future}\n"
    )
    return config


def cli(s3: S3Server, config: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command line with no credentials in the environment: only the profile's."""
    env = {**os.environ, **s3.env(), "PYTHONPATH": str(REPO), "AWS_CONFIG_FILE": str(config),
           "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}  # fmt: skip
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args, "--endpoint-url", s3.endpoint],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False,
    )  # fmt: skip


def keys(s3: S3Server, bucket: str, prefix: str) -> list[str]:
    page = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in page.get("Contents", []))


def uploads(s3: S3Server, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def expired_line(s3: S3Server, res: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, exactly one stderr line, no traceback, no key printed."""
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("exuvia: error: opening the store: the credentials have expired")
    assert "profile 'expired'" in line, line
    for secret in (s3.secret_key, s3.access_key):
        assert secret not in res.stderr
    return line


def test_expired_credentials_refuse_a_capture_before_the_target_is_touched(
    s3: S3Server, target: Any, aws_config: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    before = uploads(s3, "locked")
    res = cli(s3, aws_config, "capture", target.uri, "-o", "s3://locked/expired/web.exv", "-q",
              "--retain", "1h", "--aws-profile", "expired", cwd=work)  # fmt: skip
    expired_line(s3, res)
    # botocore did run the process again (the refresh) before exuvia refused
    assert (tmp_path / "runs").read_text().split() == ["expired", "expired"]
    assert list(work.iterdir()) == []
    assert keys(s3, "locked", "expired/") == [] and uploads(s3, "locked") == before

    # the same mechanism with an expiry in the future captures into the bucket
    res = cli(s3, aws_config, "capture", target.uri, "-o", "s3://locked/fresh/web.exv", "-q",
              "--retain", "1h", "--aws-profile", "fresh", cwd=work)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert keys(s3, "locked", "fresh/") == ["fresh/web.exv", "fresh/web.exv.custody.jsonl"]
    assert "fresh" in (tmp_path / "runs").read_text().split()
    side = s3.client().get_object(Bucket="locked", Key="fresh/web.exv.custody.jsonl")
    text = side["Body"].read().decode()
    assert s3.secret_key not in text and s3.secret_key not in res.stdout + res.stderr


def test_expired_credentials_refuse_a_push_before_anything_goes_up(
    s3: S3Server, target: Any, aws_config: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    bundle = work / "web.exv"
    res = cli(s3, aws_config, "capture", target.uri, "-o", str(bundle), "-q", cwd=work)
    assert res.returncode == 0, res.stdout + res.stderr
    before = uploads(s3, "locked")
    res = cli(s3, aws_config, "push", str(bundle), "s3://locked/pushexp/", "--retain", "1h",
              "--aws-profile", "expired", cwd=work)  # fmt: skip
    expired_line(s3, res)
    assert keys(s3, "locked", "pushexp/") == [] and uploads(s3, "locked") == before
    assert sorted(p.name for p in work.iterdir()) == ["web.exv", "web.exv.custody.jsonl"]

    res = cli(s3, aws_config, "push", str(bundle), "s3://locked/pushfresh/", "--retain", "1h",
              "--aws-profile", "fresh", "--output", "json", cwd=work)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert [o["url"] for o in out["objects"]] == ["s3://locked/pushfresh/web.exv"]
    assert keys(s3, "locked", "pushfresh/") == ["pushfresh/web.exv",
                                                "pushfresh/web.exv.custody.jsonl"]  # fmt: skip
