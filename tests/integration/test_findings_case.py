"""Findings and the report over a case: three real shell-less runc containers (two
staging the incident, one clean) captured by the real command line, filed into a
case by the real CaseWriter, then `exuvia findings CASE` and `exuvia report CASE`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from forensics.bundle.reader import BundleReader
from forensics.case import CaseWriter, bundle_file_name
from tests.integration.conftest import CLEAN_ENV, Lab
from tests.integration.test_report import _audit, _browser, _vnu

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PODS = ("web-a", "web-b", "web-clean")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=600, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def case_dir(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    boxes = [lab.runc(), lab.runc(), lab.runc(env=CLEAN_ENV)]
    d = tmp_path_factory.mktemp("fcase") / "case"
    request = {"target": "k8s://local -l app=web", "workload": None}
    w = CaseWriter.create(d, case_id="IR-find", examiner="tester", request=request)
    w.resolved(
        [{"namespace": "local", "name": n, "uid": b.container_id, "node": "this-host",
          "phase": "Running", "owners": [{"kind": "ReplicaSet", "name": "web-1"},
                                         {"kind": "Deployment", "name": "web"}]}
         for n, b in zip(PODS, boxes, strict=True)],
        at_ns=0,
    )  # fmt: skip
    for n, box in zip(PODS, boxes, strict=True):
        file = bundle_file_name("local", n, "app")
        w.add_bundle("local", n, "app", file=file, uri=box.uri, node="this-host")
        w.started("local", n, "app")
        res = _cli("capture", box.uri, "-o", str(d / file), "-q", "--output", "json")
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert BundleReader(d / file).manifest()["complete"] is True
        w.finished("local", n, "app", status="complete", file=file,
                   manifest_sha256=doc["manifest_sha256"], size=doc["bytes"])  # fmt: skip
    w.seal()
    for box in boxes:
        box.stop()
    yield d


def test_findings_per_pod_and_across_pods(case_dir: Path) -> None:
    r = _cli("findings", str(case_dir), "--output", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["format"] == "exuvia-case-findings" and doc["case"]["id"] == "IR-find"
    by = {b["pod"]: b for b in doc["bundles"]}
    assert by["web-clean"]["findings"] == []
    for pod in ("web-a", "web-b"):
        rules = {f["rule"] for f in by[pod]["findings"]}
        assert {"exe.memfd", "exe.deleted", "files.changed-system"} <= rules
        assert all(f["where"]["label"] == f"local/{pod}/app" for f in by[pod]["findings"])
    across = {a["rule"]: a for a in doc["across"]}
    assert across["exe.memfd"]["bundles"] == ["local/web-a/app", "local/web-b/app"]
    assert across["files.changed-system"]["title"].endswith("/etc/app/app.conf")
    assert all("local/web-clean/app" not in a["bundles"] for a in doc["across"])
    text = _cli("findings", str(case_dir)).stdout
    assert "held in several pods:" in text and "in 2: local/web-a/app, local/web-b/app" in text
    assert "== local/web-clean/app (complete): 0 findings" in text


def test_case_report_renders_and_validates(case_dir: Path, tmp_path: Path) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (./dev.sh installs it)")
    html = tmp_path / "case.html"
    r = _cli("report", str(case_dir), "-o", str(html))
    assert r.returncode == 0, r.stderr
    v = subprocess.run(["java", "-jar", str(_vnu()), "--format", "json", str(html)],
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    errors = [m for m in json.loads(v.stderr or v.stdout)["messages"] if m["type"] == "error"]
    assert errors == []
    dom = _browser(tmp_path, "--dump-dom", html.resolve().as_uri()).stdout
    text = "".join(_audit(dom).text)
    assert "case.json and its 3 bundle(s) verify" in text
    assert "Held in several pods" in text and "local/web-clean/app — 0 findings" in text
    assert text.count("Process tree") == 3 and "<script" not in dom.lower()
