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


@pytest.fixture(scope="module")
def big_target(lab: Any) -> Any:
    """A runc container holding 160 MiB of random data in /tmp (put there through
    /proc/PID/root by the test, as an attacker's drop would be), so an upload
    takes long enough to be cut in the middle."""
    handle = lab.runc()
    with open(f"/proc/{handle.pid}/root/tmp/drop.bin", "wb") as f:
        for _ in range(160):
            f.write(os.urandom(1 << 20))
    return handle


def _start_capture(
    s3: S3Server, target: Any, url: str, fallback: Path | None = None
) -> subprocess.Popen[str]:
    extra = ["--fallback-dir", str(fallback)] if fallback else []
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "capture", target.uri, "-o", url, "-q",
         "--files", "all", "--max-file-size", "1G", "--compress", "none", "--no-lock",
         "--endpoint-url", s3.endpoint, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **s3.env(), "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _wait_for_parts(s3: S3Server, bucket: str, key: str, proc: subprocess.Popen[str]) -> None:
    import time  # noqa: PLC0415

    c = s3.client()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the capture ended before a part was uploaded"
        for u in c.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            if u["Key"] == key and c.list_parts(Bucket=bucket, Key=key,
                                                UploadId=u["UploadId"]).get("Parts"):  # fmt: skip
                return
        time.sleep(0.02)
    raise AssertionError("no part was uploaded within 120 s")


def test_kill_9_mid_upload_leaves_no_object(s3: S3Server, big_target: Any) -> None:
    proc = _start_capture(s3, big_target, "s3://plain/killed/web.exv")
    _wait_for_parts(s3, "plain", "killed/web.exv.partial", proc)
    proc.kill()
    proc.communicate(timeout=60)
    c = s3.client()
    assert keys(s3, "plain", "killed/") == []
    with pytest.raises(ClientError):
        c.head_object(Bucket="plain", Key="killed/web.exv")
    # parts of the streamed .partial only; a lifecycle rule reaps them
    assert "killed/web.exv.partial" in uploads(s3, "plain")


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 180) -> None:
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the capture ended before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.05)


def test_the_store_dying_mid_upload_keeps_every_part_and_says_where(
    s3: S3Server, big_target: Any, tmp_path: Path
) -> None:
    """versitygw killed mid-upload and not back before the bundle is sealed: the
    retries show, the parts the store did not take go to --fallback-dir, and the
    last line says where each part is. Nothing is lost: with the store back, the
    upload finished from upload.json is a bundle that verifies."""
    proc = _start_capture(s3, big_target, "s3://plain/dropped/web.exv", fallback=tmp_path)
    _wait_for_parts(s3, "plain", "dropped/web.exv.partial", proc)
    s3.stop(sig=9)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        s3.start()  # same directory and port: the rest of the module goes on
    assert proc.returncode == 2, out + err
    assert "Traceback" not in err
    assert "retry 1/3" in err  # retries are visible
    assert "the bundle goes on into" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("exuvia: error:") and "nothing is lost" in last, err
    parts_dir = tmp_path / "web.exv.partial.parts"
    assert str(parts_dir) in last and "unfinished upload" in last
    assert keys(s3, "plain", "dropped/") == []  # never an object, complete-looking or not
    doc = json.loads((parts_dir / "upload.json").read_text())
    assert doc["key"] == "dropped/web.exv.partial" and doc["parts_here"]
    log = [json.loads(x) for x in (parts_dir / "bundle.custody.jsonl").read_text().splitlines()]
    assert {"store.retry", "store.fallback", "store.kept_locally"} <= {e["action"] for e in log}

    # every byte is there: finish the upload by hand from what upload.json says
    c = s3.client()
    parts = list(doc["parts_in_store"])
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    for n in doc["parts_here"]:  # the upload checks each part's SHA-256: send it
        body = (parts_dir / f"{n:05d}.part").read_bytes()
        sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
        r = c.upload_part(Bucket="plain", Key=doc["key"], UploadId=doc["upload_id"],
                          PartNumber=n, Body=body, ChecksumSHA256=sha)  # fmt: skip
        parts.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": sha})
    parts.sort(key=lambda p: p["PartNumber"])
    c.complete_multipart_upload(Bucket="plain", Key=doc["key"], UploadId=doc["upload_id"],
                                MultipartUpload={"Parts": parts})  # fmt: skip
    head = c.head_object(Bucket="plain", Key=doc["key"])
    assert head["ContentLength"] == doc["bytes"]
    res = cli(s3, "verify", "s3://plain/" + doc["key"])
    assert res.returncode == 0, res.stdout + res.stderr
    assert doc["manifest_sha256"] in res.stdout


