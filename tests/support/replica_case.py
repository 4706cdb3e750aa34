"""A case of real replicas: shell-less lab containers captured by the real command
line and filed by the real CaseWriter as the pods of one Deployment, as a fleet
capture would file them (for the sibling comparison, the case timeline and replay).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from forensics.bundle.reader import BundleReader
from forensics.case import CaseWriter, bundle_file_name

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "local"


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


def file_replicas(directory: Path, boxes: dict[str, Any], *, case_id: str = "IR-replicas") -> Path:
    """Capture every running lab container (pod name -> LabContainer) with `exuvia
    capture` into ``directory`` and file them as the replicas of Deployment/web."""
    w = CaseWriter.create(
        directory,
        case_id=case_id,
        examiner="tester",
        request={"target": "k8s://local -l app=web", "selector": "app=web"},
    )
    w.resolved(
        [
            {
                "namespace": NAMESPACE,
                "name": pod,
                "uid": box.container_id,
                "node": "this-host",
                "phase": "Running",
                "containers": ["app"],
                "labels": {"app": "web"},
                "owners": [
                    {"kind": "ReplicaSet", "name": "web-1"},
                    {"kind": "Deployment", "name": "web"},
                ],
            }
            for pod, box in boxes.items()
        ],
        at_ns=0,
    )
    for pod, box in boxes.items():
        file = bundle_file_name(NAMESPACE, pod, "app")
        w.add_bundle(NAMESPACE, pod, "app", file=file, uri=box.uri, node="this-host")
        w.started(NAMESPACE, pod, "app")
        res = cli("capture", box.uri, "-o", str(directory / file), "-q", "--output", "json")
        if res.returncode != 0:
            raise AssertionError(f"capture of {box.uri} failed: {res.stderr}")
        doc = json.loads(res.stdout)
        assert BundleReader(directory / file).manifest()["complete"] is True
        w.finished(
            NAMESPACE,
            pod,
            "app",
            status="complete",
            file=file,
            manifest_sha256=doc["manifest_sha256"],
            size=doc["bytes"],
        )
    w.seal()
    return directory
