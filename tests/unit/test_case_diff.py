"""The sibling comparison (forensics/case/diff.py) over bundles written by the real
BundleWriter and filed by the real CaseWriter; `exuvia case diff DIR` on them.
(tests/integration/test_case_read.py runs it over real captured containers.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from forensics.bundle.writer import BundleWriter
from forensics.case import CaseWriter, bundle_file_name
from forensics.case.diff import diff_case
from forensics.errors import BundleError
from tests.support.case_bundles import T0, pod_record
from tui.cli import main

SECRET = "s3cret-value-never-shown"


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _proc(pid: int, exe: str, cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "process",
        "pid": pid,
        "ppid": 1,
        "exe": exe,
        "cmdline": cmd,
        "environ": env,
        "start_ns": T0 + pid * 1_000_000,
    }


def _sock(
    proto: str, state: str, laddr: str, lport: int, raddr: str, rport: int, inode: int
) -> dict[str, Any]:
    return {
        "kind": "socket",
        "family": "inet",
        "proto": proto,
        "state": state,
        "local_addr": laddr,
        "local_port": lport,
        "remote_addr": raddr,
        "remote_port": rport,
        "inode": inode,
    }


def _fs(path: str, sha: str, mode: str = "0644") -> dict[str, Any]:
    return {
        "kind": "fs_entry",
        "path": path,
        "type": "file",
        "size": 10,
        "mode": mode,
        "changed": True,
        "sha256": sha,
        "mtime_ns": T0,
    }


def replica(i: int, *, staged: bool = False, conf: str = "aa") -> dict[str, list[dict[str, Any]]]:
    """One replica's records: a server on :8080, a worker connected to it, one
    accepted connection (its ephemeral port differs per replica), a log that
    differs everywhere. ``staged``: a dropped binary run from /tmp, a listener on
    :4444, an outbound connection, LD_PRELOAD and a secret in its environment."""
    env = {"PATH": "/bin", "API_TOKEN": "<redacted>"}
    procs = [
        _proc(100 + i, "/app/server", ["/app/server"], env),
        _proc(200 + i, "/app/server", ["worker"], env),
    ]
    socks = [
        _sock("tcp", "LISTEN", "0.0.0.0", 8080, "0.0.0.0", 0, 1),
        _sock("tcp", "ESTABLISHED", "127.0.0.1", 8080, "127.0.0.1", 40000 + i, 2),
        _sock("tcp", "ESTABLISHED", "127.0.0.1", 40000 + i, "127.0.0.1", 8080, 3),
    ]
    fs = [_fs("/var/log/app.log", f"{i:02d}" * 32), _fs("/etc/app.conf", conf * 32)]
    binaries: list[dict[str, Any]] = []
    if staged:
        procs.append(
            _proc(
                300,
                "/tmp/.x (deleted)",
                ["/tmp/.x", "implant"],
                {**env, "LD_PRELOAD": "/tmp/.libhook.so", "DB_PASSWORD": SECRET},
            )
        )
        binaries.append(
            {
                "kind": "binary",
                "pid": 300,
                "exe": "/tmp/.x (deleted)",
                "sha256": "e7" * 32,
                "reason": "deleted",
            }
        )
        socks += [
            _sock("tcp", "LISTEN", "0.0.0.0", 4444, "0.0.0.0", 0, 4),
            {
                **_sock("tcp", "SYN_SENT", "10.0.0.5", 51000, "203.0.113.7", 443, 5),
                "owners": [{"pid": 300, "fd": 5, "name": ".x"}],
            },
        ]
        fs.append(_fs("/tmp/.y", "f0" * 32, mode="0755"))
    return {"processes": procs, "network": socks, "filesystem": fs, "binaries": binaries}


def _bundle(path: Path, pod: str, recs: dict[str, list[dict[str, Any]]]) -> tuple[str, int]:
    target = {"uri": f"k8s://prod/{pod}/app", "runtime": "k8s", "started_ns": T0}
    with path.open("wb") as raw:
        w = BundleWriter(raw)
        w.add_bytes("artifacts/target.json", json.dumps(target).encode() + b"\n")
        for name, rows in recs.items():
            w.add_bytes(f"artifacts/{name}.jsonl", _jsonl(rows))
        sha, _ = w.finish({"case": "IR-1", "complete": True, "target": target})
        return sha, w.file_bytes


def make_case(
    d: Path, replicas: dict[str, dict[str, list[dict[str, Any]]]], *, workload: bool = True
) -> Path:
    w = CaseWriter.create(
        d, case_id="IR-1", examiner="alice", request={"target": "k8s://prod -l app=web"}
    )
    pods = [
        pod_record("prod", p) if workload else pod_record("prod", p, owners=[]) for p in replicas
    ]
    w.resolved(pods, at_ns=T0)
    for pod, recs in replicas.items():
        file = bundle_file_name("prod", pod, "app")
        w.add_bundle("prod", pod, "app", file=file, uri=f"k8s://prod/{pod}/app")
        w.started("prod", pod, "app")
        sha, size = _bundle(d / file, pod, recs)
        w.finished("prod", pod, "app", status="complete", file=file, manifest_sha256=sha, size=size)
    w.seal()
    return d


def test_the_staged_replica_ranks_first_with_what_only_it_has(tmp_path: Path) -> None:
    d = make_case(
        tmp_path / "c",
        {
            "web-a": replica(1),
            "web-b": replica(2, staged=True),
            "web-c": replica(3),
            "web-d": replica(4),
        },
    )
    result = diff_case(d)
    (g,) = result.groups
    assert g.name == "Deployment/web:app" and len(g.labels) == 4
    assert g.ranking[0][0] == "prod/web-b/app" and g.ranking[0][1] > 0
    assert all(score == 0 for _lab, score in g.ranking[1:])
    found = {(x.kind, x.key, x.change): x for x in g.differences}
    assert set(found) == {
        ("executable", "/tmp/.x", "only"),
        ("executable", "/tmp/.y", "only"),
        ("process", "/tmp/.x  /tmp/.x implant", "only"),
        ("listener", "tcp 0.0.0.0:4444", "only"),
        ("outbound", "tcp 203.0.113.7:443", "only"),
        ("file", "/tmp/.y", "only"),
        ("env", "LD_PRELOAD", "only"),
        ("env", "DB_PASSWORD", "only"),
    }
    exe = found[("executable", "/tmp/.x", "only")]
    assert exe.bundles == ["prod/web-b/app"] and exe.of == 4
    assert exe.values == {"prod/web-b/app": ["sha256:" + "e7" * 32]}
    assert exe.refs == {"prod/web-b/app": ["artifacts/binaries.jsonl:1"]}
    assert found[("outbound", "tcp 203.0.113.7:443", "only")].refs == {
        "prod/web-b/app": ["artifacts/network.jsonl:5"]
    }
    # ranked by weight: executables before listeners before env
    kinds = [x.kind for x in g.differences]
    assert kinds.index("executable") < kinds.index("listener") < kinds.index("env")
    # the log differs in every replica: counted as noise, not listed
    assert g.varying == 1
    doc = json.dumps(result.to_dict())
    assert SECRET not in doc and "/tmp/.libhook.so" not in doc  # values never, only hashes


def test_identical_replicas_have_no_differences(tmp_path: Path) -> None:
    d = make_case(tmp_path / "c", {f"web-{i}": replica(i) for i in range(3)})
    (g,) = diff_case(d).groups
    assert g.differences == [] and all(s == 0 for s in g.scores.values())
    assert g.varying == 1  # the log


def test_a_changed_config_in_one_and_a_missing_one(tmp_path: Path) -> None:
    reps = {"web-a": replica(1), "web-b": replica(2, conf="bb"), "web-c": replica(3)}
    reps["web-c"]["network"] = [
        s
        for s in reps["web-c"]["network"]
        if s["local_port"] != 40003 and s["remote_port"] != 40003
    ]
    d = make_case(tmp_path / "c", reps)
    (g,) = diff_case(d).groups
    found = {(x.kind, x.key): x for x in g.differences}
    conf = found[("file", "/etc/app.conf")]
    assert conf.change == "differs" and conf.bundles == ["prod/web-b/app"]
    assert conf.usual == ["sha256:" + "aa" * 32] and conf.values["prod/web-b/app"] == [
        "sha256:" + "bb" * 32
    ]
    gone = found[("outbound", "tcp 127.0.0.1:8080")]
    assert gone.change == "missing" and gone.bundles == ["prod/web-c/app"]
    assert set(gone.refs) == {"prod/web-a/app", "prod/web-b/app"}  # where the others have it
    assert g.ranking[0][0] == "prod/web-b/app"  # having something different outweighs lacking


def test_case_diff_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = make_case(
        tmp_path / "c", {"web-a": replica(1), "web-b": replica(2, staged=True), "web-c": replica(3)}
    )
    assert main(["case", "diff", str(d)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    ranking = [x for x in lines if x.strip().endswith("differences)")]
    assert "prod/web-b/app" in ranking[0] and "0.00" in ranking[1]
    assert "executable /tmp/.x: only in 1 of 3" in out and "> prod/web-b/app artifacts/" in out
    assert SECRET not in out
    assert main(["case", "diff", str(d), "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "exuvia-case-diff"
    assert doc["groups"][0]["ranking"][0]["bundle"] == "prod/web-b/app"
    # no workload: nothing to compare, said so
    bare = make_case(tmp_path / "bare", {"a": replica(1), "b": replica(2)}, workload=False)
    assert main(["case", "diff", str(bare)]) == 0
    out = capsys.readouterr().out
    assert "nothing to compare" in out and "prod/a/app, prod/b/app" in out


def test_case_diff_of_a_bad_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["case", "diff", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("exuvia: error: cannot read") and err.count("\n") == 1
    (tmp_path / "case.json").write_text("{not json")
    assert main(["case", "diff", str(tmp_path)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    with pytest.raises(BundleError):
        diff_case(tmp_path)


def test_per_replica_addresses_and_arguments_are_not_differences(tmp_path: Path) -> None:
    """In a cluster each pod listens on its own IP, its workers may carry its name
    and replicas reach different backends of one service: every replica has its
    own value of the same thing, so none is odd in it. The staged one still is."""
    reps = {}
    for i, pod in enumerate(("web-a", "web-b", "web-c", "web-d")):
        r = replica(i, staged=pod == "web-c")
        r["network"] += [
            _sock("tcp", "LISTEN", f"10.244.0.{i}", 9090, "0.0.0.0", 0, 10),
            _sock("tcp", "ESTABLISHED", f"10.244.0.{i}", 50000, f"10.96.7.{i}", 5432, 11),
        ]
        r["processes"].append(_proc(400 + i, "/app/server", ["sidecar", f"--pod={pod}"], {}))
        reps[pod] = r
    (g,) = diff_case(make_case(tmp_path / "c", reps)).groups
    assert g.ranking[0][0] == "prod/web-c/app"
    assert all(score == 0 for _lab, score in g.ranking[1:]), g.ranking
    keys = {(d.kind, d.key) for d in g.differences}
    assert not any(":9090" in k or ":5432" in k or "--pod=" in k for _kind, k in keys)
    assert ("listener", "tcp 0.0.0.0:4444") in keys  # the staged listener is kept
    assert g.varying == 1 + 3  # the log, and the listener, the backend, the sidecar
