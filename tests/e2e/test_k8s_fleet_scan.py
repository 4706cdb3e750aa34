"""End to end: ``exuvia capture k8s://… --scan RULES`` on the real cluster.

Three lab pods of one label in a namespace ``fleet2-scan-<run>`` (deleted
afterwards): two run the demo's incident (the target appends
``# changed at runtime by pid N`` to /etc/app/app.conf after start, a file the
capture copies as changed), one runs clean. The rule matches that line as
written at run time (a pid in digits: the binary's own ``%d`` format string does
not match), so exactly the two staged pods' bundles match.

- a rule file that does not compile: one line naming the file, exit 2, and
  nothing captured (no case directory, no agent added to any pod);
- the fleet: every bundle scanned once sealed, each with its ``.yara.json``
  sidecar; the capture's JSON and the case's custody log say which matched;
  ``exuvia scan CASE`` (the same code) agrees and lists the rule as matched in
  several pods; the timeline of the case carries the matches as events of
  those two pods;
- one pod (``k8s://NS/POD --scan``): the same scan of its single bundle.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from forensics.case.format import CUSTODY_FILE
from forensics.scan.sidecar import load_result, result_path
from tests.e2e import k8s_lab as lab
from tests.e2e.test_k8s_fleet import LABEL, _pod, _running

pytestmark = pytest.mark.e2e
RULE = """
rule conf_changed_at_runtime {
  meta:
    description = "the demo target's runtime change to its config"
  strings:
    $line = /# changed at runtime by pid [0-9]+\\n/
  condition:
    $line
}
"""


def _namespace(cluster: Any, run: str) -> str:
    return str(cluster.namespace("fleet2", enforce="baseline", name=f"fleet2-scan-{run}"))


def _ephemeral(cluster: Any, ns: str) -> int:
    pods = cluster.core.list_namespaced_pod(ns).items
    return sum(len(p.spec.ephemeral_containers or []) for p in pods)


def test_scan_each_sealed_bundle_of_a_fleet_and_of_one_pod(
    cluster: Any, kubeconfig_path: str, k8s_images: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    ns = _namespace(cluster, run)
    staged = ("web-a", "web-b")
    for name in (*staged, "web-c"):
        cluster.create_pod(ns, _pod(name, run, clean=name not in staged))
    _running(cluster, ns, f"{LABEL}={run}", 3)
    time.sleep(3)  # every target staged its files (~1.5 s after start)
    rules = tmp_path / "rules.yar"
    rules.write_text(RULE)
    bad = tmp_path / "bad.yar"
    bad.write_text('rule broken {\n  strings: $a = "x"\n  condition: $b\n}\n')
    case = tmp_path / "case"
    target = (f"k8s://{ns}", "-l", f"{LABEL}={run}")

    # rules that do not compile: one line, exit 2, nothing captured
    r = lab.cli(*lab.capture_argv(target[0], case, *target[1:], "--scan", str(bad)),
                kubeconfig=kubeconfig_path)  # fmt: skip
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "rules do not compile" in lines[0] and "bad.yar" in lines[0], lines
    assert "Traceback" not in r.stderr
    assert not case.exists() and _ephemeral(cluster, ns) == 0
    r = lab.cli(*lab.capture_argv(f"k8s://{ns}/web-a", tmp_path / "x.exv", "--scan", str(bad)),
                kubeconfig=kubeconfig_path)  # fmt: skip
    assert r.returncode == 2 and "rules do not compile" in r.stderr, r.stderr
    assert not (tmp_path / "x.exv").exists() and _ephemeral(cluster, ns) == 0

    # the fleet
    r = lab.cli(*lab.capture_argv(target[0], case, *target[1:], "--scan", str(rules),
                                  "--output", "json"),
                kubeconfig=kubeconfig_path, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "complete"
    scans = {b["pod"]: b["scan"] for b in doc["bundles"]}
    assert sorted(scans) == ["web-a", "web-b", "web-c"]
    for pod, scan in scans.items():
        assert "error" not in scan, scan
        want = ["conf_changed_at_runtime"] if pod in staged else []
        assert [x.split(":", 1)[1] for x in scan["rules_matched"]] == want, (pod, scan)
        assert scan["members_scanned"] > 0 and scan["scan_complete"]
        sidecar = Path(scan["results_file"])
        assert sidecar == result_path(case / f"{ns}_{pod}_app.exv")
        saved = load_result(sidecar)
        assert len(saved["matches"]) == scan["matches"]
        if pod in staged:
            assert {m["path"] for m in saved["matches"]} == {"/etc/app/app.conf"}
    assert [(a["rule"].split(":", 1)[1], len(a["bundles"])) for a in doc["scan_across"]] == [
        ("conf_changed_at_runtime", 2)
    ]
    custody = [json.loads(x) for x in (case / CUSTODY_FILE).read_text().splitlines()]
    scanned = [e for e in custody if e.get("action") == "bundle.scanned"]
    assert sorted(e["details"]["pod"] for e in scanned) == ["web-a", "web-b", "web-c"], custody[-5:]
    assert lab.cli("verify", str(case), kubeconfig="").returncode == 0

    # `exuvia scan CASE`, the same code, agrees
    r = lab.cli("scan", str(case), "--rules", str(rules), "--output", "json", kubeconfig="")
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert [len(a["bundles"]) for a in again["across"]] == [2]
    assert sorted(lb.split("/")[1] for lb in again["across"][0]["bundles"]) == list(staged)

    # the case's timeline shows the matches in those two pods
    out = tmp_path / "m.jsonl"
    r = lab.cli("timeline", str(case), "--kind", "yara.match", "-o", str(out), kubeconfig="")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted({x["pod"] for x in recs}) == list(staged), recs

    # one pod
    one = tmp_path / "one.exv"
    r = lab.cli(*lab.capture_argv(f"k8s://{ns}/web-b", one, "--scan", str(rules), "--output",
                                  "json"), kubeconfig=kubeconfig_path)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["complete"] and res["scan"]["matches"] >= 1, res
    assert load_result(Path(res["scan"]["results_file"]))["matches"]
