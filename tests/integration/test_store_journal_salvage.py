"""`exuvia push JOURNAL`: the agent's stream a killed client left in the journal
salvaged into the store (collectors/store/journal_salvage.py), and ``--scan`` of
what push finishes there (collectors/store/journal_scan.py), against a real
versitygw with object lock.

The spool is a real capture's bundle stream (a shell-less runc container; an
agent writes the same stream to its stdout, collectors/agent.py), cut after a
checkpoint as ``kill -9`` of the client mid-stream leaves it, or whole as it is
when the client dies while it assembles its own bundle (with the store gone:
parts in ``NAME.exv.partial.parts/``, no upload.json). The journal is written by
the real case writer as a fleet into the store writes it. The e2e test
(tests/e2e/test_k8s_store_journal.py) kills a real fleet.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from forensics.bundle import verify_bundle
from forensics.scan.rules import compile_rules
from tests.integration.test_store_journal import _journal, cli
from tests.support.s3server import S3Server, s3_fixture

BUCKET = "locked"
RULE = 'rule salvaged_member { strings: $a = "salvage-marker-7f3a" condition: $a }\n'


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from s3_fixture(tmp_path_factory)


@dataclass
class Stream:
    data: bytes
    #: what the journal names (case.json's uri must be the bundle's target)
    target: Any


@pytest.fixture(scope="module")
def stream(lab: Any, tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Stream:
    """A real capture's bundle stream with several checkpoints (one per 4096
    members): a file the rule matches, and 12 000 small files."""
    d = tmp_path_factory.mktemp("stream")
    with lab.runc() as box:
        data = Path(f"{box.root}/data")
        data.mkdir()
        (data / "marker.txt").write_bytes(b"x" * 100 + b"salvage-marker-7f3a\n")
        rng = random.Random(16)
        for d_ in range(12):
            sub = data / f"d{d_:02d}"
            sub.mkdir()
            for i in range(1000):
                (sub / f"f{i:03d}").write_bytes(rng.randbytes(rng.randrange(64, 600)))
            (sub / "marker.txt").write_bytes(b"salvage-marker-7f3a\n")  # in any cut
        res = cli(s3, "capture", box.uri, "-o", str(d / "whole.exv"), "--files", "all", "-q")
        assert res.returncode == 0, res.stderr
        target = SimpleNamespace(uri=box.uri, container_id=box.container_id)
    return Stream((d / "whole.exv").read_bytes(), target)


def _cut(stream: bytes, where: Path) -> bytes:
    """The stream cut as late as possible while still cut off after a checkpoint."""
    for frac in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4):
        where.write_bytes(stream[: int(len(stream) * frac)])
        r = verify_bundle(where)
        if r.cut_off and r.checkpoints_valid >= 2:
            return where.read_bytes()
    raise AssertionError("no cut of the stream after a checkpoint")


def _rules(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    rules = tmp_path / "marker.yar"
    rules.write_text(RULE)
    return rules, {"rules": str(rules), "sha256": compile_rules(rules).sha256, "rules_count": 1}


def _locked(s3: S3Server, key: str) -> None:
    """Object lock holds: the server refuses to delete the locked version."""
    c = s3.client()
    head = c.head_object(Bucket=BUCKET, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE", head
    with pytest.raises(ClientError):
        c.delete_object(Bucket=BUCKET, Key=key, VersionId=head["VersionId"])
    assert c.head_object(Bucket=BUCKET, Key=key)["VersionId"] == head["VersionId"]


def _custody(s3: S3Server, prefix: str) -> list[dict[str, Any]]:
    body = s3.client().get_object(Bucket=BUCKET, Key=prefix + "case.custody.jsonl")["Body"].read()
    return [json.loads(x) for x in body.splitlines()]


def test_a_cut_off_spool_is_salvaged_into_the_store_and_scanned(
    s3: S3Server, tmp_path: Path, stream: Stream
) -> None:
    run = uuid.uuid4().hex[:6]
    prefix = f"j/{run}/"
    url = f"s3://{BUCKET}/{prefix}"
    targets = [stream.target, stream.target]
    d = tmp_path / "journal"
    _, recorded = _rules(tmp_path)
    w, files = _journal(d, url, targets, scan=recorded)
    # c0: its agent streaming, cut after a checkpoint; c1: cut before anything is vouched for
    w.started("local", "c0", "app")
    cut = _cut(stream.data, tmp_path / "cut.exv.partial")
    spool0 = d / (files[0] + ".agent-stream")
    spool0.write_bytes(cut)
    w.started("local", "c1", "app")
    spool1 = d / (files[1] + ".agent-stream")
    spool1.write_bytes(stream.data[:3000])
    w.custody.close()  # kill -9

    res = cli(s3, "push", str(d), url, "--retain", "1h")
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout + res.stderr
    salvaged = files[0] + ".incomplete"
    assert f"pushed: {url}{salvaged} (" in res.stdout
    c = s3.client()
    page = c.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    assert sorted(o["Key"][len(prefix) :] for o in page) == sorted([
        salvaged, salvaged + ".custody.jsonl", salvaged + ".yara.json", "case.json",
        "case.custody.jsonl"])  # fmt: skip
    doc = json.loads(c.get_object(Bucket=BUCKET, Key=prefix + "case.json")["Body"].read())
    by_pod = {b["pod"]: b for b in doc["bundles"]}
    b0 = by_pod["c0"]
    assert b0["status"] == "incomplete" and b0["file"] == salvaged, b0
    assert b0["reason"].startswith("salvaged after the client died mid-capture")
    assert str(spool0) in b0["reason"] and "up to checkpoint" in b0["reason"]
    assert "AbortIncompleteMultipartUpload" in b0["reason"]
    # the object is the salvaged bundle case.json names: only what checkpoints vouch for
    body = c.get_object(Bucket=BUCKET, Key=prefix + salvaged)["Body"].read()
    local = tmp_path / "back.exv.incomplete"
    local.write_bytes(body)
    rep = verify_bundle(local)
    assert rep.ok and not rep.complete, rep.failures()
    assert rep.manifest_sha256 == b0["manifest_sha256"]
    assert hashlib.sha256(body).hexdigest() == b0["file_sha256"] and len(body) == b0["bytes"]
    src = rep.manifest["salvaged_from"]
    assert src["sha256"] == hashlib.sha256(cut).hexdigest() and src["file"] == spool0.name
    assert src["checkpoint"] >= 2 and src["members"] > 0
    head = c.head_object(Bucket=BUCKET, Key=prefix + salvaged)
    assert head["Metadata"]["exuvia-salvaged-from-sha256"] == src["sha256"]
    side = c.get_object(Bucket=BUCKET, Key=prefix + salvaged + ".custody.jsonl")["Body"].read()
    actions = [json.loads(x)["action"] for x in side.splitlines()]
    # the capture's own entries as the stream holds them, then the salvage's, the push last
    assert actions[0] == "capture.started" and actions[-1] == "store.pushed", actions
    assert actions.index("salvage.started") < actions.index("bundle.sealed")
    for key in (salvaged, salvaged + ".custody.jsonl", salvaged + ".yara.json", "case.json"):
        _locked(s3, prefix + key)
    # --scan: scanned from the object, the results beside it, in the case's custody log
    scan = json.loads(c.get_object(Bucket=BUCKET, Key=prefix + salvaged + ".yara.json")["Body"]
                      .read())  # fmt: skip
    assert scan["manifest_sha256"] == b0["manifest_sha256"]
    assert {m["rule"] for m in scan["matches"]} == {"salvaged_member"}
    log = _custody(s3, prefix)
    scanned = [e for e in log if e["action"] == "bundle.scanned"]
    assert len(scanned) == 1 and scanned[0]["details"]["file"] == salvaged
    assert scanned[0]["details"]["rules_matched"] == ["marker.yar:salvaged_member"]
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    # c1: nothing vouched for: failed, its spool kept and named
    b1 = by_pod["c1"]
    assert b1["status"] == "failed" and str(spool1) in b1["reason"], b1
    assert "not salvaged" in b1["reason"]
    assert sorted(p.name for p in d.iterdir()) == [spool1.name]  # c0's spool went
    assert spool1.read_bytes() == stream.data[:3000]

    ver = cli(s3, "verify", url)
    print(ver.stdout, ver.stderr)
    assert ver.returncode == 0, ver.stdout + ver.stderr
    assert "1 of 2 bundles verify" in ver.stdout and "state interrupted" in ver.stdout


def test_a_whole_spool_with_parts_left_by_a_store_gone_is_salvaged_rules_gone_unscanned(
    s3: S3Server, tmp_path: Path, stream: Stream
) -> None:
    """The store was gone while the client assembled the pod's bundle (parts in the
    journal, an unfinished upload in the store) and the client died before it
    sealed it: the spool holds the agent's whole stream. The --scan rules are gone."""
    run = uuid.uuid4().hex[:6]
    prefix = f"j/{run}/"
    url = f"s3://{BUCKET}/{prefix}"
    d = tmp_path / "journal"
    rules, recorded = _rules(tmp_path)
    w, files = _journal(d, url, [stream.target], scan=recorded)
    rules.unlink()
    f = files[0]
    w.started("local", "c0", "app")
    (d / (f + ".agent-stream")).write_bytes(stream.data)
    c = s3.client()
    up = c.create_multipart_upload(Bucket=BUCKET, Key=prefix + f + ".partial")
    c.upload_part(Bucket=BUCKET, Key=prefix + f + ".partial", UploadId=up["UploadId"],
                  PartNumber=1, Body=stream.data[: 5 << 20])  # fmt: skip
    parts = d / (f + ".partial.parts")
    parts.mkdir()
    (parts / "00002.part").write_bytes(stream.data[5 << 20 : 10 << 20])
    w.custody.close()  # kill -9

    res = cli(s3, "push", str(d), url, "--retain", "1h")
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout + res.stderr
    assert "the --scan rules of the capture cannot be used" in res.stderr
    assert f"kept in {d}/" in res.stderr
    doc = json.loads(c.get_object(Bucket=BUCKET, Key=prefix + "case.json")["Body"].read())
    (b,) = doc["bundles"]
    assert b["status"] == "incomplete" and b["file"] == f + ".incomplete", b
    assert "the agent's stream was whole" in b["reason"]
    assert f"{parts}/" in b["reason"] and "push leaves them" in b["reason"]
    body = c.get_object(Bucket=BUCKET, Key=prefix + f + ".incomplete")["Body"].read()
    local = tmp_path / "back.exv.incomplete"
    local.write_bytes(body)
    rep = verify_bundle(local)
    assert rep.ok and not rep.complete and rep.manifest["salvaged_from"]["sealed"] is True
    _locked(s3, prefix + f + ".incomplete")
    # the unfinished upload is left for the lifecycle rule, the kept parts stay
    uploads = c.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [up["UploadId"]]
    assert sorted(p.name for p in d.iterdir()) == [parts.name]
    assert (parts / "00002.part").read_bytes() == stream.data[5 << 20 : 10 << 20]
    # not scanned: recorded so, no results object
    log = _custody(s3, prefix)
    failed = [e for e in log if e["action"] == "bundle.scan_failed"]
    assert len(failed) == 1 and "cannot be used" in failed[0]["details"]["error"]
    assert not any(e["action"] == "bundle.scanned" for e in log)
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    assert not any(k.endswith(".yara.json") for k in keys)
    ver = cli(s3, "verify", url)
    assert ver.returncode == 0 and "1 of 1 bundles verify" in ver.stdout, ver.stdout + ver.stderr
