"""`exuvia push JOURNAL s3://…/`: finishing a fleet case from the journal a
killed client left, against a real versitygw with object lock and real bundles
of shell-less runc containers.

The journal is written by the real case writer exactly as a fleet into the
store writes it (collectors/store/fleet_sink.py: the ``store.case`` entry, one
bundle's state rewritten per change) and left unsealed, as ``kill -9`` leaves
it, in the one state the e2e kill test cannot aim at: a pod whose bundle was
sealed into the store just before the client died, case.json still saying
``capturing``. The e2e test (tests/e2e/test_k8s_store_journal.py) kills a real
fleet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forensics.bundle import verify_bundle
from forensics.case import CaseWriter, bundle_file_name
from forensics.errors import OutputError
from tests.support.s3server import S3Server, s3_fixture

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    yield from s3_fixture(tmp_path_factory)


def cli(s3: S3Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **s3.env(), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args, "--endpoint-url", s3.endpoint],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip


def _journal(
    d: Path, url: str, targets: list[Any], scan: dict[str, Any] | None = None
) -> tuple[CaseWriter, list[str]]:
    """``scan``: the ``--scan`` rules as fleet_sink records them in ``store.case``."""
    w = CaseWriter.create(d, case_id="IR-journal", examiner="tester",
                          request={"target": "three runc", "workload": None})  # fmt: skip
    w.note("store.case", url=url, endpoint="test", journal=str(d),
           **({"scan": scan} if scan else {}))  # fmt: skip
    names = [f"c{i}" for i in range(len(targets))]
    w.resolved([{"namespace": "local", "name": n, "uid": t.container_id, "node": "this-host",
                 "phase": "Running", "owners": []} for n, t in zip(names, targets, strict=True)],
               at_ns=0)  # fmt: skip
    for n, t in zip(names, targets, strict=True):
        w.add_bundle("local", n, "app", file=bundle_file_name("local", n, "app"), uri=t.uri,
                     node="this-host")  # fmt: skip
    return w, [bundle_file_name("local", n, "app") for n in names]


def test_push_of_a_killed_fleets_journal_seals_the_case_from_the_store(
    s3: S3Server, lab: Any, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    url = f"s3://locked/j/{run}/"
    targets = [lab.runc(), lab.runc(), lab.runc()]
    d = tmp_path / "journal"
    w, files = _journal(d, url, targets)
    # c0: sealed into the store, then the client died before case.json said so
    w.started("local", "c0", "app")
    bundle = tmp_path / files[0]
    res = cli(s3, "capture", targets[0].uri, "-o", str(bundle), "-q")
    assert res.returncode == 0, res.stderr
    res = cli(s3, "push", str(bundle), url + files[0], "--retain", "1h")
    assert res.returncode == 0, res.stderr
    # c1: its agent streaming when the client died; c2: never started
    w.started("local", "c1", "app")
    (d / (files[1] + ".agent-stream")).write_bytes(b"x" * 4096)
    w.custody.close()  # kill -9: nothing sealed, the custody log as last appended
    before = json.loads((d / "case.json").read_text())
    assert before["state"] == "capturing"

    wrong = cli(s3, "push", str(d), f"s3://locked/j/{run}-other/")
    assert wrong.returncode == 2 and "is the journal of the case " + url in wrong.stderr

    res = cli(s3, "push", str(d), url, "--retain", "1h")
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout + res.stderr
    c = s3.client()
    doc = json.loads(c.get_object(Bucket="locked", Key=f"j/{run}/case.json")["Body"].read())
    assert doc["state"] == "interrupted" and "client died" in doc["interrupted"]
    by_pod = {b["pod"]: b for b in doc["bundles"]}
    c0 = by_pod["c0"]
    assert c0["status"] == "complete" and c0["file"] == files[0]
    assert c0["manifest_sha256"] == verify_bundle(bundle).manifest_sha256
    assert c0["bytes"] == bundle.stat().st_size
    assert by_pod["c1"]["status"] == "failed" and "cut off" in by_pod["c1"]["reason"]
    assert files[1] + ".agent-stream" in by_pod["c1"]["reason"]
    assert by_pod["c2"]["status"] == "failed" and by_pod["c2"]["reason"].startswith("not started")
    log = c.get_object(Bucket="locked", Key=f"j/{run}/case.custody.jsonl")["Body"].read()
    actions = [json.loads(x)["action"] for x in log.splitlines()]
    assert actions[0] == "case.started" and "case.resumed" in actions
    assert actions[-1] == "case.sealed"
    head = c.head_object(Bucket="locked", Key=f"j/{run}/case.json")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert sorted(p.name for p in d.iterdir()) == [files[1] + ".agent-stream"]

    ver = cli(s3, "verify", url)
    print(ver.stdout, ver.stderr)
    assert ver.returncode == 0, ver.stdout + ver.stderr
    assert "1 of 3 bundles verify" in ver.stdout and "state interrupted" in ver.stdout
    assert "custody seal:     matches" in ver.stdout
    again = cli(s3, "push", str(d), url)
    assert again.returncode == 2 and "Traceback" not in again.stderr


def test_a_sealed_case_is_not_resumed(tmp_path: Path) -> None:
    d = tmp_path / "case"
    w = CaseWriter.create(d, case_id="IR-x", examiner="t", request={})
    w.seal()
    with pytest.raises(OutputError, match="already sealed"):
        CaseWriter.resume(d, examiner="t")
    with pytest.raises(OutputError, match="cannot read"):
        CaseWriter.resume(tmp_path / "nothing", examiner="t")


def test_a_journal_whose_client_died_between_the_case_files_is_finished(
    s3: S3Server, lab: Any, tmp_path: Path
) -> None:
    """The case sealed in the journal, a bundle kept there (the store was gone when
    its pod started), and the client dead after putting case.custody.jsonl but
    before case.json: push puts what is missing and leaves the same bytes be; a
    custody object that differs is refused, never overwritten."""
    run = uuid.uuid4().hex[:6]
    url = f"s3://locked/j/{run}/"
    target = lab.runc()
    d = tmp_path / "journal"
    w, files = _journal(d, url, [target])
    w.started("local", "c0", "app")
    res = cli(s3, "capture", target.uri, "-o", str(d / files[0]), "-q")
    assert res.returncode == 0, res.stderr
    w.finished("local", "c0", "app", status="complete", file=files[0],
               manifest_sha256=verify_bundle(d / files[0]).manifest_sha256,
               size=(d / files[0]).stat().st_size)  # fmt: skip
    # with --scan, a bundle kept in the journal is scanned there (k8s_cmd._store_scan):
    # its results beside it go up with it
    rules = tmp_path / "any.yar"
    rules.write_text("rule any_member { condition: true }\n")
    res = subprocess.run([sys.executable, "-m", "tui.cli", "scan", str(d / files[0]), "--rules",
                          str(rules)], capture_output=True, text=True, cwd=REPO, timeout=600,
                         check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    results = (d / (files[0] + ".yara.json")).read_bytes()
    w.seal()
    c = s3.client()
    c.put_object(Bucket="locked", Key=f"j/{run}/case.custody.jsonl",
                 Body=(d / "case.custody.jsonl").read_bytes())  # fmt: skip
    res = cli(s3, "push", str(d), url, "--retain", "1h")
    print(res.stdout, res.stderr)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stdout + res.stderr
    prefix = f"j/{run}/"
    page = c.list_objects_v2(Bucket="locked", Prefix=prefix)["Contents"]
    listed = sorted(o["Key"][len(prefix) :] for o in page)
    assert listed == sorted([files[0], files[0] + ".custody.jsonl", files[0] + ".yara.json",
                             "case.json", "case.custody.jsonl"])  # fmt: skip
    side = f"{prefix}{files[0]}.yara.json"
    assert c.get_object(Bucket="locked", Key=side)["Body"].read() == results
    assert c.head_object(Bucket="locked", Key=side)["ObjectLockMode"] == "GOVERNANCE"
    assert not d.exists()  # everything it held is in the store
    ver = cli(s3, "verify", url)
    assert ver.returncode == 0 and "1 of 1 bundles verify" in ver.stdout, ver.stdout + ver.stderr

    # a custody object that is not the journal's: refused, the journal kept
    run2 = uuid.uuid4().hex[:6]
    d2 = tmp_path / "journal2"
    w2, _ = _journal(d2, f"s3://locked/j/{run2}/", [])
    w2.seal()
    c.put_object(Bucket="locked", Key=f"j/{run2}/case.custody.jsonl", Body=b"{}\n")
    res = cli(s3, "push", str(d2), f"s3://locked/j/{run2}/")
    assert res.returncode == 2 and "refusing to overwrite evidence" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and (d2 / "case.json").exists()