def test_a_store_back_before_the_seal_gets_the_kept_parts(
    s3: S3Server, big_target: Any, tmp_path: Path
) -> None:
    """The store dies mid-upload and is back before the bundle is sealed: the parts
    kept locally meanwhile are uploaded then, the capture ends complete, the local
    directory is gone and the custody log says what happened."""
    proc = _start_capture(s3, big_target, "s3://plain/back/web.exv", fallback=tmp_path)
    _wait_for_parts(s3, "plain", "back/web.exv.partial", proc)
    s3.stop(sig=9)
    try:
        _wait_for(tmp_path / "web.exv.partial.parts", proc)
    finally:
        s3.start()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert "bundle:          s3://plain/back/web.exv (complete)" in out
    assert "the bundle goes on into" in err
    assert list(tmp_path.iterdir()) == []
    side = s3.client().get_object(Bucket="plain", Key="back/web.exv.custody.jsonl")
    actions = [json.loads(x)["action"] for x in side["Body"].read().splitlines()]
    assert "store.fallback" in actions and "store.resumed" in actions
    res = cli(s3, "verify", "s3://plain/back/web.exv")
    assert res.returncode == 0, res.stdout + res.stderr


def _local_capture(s3: S3Server, target: Any, out: Path) -> None:
    res = cli(s3, "capture", target.uri, "-o", str(out), "-q")
    assert res.returncode == 0, res.stdout + res.stderr


