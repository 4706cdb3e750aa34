"""`kubectl exuvia …`: the real kubectl (the e2e harness's, /usr/bin/kubectl) finds the
`kubectl-exuvia` entry point on PATH and runs it, as it runs every plugin. A
capture through it against the real cluster is in tests/e2e/test_k8s_findings.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import incident_bundle

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def kubectl(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "KUBECONFIG": str(home / "none")}
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env,
                          check=False, timeout=120)  # fmt: skip


def test_kubectl_finds_and_runs_the_plugin(tmp_path: Path) -> None:
    assert os.access(BIN / "kubectl-exuvia", os.X_OK)
    r = kubectl("plugin", "list", home=tmp_path)
    assert str(BIN / "kubectl-exuvia") in r.stdout, r.stdout + r.stderr
    r = kubectl("exuvia", "--version", home=tmp_path)
    assert r.returncode == 0 and r.stdout.strip().startswith("exuvia ")
    r = kubectl("exuvia", "capture", "--help", home=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("usage: kubectl exuvia capture")
    bundle = incident_bundle.build(tmp_path / "i.exv")
    r = kubectl("exuvia", "verify", str(bundle), "--output", "json", home=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True
    r = kubectl("exuvia", "nonsense", home=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("kubectl exuvia: error: argument COMMAND")
