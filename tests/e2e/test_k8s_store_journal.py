"""End to end: a fleet into the store that does not end well, and its case journal.

Real pods on the e2e cluster (namespaces ``fleets3-<run>-…``, deleted
afterwards) and a real versitygw with object lock of this module's own (it is
stopped and started again here). A fleet into ``s3://locked/cases/<run>/``
journals its case locally (collectors/store/fleet_sink.py):

* killed with ``kill -9`` mid-stream, it leaves the journal's case.json naming
  every pod, the sealed bundles in the store, nothing complete-looking for the
  pod cut off, and ``exuvia push JOURNAL s3://…/`` finishes the case there
  (``interrupted``; the pod cut off salvaged from its agent's stream as a locked
  ``.incomplete``), which ``exuvia verify s3://…/`` checks;
* with the store killed mid-fleet, the pods after it are captured into the
  journal, the last line names it, and once the store is back ``exuvia push
  JOURNAL s3://…/`` puts them and the case there, verifying as a case.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from forensics.bundle import verify_bundle
from tests.e2e import k8s_lab as lab
from tests.support.s3server import S3Server

pytestmark = pytest.mark.e2e
LABEL = "exuvia.test/fleets3"
BUCKET = "locked"
SPOOL = ".agent-stream"


def _pods(cluster: Any, run: str, suffix: str, count: int, image: str) -> str:
    """``count`` clean lab pods of ``image`` labelled for this run, running and ready."""
    ns = str(cluster.namespace("fleets3", enforce="baseline", name=f"fleets3-{run}-{suffix}"))
    for i in range(count):
        pod = lab.lab_pod(f"p-{i}", image)
        pod["metadata"]["labels"] = {LABEL: run}
        pod["spec"]["containers"][0]["env"] = [{"name": "LAB_MODE", "value": "clean"}]
        cluster.create_pod(ns, pod)

    def probe() -> bool:
        pods = cluster.core.list_namespaced_pod(ns, label_selector=f"{LABEL}={run}").items
        up = [p for p in pods if p.status.phase == "Running" and p.status.container_statuses
              and all(s.state.running for s in p.status.container_statuses)]  # fmt: skip
        return len(up) == count

    cluster.wait(probe, 240, f"{count} running pods in {ns}")
    for i in range(count):
        lab.wait_logged(cluster, ns, f"p-{i}", "]: ready")
    return ns


def _env(s3: S3Server, scratch: Path) -> dict[str, str]:
    return {**os.environ, **s3.env(), "PYTHONPATH": str(lab.REPO), "TMPDIR": str(scratch),
            "EXUVIA_FALLBACK_DIR": str(scratch)}  # fmt: skip


def _cli(s3: S3Server, scratch: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args, "--endpoint-url", s3.endpoint],
        capture_output=True, text=True, env=_env(s3, scratch), cwd=lab.REPO, timeout=600,
        check=False,
    )  # fmt: skip


def _fleet(s3: S3Server, kubeconfig: str, scratch: Path, ns: str, run: str,
           url: str) -> subprocess.Popen[str]:  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "capture", f"k8s://{ns}", "-l", f"{LABEL}={run}",
         "-o", url, "--parallel", "1", "--files", "all", "--retain", "1d",
         "--endpoint-url", s3.endpoint, "--image", lab.COLLECTOR_IMAGE,
         "--image-pull-policy", "Never", "--kubeconfig", kubeconfig],
        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(s3, scratch),
        cwd=lab.REPO,
    )  # fmt: skip


def _keys(s3: S3Server, prefix: str) -> list[str]:
    page = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"][len(prefix) :] for o in page.get("Contents", []))


def _sealed(s3: S3Server, prefix: str) -> list[str]:
    """The bundles sealed under ``prefix`` so far (their custody object is the last put)."""
    return [k[: -len(".custody.jsonl")] for k in _keys(s3, prefix) if k.endswith(".custody.jsonl")]


def _case(s3: S3Server, prefix: str) -> dict[str, Any]:
    body = s3.client().get_object(Bucket=BUCKET, Key=prefix + "case.json")["Body"].read()
    return dict(json.loads(body))


def _next_stream(journal: Path, sealed: str) -> Path:
    """The spool of another pod than the one already sealed, once over 1 MiB: that
    pod's agent is streaming."""

    def streaming() -> Path | None:
        for p in journal.glob("*" + SPOOL):
            if p.stat().st_size > (1 << 20) and not sealed.startswith(p.name[: -len(SPOOL)]):
                return p
        return None

    return Path(lab.wait_for(streaming, 600, "the second pod's stream", 0.05))