def test_push_a_bundle_verified_before_and_checked_after(
    s3: S3Server, target: Any, tmp_path: Path
) -> None:
    bundle = tmp_path / "web.exv"
    _local_capture(s3, target, bundle)
    res = cli(s3, "push", str(bundle), "s3://locked/pushed/", "--retain", "2h",
              "--lock-mode", "compliance")  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "pushed: s3://locked/pushed/web.exv" in res.stdout and "COMPLIANCE" in res.stdout
    import hashlib  # noqa: PLC0415

    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    assert f"sha256 {sha} (read back and matched)" in res.stdout
    c = s3.client()
    head = c.head_object(Bucket="locked", Key="pushed/web.exv")
    assert head["Metadata"]["exuvia-file-sha256"] == sha
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ClientError):
        c.delete_object(Bucket="locked", Key="pushed/web.exv", VersionId=head["VersionId"])
    side = c.get_object(Bucket="locked", Key="pushed/web.exv.custody.jsonl")["Body"].read()
    pushed = json.loads(side.splitlines()[-1])
    assert pushed["action"] == "store.pushed"
    assert pushed["details"]["version_id"] == head["VersionId"]
    assert s3.secret_key.encode() not in side
    res = cli(s3, "verify", "s3://locked/pushed/web.exv")
    assert res.returncode == 0 and "custody seal:    matches" in res.stdout, res.stdout + res.stderr

    # the timeline of an s3:// bundle: built from a copy under the exuvia cache
    cache = tmp_path / "cache"
    res = cli(s3, "timeline", "s3://locked/pushed/web.exv", "--limit", "5",
              env={"XDG_CACHE_HOME": str(cache)})  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip()
    assert list((cache / "exuvia" / "store").glob("*/web.exv"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cache",
        "web.exv",
        "web.exv.custody.jsonl",
    ]

    # pushed twice: refused; an altered bundle: refused before anything goes up
    assert "already exists" in error_line(cli(s3, "push", str(bundle), "s3://locked/pushed/"))
    data = bytearray(bundle.read_bytes())
    data[len(data) // 3] ^= 0x01
    bad = tmp_path / "bad.exv"
    bad.write_bytes(bytes(data))
    assert "does not verify" in error_line(cli(s3, "push", str(bad), "s3://locked/pushed/"))
    assert "pushed/bad.exv" not in keys(s3, "locked", "pushed/")


def test_a_local_case_pushed_and_verified_as_a_case(s3: S3Server, lab: Any, tmp_path: Path) -> None:
    from forensics.bundle.reader import BundleReader  # noqa: PLC0415
    from forensics.case import CaseWriter, bundle_file_name  # noqa: PLC0415

    targets = [lab.runc(), lab.runc()]
    d = tmp_path / "case"
    w = CaseWriter.create(d, case_id="IR-store", examiner="tester",
                          request={"target": "two runc containers", "workload": None})  # fmt: skip
    names = [t.container_id[:20].lower() for t in targets]
    w.resolved(
        [{"namespace": "local", "name": n, "uid": t.container_id, "node": "this-host",
          "phase": "Running", "owners": [{"kind": "Lab", "name": "demo"}]}
         for n, t in zip(names, targets, strict=True)],
        at_ns=0,
    )  # fmt: skip
    for n, t in zip(names, targets, strict=True):
        file = bundle_file_name("local", n, "app")
        w.add_bundle("local", n, "app", file=file, uri=t.uri, node="this-host")
        w.started("local", n, "app")
        _local_capture(s3, t, d / file)
        m = BundleReader(d / file).manifest()
        from forensics.bundle import verify_bundle  # noqa: PLC0415

        w.finished("local", n, "app", status="complete", file=file,
                   manifest_sha256=verify_bundle(d / file).manifest_sha256,
                   size=(d / file).stat().st_size)  # fmt: skip
        assert m["complete"] is True
    w.seal()
    res = cli(s3, "push", str(d), "s3://locked/cases/IR-store/", "--retain", "1h")
    assert res.returncode == 0, res.stdout + res.stderr
    listed = keys(s3, "locked", "cases/IR-store/")
    assert "cases/IR-store/case.json" in listed
    assert sorted(p.name for p in d.iterdir()) == sorted(k.rsplit("/", 1)[1] for k in listed)
    res = cli(s3, "verify", "s3://locked/cases/IR-store/")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 of 2 bundles verify" in res.stdout
    res = cli(s3, "info", "s3://locked/cases/IR-store/")
    assert res.returncode == 0 and "state:      complete" in res.stdout, res.stdout

    # one bundle of the case replaced by another in a copy of the prefix: caught
    c = s3.client()
    a, b = (k for k in listed if k.endswith(".exv"))
    for k in listed:
        body = c.get_object(Bucket="locked", Key=b if k == a else k)["Body"].read()
        c.put_object(Bucket="plain", Key="copy/" + k.rsplit("/", 1)[1], Body=body)
    res = cli(s3, "verify", "s3://plain/copy/")
    assert res.returncode == 1, res.stdout + res.stderr


@pytest.mark.parametrize("part_checksums", [True, False])
def test_multipart_writer_parts_and_checksums(s3: S3Server, part_checksums: bool) -> None:
    """The writer alone against the real server: parts of 5 MiB, both request
    shapes (x-amz-checksum-sha256 with an unsigned payload, exuvia's; or no part
    checksum and SigV4's payload hash), a wrong part checksum refused by the store,
    nothing visible before complete."""
    import hashlib  # noqa: PLC0415

    from collectors.store.client import Store  # noqa: PLC0415
    from collectors.store.upload import MultipartWriter  # noqa: PLC0415

    store = Store(endpoint_url=s3.endpoint)
    key = f"writer/{part_checksums}.bin"
    w = MultipartWriter(store, "plain", key, part_size=5 << 20, part_checksums=part_checksums)
    data = os.urandom((5 << 20) * 2 + 12345)
    for i in range(0, len(data), 1 << 20):
        w.write(data[i : i + (1 << 20)])
    assert key not in keys(s3, "plain", "writer/")
    assert w._size() == 5 << 20  # parts double every 2,000 only
    done = w.complete()
    assert done["ETag"].strip('"').endswith("-3")
    assert w.sha256 is not None and w.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    body = s3.client().get_object(Bucket="plain", Key=key)["Body"].read()
    assert body == data
    if part_checksums:  # the store does check the SHA-256 a part carries
        import base64  # noqa: PLC0415

        c = s3.client()
        up = c.create_multipart_upload(Bucket="plain", Key=key + ".bad",
                                       ChecksumAlgorithm="SHA256")["UploadId"]  # fmt: skip
        wrong = base64.b64encode(hashlib.sha256(data[1:]).digest()).decode()
        with pytest.raises(ClientError):
            c.upload_part(Bucket="plain", Key=key + ".bad", UploadId=up, PartNumber=1,
                          Body=data[: 5 << 20], ChecksumSHA256=wrong)  # fmt: skip
        c.abort_multipart_upload(Bucket="plain", Key=key + ".bad", UploadId=up)


def test_a_store_answering_500s_is_retried_visibly_and_nothing_is_lost(
    s3: S3Server, big_target: Any
) -> None:
    """Six 500s in a row for part uploads: botocore's own four attempts are not
    enough for the first part, so exuvia's retry shows (on stderr and in the
    custody log), and the capture completes and verifies."""
    from tests.support.s3flaky import FlakyProxy  # noqa: PLC0415

    proxy = FlakyProxy(s3.port, fail_parts=6)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "tui.cli", "capture", big_target.uri, "-o",
             "s3://plain/flaky/web.exv", "-q", "--no-lock", "--endpoint-url", proxy.endpoint],
            capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, **s3.env(), "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    finally:
        proxy.close()
    assert res.returncode == 0, res.stdout + res.stderr
    assert proxy.failed == 6
    assert "the store failed (HTTP 500 InternalError); retry 1/3" in res.stderr
    side = s3.client().get_object(Bucket="plain", Key="flaky/web.exv.custody.jsonl")
    actions = [json.loads(x)["action"] for x in side["Body"].read().splitlines()]
    assert "store.retry" in actions
    res = cli(s3, "verify", "s3://plain/flaky/web.exv")
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_bucket_we_may_not_write_is_one_line_before_capture(
    s3: S3Server, target: Any, tmp_path: Path
) -> None:
    """Another account of the same store (versitygw's IAM, role "user"): the
    buckets are not its own, so the store refuses, and nothing is captured."""
    s3.add_user("EXAMINER2", "examiner-two-secret")
    env = {"AWS_ACCESS_KEY_ID": "EXAMINER2", "AWS_SECRET_ACCESS_KEY": "examiner-two-secret"}
    res = cli(s3, "capture", target.uri, "-o", "s3://locked/other/web.exv", "-q",
              "--retain", "1h", env=env, cwd=tmp_path)  # fmt: skip
    line = error_line(res)
    assert "access denied" in line and "examiner-two-secret" not in res.stderr + res.stdout
    assert list(tmp_path.iterdir()) == []
    assert keys(s3, "locked", "other/") == [] and "other/web.exv" not in uploads(s3, "locked")


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupted_capture_is_sealed_as_incomplete_in_the_store(
    s3: S3Server, big_target: Any, sig: str, tmp_path: Path
) -> None:
    """Ctrl-C or SIGTERM mid-upload: what was captured is sealed and stored as
    NAME.exv.incomplete (it verifies for what it holds, with its custody object);
    no object under NAME.exv, no .partial left; exit status 3 as for a local
    interrupted capture."""
    import signal  # noqa: PLC0415

    prefix = f"interrupted-{sig.lower()}/"
    url = f"s3://locked/{prefix}web.exv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "capture", big_target.uri, "-o", url, "-q",
         "--files", "all", "--max-file-size", "1G", "--compress", "none", "--retain", "1h",
         "--endpoint-url", s3.endpoint],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, **s3.env(), "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    _wait_for_parts(s3, "locked", prefix + "web.exv.partial", proc)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, out + err
    assert "Traceback" not in err and "exuvia: error:" not in err, err
    assert f"bundle:          {url}.incomplete (INCOMPLETE (interrupted by {sig}))" in out, out
    assert keys(s3, "locked", prefix) == [
        prefix + "web.exv.incomplete",
        prefix + "web.exv.incomplete.custody.jsonl",
    ]
    assert uploads(s3, "locked") == [] and list(tmp_path.iterdir()) == []
    c = s3.client()
    head = c.head_object(Bucket="locked", Key=prefix + "web.exv.incomplete")
    assert head["ObjectLockMode"] == "GOVERNANCE"  # evidence, locked like a complete one
    side = c.get_object(Bucket="locked", Key=prefix + "web.exv.incomplete.custody.jsonl")
    log = [json.loads(x) for x in side["Body"].read().splitlines()]
    actions = [e["action"] for e in log]
    assert "capture.incomplete" in actions and "store.partial.removed" in actions
    sealed = next(e for e in log if e["action"] == "bundle.sealed")["details"]
    assert sealed["complete"] is False and sealed["version_id"] == head["VersionId"]
    assert sealed["key"] == prefix + "web.exv.incomplete"
    assert head["Metadata"]["exuvia-manifest-sha256"] == sealed["manifest_sha256"]
    res = cli(s3, "verify", url + ".incomplete")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "custody seal:    matches" in res.stdout
    res = cli(s3, "info", url + ".incomplete")
    assert res.returncode == 0 and "interrupted by" in res.stdout, res.stdout
    # the capture's names stay taken: a second capture to the same key is refused
    res = cli(s3, "capture", big_target.uri, "-o", url, "-q", "--retain", "1h")
    assert "web.exv.incomplete already exists" in error_line(res)


