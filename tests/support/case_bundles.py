"""Small pod bundles written by the real BundleWriter, assembled into a case with
the real CaseWriter: for the case model's unit tests (the integration and e2e
tests use captured bundles)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forensics.bundle.writer import BundleWriter
from forensics.case import CaseWriter, bundle_file_name

NS = 1_000_000_000
T0 = 1_795_385_600 * NS


def pod_bundle(
    path: Path,
    namespace: str,
    pod: str,
    container: str = "app",
    *,
    pod_uid: str = "",
    complete: bool = True,
    files: dict[str, bytes] | None = None,
    signer: Any = None,
) -> tuple[str, str, int]:
    """Write a bundle as a k8s capture names its target; (manifest sha, file sha, bytes)."""
    uri = f"k8s://{namespace}/{pod}/{container}"
    target = {"uri": uri, "runtime": "k8s", "name": container, "started_ns": T0}
    fs = [
        {"kind": "fs_entry", "path": p, "type": "file", "size": len(d), "mtime_ns": T0}
        for p, d in (files or {}).items()
    ]
    with path.open("wb") as raw:
        w = BundleWriter(raw)
        w.add_bytes("artifacts/target.json", json.dumps(target).encode() + b"\n")
        w.add_bytes(
            "artifacts/filesystem.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in fs)
        )
        manifest_sha, _ = w.finish(
            {
                "case": "IR-1",
                "examiner": "alice",
                "complete": complete,
                "incomplete_reason": "" if complete else "the agent's stream broke",
                "target": target,
                "kubernetes": {"namespace": namespace, "pod": pod, "pod_uid": pod_uid,
                               "container": container},
            },
            signer=signer,
        )  # fmt: skip
        return manifest_sha, w.file_sha256, w.file_bytes


def pod_record(namespace: str, name: str, node: str = "node-a", **kw: Any) -> dict[str, Any]:
    return {
        "namespace": namespace, "name": name, "uid": f"uid-{name}", "node": node,
        "phase": "Running", "resource_version": "100", "containers": ["app"],
        "owners": [{"kind": "ReplicaSet", "name": "web-5d9", "uid": "rs-1"},
                   {"kind": "Deployment", "name": "web", "uid": "dep-1"}],
        "labels": {"app": "web"}, **kw,
    }  # fmt: skip


def make_case(
    directory: Path,
    pods: list[tuple[str, str]],
    *,
    signer: Any = None,
    incomplete: tuple[str, ...] = (),
    failed: dict[str, str] | None = None,
    seal: bool = True,
) -> CaseWriter:
    """A case of one bundle per (namespace, pod); ``incomplete`` pods get an
    incomplete bundle, ``failed`` ones (pod -> reason) none."""
    failed = failed or {}
    w = CaseWriter.create(
        directory,
        case_id="IR-1",
        examiner="alice",
        request={"target": "k8s://prod -l app=web", "selector": "app=web", "namespace": "prod"},
        command_line=["exuvia", "capture", "k8s://prod", "-l", "app=web"],
        signer=signer,
    )
    w.resolved([pod_record(ns, name) for ns, name in pods], at_ns=T0)
    for ns, name in pods:
        file = bundle_file_name(ns, name, "app")
        w.add_bundle(ns, name, "app", file=file, node="node-a", pod_uid=f"uid-{name}",
                     uri=f"k8s://{ns}/{name}/app")  # fmt: skip
    for ns, name in pods:
        file = bundle_file_name(ns, name, "app")
        w.started(ns, name, "app")
        if name in failed:
            w.finished(ns, name, "app", status="failed", reason=failed[name])
            continue
        done = name not in incomplete
        if not done:
            file += ".incomplete"
        sha, fsha, size = pod_bundle(
            directory / file, ns, name, pod_uid=f"uid-{name}", complete=done, signer=signer,
            files={"/etc/app.conf": f"conf of {name}".encode()},
        )  # fmt: skip
        w.finished(ns, name, "app", status="complete" if done else "incomplete",
                   reason=None if done else "the agent's stream broke", file=file,
                   manifest_sha256=sha, file_sha256=fsha, size=size,
                   signed_by=signer.fingerprint if signer else None)  # fmt: skip
    if seal:
        w.seal()
    return w