@dataclass
class MidFleet:
    """A fleet into the store caught with its first pod sealed and the next streaming."""

    proc: subprocess.Popen[str]
    scratch: Path
    prefix: str
    url: str
    journal: Path
    first: list[str]
    spool: Path


@contextmanager
def _mid_fleet(cluster: Any, s3: S3Server, kubeconfig: str, tmp_path: Path, suffix: str,
               count: int, image: str = lab.LAB_BIG_IMAGE) -> Iterator[MidFleet]:  # fmt: skip
    """``count`` pods captured one at a time into the store; yields once the first is
    sealed there and the second's agent streams; the client is killed if still alive."""
    run = uuid.uuid4().hex[:6]
    ns = _pods(cluster, run, suffix, count, image)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    prefix = f"cases/{run}/"
    url = f"s3://{BUCKET}/{prefix}"
    journal = scratch / f"exuvia-journal-{BUCKET}_cases_{run}"
    proc = _fleet(s3, kubeconfig, scratch, ns, run, url)
    try:
        first = lab.wait_for(lambda: _sealed(s3, prefix), 600, "a bundle sealed", 0.05)
        assert len(first) == 1, first
        yield MidFleet(proc, scratch, prefix, url, journal, first, _next_stream(journal, first[0]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _kill_after_a_checkpoint(proc: subprocess.Popen[str], spool: Path, timeout: float = 120) -> Any:
    """``kill -9`` the client at a moment its spool holds a checkpoint and is still
    cut off (the agent streaming); returns the spool's verify report at the kill.

    The agent's writer checks its 1 s timer (and its 4096-member, 64 MiB counts)
    only when a member ends, and the relay moves ~100 MiB/s: lab-big's single 64 MiB
    blob gives its stream the first checkpoint only at its end, just before the pod
    is sealed and its spool removed (a wait for one there ran out). lab-many's 8192
    small files in /bulk come before the blob: checkpoints at 4096 and 8192 members,
    then 64 MiB still to go. Reading a growing spool is slower than that stream, so
    the client is frozen (SIGSTOP) for each look: the spool is then exactly what
    ``kill -9`` would leave, and is verified as such; without a checkpoint yet the
    client goes on (SIGCONT) and is looked at again a moment later, else it is
    killed while still frozen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None or not spool.exists():
            raise AssertionError(
                f"the second pod's stream ended (client exit {proc.returncode}, spool "
                f"{'kept' if spool.exists() else 'removed'}) before its spool held a checkpoint"
            )
        os.kill(proc.pid, signal.SIGSTOP)
        report = verify_bundle(spool)
        if report.cut_off and report.checkpoints_valid > 0:
            proc.send_signal(signal.SIGKILL)
            return report
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.02)  # let the stream move on before the next look
    raise AssertionError(f"no checkpoint in {spool} within {timeout}s")


def test_kill_9_mid_fleet_leaves_a_journal_and_push_finishes_the_case(
    cluster: Any, s3: S3Server, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    """Killed once the second pod's spool holds a checkpoint, mid-stream (pods of
    lab-many: 8192 small files before a 64 MiB blob): push salvages what the
    checkpoints vouch for into a locked ``.incomplete``."""
    with _mid_fleet(cluster, s3, kubeconfig_path, tmp_path, "k9", 2, lab.LAB_MANY_IMAGE) as f:
        at_kill = _kill_after_a_checkpoint(f.proc, f.spool)
        _, stderr = f.proc.communicate(timeout=60)
    proc, scratch, prefix, url, journal = f.proc, f.scratch, f.prefix, f.url, f.journal
    first, spool = f.first, f.spool
    print(stderr)
    assert proc.returncode == -signal.SIGKILL
    assert stderr.splitlines()[0].startswith(f"exuvia: case journal: {journal}/")
    cut_report = verify_bundle(spool)  # what the kill left: cut off, after a checkpoint
    assert cut_report.cut_off and cut_report.checkpoints_valid > 0, cut_report.failures()
    assert cut_report.last_checkpoint == at_kill.last_checkpoint
    spool_sha = hashlib.sha256(spool.read_bytes()).hexdigest()

    # the journal's case.json, as last rewritten, names every pod
    doc = json.loads((journal / "case.json").read_text())
    assert doc["state"] == "capturing" and doc["sealed_ns"] is None
    by_pod = {b["pod"]: b for b in doc["bundles"]}
    assert sorted(by_pod) == ["p-0", "p-1"]
    done = next(b for b in doc["bundles"] if b["file"] == first[0])
    cut = next(b for b in doc["bundles"] if b is not done)
    assert done["status"] == "complete" and cut["status"] == "capturing", doc["bundles"]
    assert spool.name == cut["file"] + ".agent-stream"
    # the store: the sealed bundle and its custody object, nothing for the pod cut off
    # (its upload of .partial is unfinished: never an object), no case.json
    assert _keys(s3, prefix) == sorted([first[0], first[0] + ".custody.jsonl"])
    uploads = s3.client().list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])
    assert [u["Key"] for u in uploads] == [prefix + cut["file"] + ".partial"]

    # the finishing step: the journal pushed into the case prefix; what the agent sent
    # before the kill is salvaged from its spool into the store
    res = _cli(s3, scratch, "push", str(journal), url, "--retain", "1d")
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout + res.stderr
    assert f"pushed: {url}case.json" in res.stdout
    salvaged = cut["file"] + ".incomplete"
    assert f"pushed: {url}{salvaged} (" in res.stdout
    assert _keys(s3, prefix) == sorted([first[0], first[0] + ".custody.jsonl", salvaged,
                                        salvaged + ".custody.jsonl", "case.json",
                                        "case.custody.jsonl"])  # fmt: skip
    case = _case(s3, prefix)
    assert case["state"] == "interrupted" and "client died" in case["interrupted"]
    stored = {b["pod"]: b for b in case["bundles"]}
    assert stored[done["pod"]]["status"] == "complete"
    assert stored[done["pod"]]["manifest_sha256"] == done["manifest_sha256"]
    gone = stored[cut["pod"]]
    assert gone["status"] == "incomplete" and gone["file"] == salvaged, gone
    assert gone["reason"].startswith("salvaged after the client died mid-capture")
    assert str(spool) in gone["reason"] and "up to checkpoint" in gone["reason"]
    # the object verifies for what it holds: only what the spool's checkpoints vouch for
    c = s3.client()
    obj = tmp_path / "salvaged.exv"
    obj.write_bytes(c.get_object(Bucket=BUCKET, Key=prefix + salvaged)["Body"].read())
    held = verify_bundle(obj)
    assert held.ok and not held.complete, held.failures()
    assert held.manifest_sha256 == gone["manifest_sha256"]
    src = held.manifest["salvaged_from"]
    assert src["file"] == spool.name and src["sha256"] == spool_sha
    assert src["checkpoint"] == cut_report.last_checkpoint and src["members"] > 0, src
    head = c.head_object(Bucket=BUCKET, Key=prefix + salvaged)
    assert head["ObjectLockMode"] == "GOVERNANCE" and head["ObjectLockRetainUntilDate"]
    assert head["Metadata"]["exuvia-manifest-sha256"] == gone["manifest_sha256"]
    with pytest.raises(ClientError):  # locked: the server refuses to delete it
        c.delete_object(Bucket=BUCKET, Key=prefix + salvaged, VersionId=head["VersionId"])
    head = c.head_object(Bucket=BUCKET, Key=prefix + "case.json")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    # the upload of .partial is left to the lifecycle rule (never readable, never aborted)
    assert "AbortIncompleteMultipartUpload" in gone["reason"]
    # the spool went once its salvaged copy was read back: the journal is empty, gone
    assert not journal.exists()

    ver = _cli(s3, scratch, "verify", url)
    print(ver.stdout, ver.stderr)
    assert ver.returncode == 0 and "Traceback" not in ver.stderr, ver.stdout + ver.stderr
    assert "2 of 2 bundles verify" in ver.stdout and "state interrupted" in ver.stdout
    assert "custody seal:     matches" in ver.stdout
    # finished once: a second push is refused
    again = _cli(s3, scratch, "push", str(journal), url)
    assert again.returncode == 2 and "Traceback" not in again.stderr, again.stderr


def test_store_gone_mid_fleet_the_pods_fall_back_into_the_journal(
    cluster: Any, s3: S3Server, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    """versitygw killed while the second pod's agent streams (its upload of
    .partial is already started): its parts go to the journal and its sealed
    bundle is kept in two places; the third pod, whose upload cannot start, is
    captured into the journal as a local bundle. Then the store is back and
    `exuvia push JOURNAL` finishes both, and the case, which verifies there."""
    with _mid_fleet(cluster, s3, kubeconfig_path, tmp_path, "gone", 3) as f:
        s3.stop(sig=signal.SIGKILL)
        try:
            stdout, stderr = f.proc.communicate(timeout=900)
        finally:
            s3.start()
    proc, scratch, prefix, url, journal = f.proc, f.scratch, f.prefix, f.url, f.journal
    first, spool = f.first, f.spool
    print(stdout, stderr)
    assert proc.returncode == 2 and "Traceback" not in stderr
    lines = stderr.splitlines()
    assert lines[0].startswith(f"exuvia: case journal: {journal}/")
    last = lines[-1]
    assert last.startswith("exuvia: error:") and f"the case is kept in {journal}/" in last, last
    assert f"exuvia push {journal} {url}" in last
    assert "the bundle goes on into" in stderr and "is captured into" in stderr

    # the journal holds the sealed case: where each bundle is
    doc = json.loads((journal / "case.json").read_text())
    assert doc["state"] == "complete" and doc["sealed_ns"], doc["state"]
    by_file = {b["file"]: b for b in doc["bundles"]}
    assert len(by_file) == 3 and all(b["status"] == "complete" for b in doc["bundles"])
    split_name = spool.name[: -len(".agent-stream")]
    (local_name,) = set(by_file) - {first[0], split_name}
    split = by_file[split_name]
    assert "kept in two places" in split["reason"] and "nothing is lost" in split["reason"]
    parts = journal / (split_name + ".partial.parts")
    upload = json.loads((parts / "upload.json").read_text())
    assert upload["parts_here"] and upload["manifest_sha256"] == split["manifest_sha256"]
    assert not spool.exists()  # the bundle is sealed (in its parts): the spool went
    report = verify_bundle(journal / local_name)
    assert report.ok and report.complete, report.failures()
    assert report.manifest_sha256 == by_file[local_name]["manifest_sha256"]
    custody = (journal / (local_name + ".custody.jsonl")).read_text()
    assert '"store.fallback"' in custody
    # nothing complete-looking in the store for either: an unfinished upload at most
    assert _keys(s3, prefix) == sorted([first[0], first[0] + ".custody.jsonl"])

    # the store is back: the journal finishes the case there
    res = _cli(s3, scratch, "push", str(journal), url, "--retain", "1d")
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout + res.stderr
    assert f"pushed: {url}{split_name} (" in res.stdout  # finished from its parts
    names = sorted(by_file)
    assert _keys(s3, prefix) == sorted([*names, *(n + ".custody.jsonl" for n in names),
                                        "case.json", "case.custody.jsonl"])  # fmt: skip
    assert _case(s3, prefix) == doc
    c = s3.client()
    assert c.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []
    side = c.get_object(Bucket=BUCKET, Key=prefix + split_name + ".custody.jsonl")["Body"].read()
    actions = [json.loads(ln)["action"] for ln in side.splitlines()]
    assert actions.index("store.kept_locally") < actions.index("store.resumed")
    assert actions[-1] == "bundle.sealed"
    head = c.head_object(Bucket=BUCKET, Key=prefix + split_name)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["Metadata"]["exuvia-manifest-sha256"] == split["manifest_sha256"]
    assert not journal.exists()  # everything is in the store now
    ver = _cli(s3, scratch, "verify", url)
    print(ver.stdout, ver.stderr)
    assert ver.returncode == 0 and "Traceback" not in ver.stderr, ver.stdout + ver.stderr
    assert "3 of 3 bundles verify" in ver.stdout and "state complete" in ver.stdout