@pytest.mark.parametrize(
    ("env", "expect"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "not-the-secret-0123456789"}, "secret key does not match"),
        ({"AWS_ACCESS_KEY_ID": "AKNOBODY0123456789"}, "access key is not known"),
        ({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "no AWS credentials"),
        ({"AWS_PROFILE": "no-such-profile"}, "no-such-profile"),
    ],
    ids=["wrong-secret", "unknown-key", "missing", "missing-profile"],
)
def test_bad_credentials_are_one_line_and_nothing_is_captured(
    s3: S3Server, target: Any, tmp_path: Path, env: dict[str, str], expect: str
) -> None:
    """Against the real server: the store's refusal is one line naming the
    problem, before the target is touched (no upload, no object, no local
    file), and neither the secret given nor the real one is ever printed."""
    before = uploads(s3, "locked")
    res = cli(s3, "capture", target.uri, "-o", "s3://locked/creds/web.exv", "-q",
              "--retain", "1h", env=env, cwd=tmp_path)  # fmt: skip
    line = error_line(res)
    assert expect in line, line
    assert res.stdout == ""
    for secret in (s3.secret_key, "not-the-secret-0123456789"):
        assert secret not in res.stderr + res.stdout
    assert list(tmp_path.iterdir()) == []
    assert keys(s3, "locked", "creds/") == [] and uploads(s3, "locked") == before


def test_capture_scan_into_the_store_records_the_match_in_the_streamed_bundle(
    s3: S3Server, lab: Any, tmp_path: Path
) -> None:
    """``--scan`` with ``-o s3://``: the files are scanned in the same read as the
    capture, the matches travel inside the streamed bundle, nothing lands locally."""
    import uuid  # noqa: PLC0415

    from tests.support.bundles import artifacts  # noqa: PLC0415

    marker = f"EXUVIA-STORE-SCAN-{uuid.uuid4().hex[:12]}"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "marker.yar").write_text(f'rule store_marker {{ strings: $m = "{marker}" '
                                      "condition: $m }\n")  # fmt: skip
    work = tmp_path / "cwd"
    work.mkdir()
    url = "s3://locked/cases/IR-scan/web.exv"
    with lab.runc() as box:
        Path(f"/proc/{box.pid}/root/tmp/planted.txt").write_text(f"key = {marker}\n")
        res = cli(s3, "capture", box.uri, "-o", url, "-q", "--retain", "1h", "--scan", str(rules),
                  "--files", "all", "--output", "json", cwd=work)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["bundle"] == url and doc["complete"] and doc["version_id"]
    assert doc["records"]["yara"] >= 2  # the rules' record and the match
    assert list(work.iterdir()) == []  # no local copy, not even a .partial
    stored = keys(s3, "locked", "cases/IR-scan/")
    assert stored == ["cases/IR-scan/web.exv", "cases/IR-scan/web.exv.custody.jsonl"]
    local = tmp_path / "fetched.exv"
    local.write_bytes(s3.client().get_object(Bucket="locked", Key="cases/IR-scan/web.exv")
                      ["Body"].read())  # fmt: skip
    recs = artifacts(local)["yara"]
    hits = [r for r in recs if r["kind"] == "yara_match"]
    assert [r["path"] for r in hits] == ["/tmp/planted.txt"], hits
    assert hits[0]["rule"] == "store_marker"
    ver = cli(s3, "verify", url)
    assert ver.returncode == 0, ver.stdout + ver.stderr

    # rules that do not compile: one line, nothing captured, nothing stored
    (rules / "bad.yar").write_text("rule x { condition: nope }\n")
    bad = cli(s3, "capture", "pid://1", "-o", "s3://locked/cases/IR-scan/bad.exv", "-q",
              "--scan", str(rules), cwd=work)  # fmt: skip
    assert f"{rules / 'bad.yar'}:1:" in error_line(bad)
    assert keys(s3, "locked", "cases/IR-scan/bad") == [] and uploads(s3, "locked") == []
