"""Capture real shell-less containers end to end, through the real command line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import zstandard

from collectors.capture import CaptureOptions, capture
from collectors.targets import resolve
from forensics.bundle import verify_bundle
from tests.support.bundles import artifacts, member, member_names
from tui.demo.launch import LabContainer
from tui.demo.rootfs import AFTER_START_FILE, APP_LOG, CHANGED_CONFIG, FAKE_SECRETS, TARGET_PATH

NOATIME = os.O_RDONLY | getattr(os, "O_NOATIME", 0) | os.O_NOFOLLOW


def exuvia(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, check=False
    )


def sha_noatime(path: str, flags: int = NOATIME) -> str:
    fd = os.open(path, flags)
    try:
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest()
    finally:
        os.close(fd)


def snapshot(root: str) -> dict[str, tuple[int, int, str | None]]:
    """path -> (atime_ns, mtime_ns, sha256) for every entry, itself touching no atime
    (directories and files opened with O_NOATIME; some mounts, like a strictatime
    tmpfs on /run, would otherwise record every listing)."""
    out: dict[str, tuple[int, int, str | None]] = {}
    stack = ["/"]
    while stack:
        rel = stack.pop()
        path = root + rel
        st = os.lstat(path)
        out[rel] = (st.st_atime_ns, st.st_mtime_ns, None)
        if rel in ("/proc", "/sys", "/dev"):
            continue
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOATIME", 0))
        try:
            names = os.listdir(fd)
        finally:
            os.close(fd)
        for name in names:
            child = rel.rstrip("/") + "/" + name
            cst = os.lstat(root + child)
            if stat.S_ISDIR(cst.st_mode):
                stack.append(child)
            elif stat.S_ISREG(cst.st_mode):
                out[child] = (cst.st_atime_ns, cst.st_mtime_ns, sha_noatime(root + child))
            else:
                out[child] = (cst.st_atime_ns, cst.st_mtime_ns, None)
    return out


def by_path(recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in recs if "path" in r}


RUNTIMES = ["runc_target", "podman_target", "containerd_target", "docker_target"]


@pytest.fixture(params=RUNTIMES)
def target(request: pytest.FixtureRequest) -> LabContainer:
    box: LabContainer = request.getfixturevalue(request.param)
    return box


def test_capture_finds_the_staged_incident_and_leaves_the_target_untouched(
    target: LabContainer, tmp_path: Path
) -> None:
    root = f"/proc/{target.pid}/root"
    before = snapshot(root)
    out = tmp_path / "t.exv"
    res = exuvia("capture", target.uri, "-o", str(out), "--case", "IR-1", "--examiner", "tester")
    assert res.returncode == 0, res.stderr
    assert "manifest sha256:" in res.stdout
    after = snapshot(root)

    # -- untouched: same atimes and hashes for everything the target did not write
    for path, (atime, mtime, sha) in before.items():
        if path not in after or after[path][1] != mtime:
            continue  # the target itself wrote it meanwhile (its log)
        assert after[path][0] == atime, f"capture changed the atime of {path}"
        assert after[path][2] == sha, f"capture changed {path}"

    # -- verify
    v = exuvia("verify", str(out))
    assert v.returncode == 0, v.stdout
    assert v.stdout.startswith("OK")
    info = exuvia("info", str(out))
    assert info.returncode == 0 and "complete" in info.stdout and "IR-1" in info.stdout

    arts = artifacts(out)
    tgt = arts["target"][0]
    assert tgt["pid"] == target.pid and tgt["runtime"] == target.runtime
    assert tgt["container_id"] == target.container_id

    # -- processes
    procs = arts["processes"]
    init = next(p for p in procs if p["pid"] == target.pid)
    assert init["nspid"] == 1 and init["exe"] == TARGET_PATH
    assert any(p["cmdline"][:1] == ["worker"] or p["name"] == "worker" for p in procs)
    implant = next(p for p in procs if p["exe_deleted"] and not p["exe_memfd"])
    assert implant["exe"].startswith("/tmp/.x")
    assert any(p["exe_memfd"] for p in procs)
    for name, secret in FAKE_SECRETS.items():
        assert init["environ"][name] == "<redacted>"
        assert secret.encode() not in member(out, "artifacts/processes.jsonl")
    assert all(p["start_ns"] > 1_600_000_000 * 10**9 for p in procs)

    # -- the deleted implant binary was recovered and is the real executable
    binaries = arts["binaries"]
    rec = next(b for b in binaries if b["pid"] == implant["pid"])
    assert rec["sha256"] == sha_noatime(f"/proc/{implant['pid']}/exe", os.O_RDONLY)
    assert hashlib.sha256(member(out, rec["member"])).hexdigest() == rec["sha256"]

    # -- network
    sockets = [s for s in arts["network"] if s["kind"] == "socket"]
    listen = [s for s in sockets if s["state"] == "LISTEN" and s.get("local_port") == 8080]
    assert listen and any(o["pid"] == target.pid for o in listen[0]["owners"])
    assert any(i["name"] == "lo" for i in arts["network"] if i["kind"] == "interface")

    # -- filesystem
    fs = by_path(arts["filesystem"])
    assert "/bin/sh" not in fs
    app = fs[TARGET_PATH]
    assert app["type"] == "file" and app["changed"] is False and "member" not in app
    assert app["sha256"] == sha_noatime(f"{root}{TARGET_PATH}")
    conf = fs[CHANGED_CONFIG]
    assert conf["changed"] is True and conf["member"] == "files" + CHANGED_CONFIG
    assert hashlib.sha256(member(out, conf["member"])).hexdigest() == conf["sha256"]
    assert fs[AFTER_START_FILE]["changed"] is True
    assert fs["/proc"]["type"] == "dir" and not any(p.startswith("/proc/") for p in fs)
    for rec in fs.values():
        assert rec["mtime_ns"] % 1_000_000_000 or rec["mtime_ns"] > 0  # ns integers
    mounts = arts["mounts"]
    rootm = next(m for m in mounts if m["mount_point"] == "/")
    assert rootm["fstype"] == "overlay" and rootm["overlay"]["upperdir"]
    assert any(m["fstype"] == "proc" for m in mounts)

    # -- logs: the runtime's stdout/stderr and the log inside the target
    logs = arts["logs"]
    runtime_logs = [lg for lg in logs if lg["origin"] == "runtime"]
    assert runtime_logs, "the runtime's log of the container was not captured"
    assert b"ready" in member(out, runtime_logs[0]["member"])
    target_logs = [lg for lg in logs if lg["origin"] == "target"]
    assert any(lg["path"] == APP_LOG for lg in target_logs)

    # -- custody: sidecar has the seal naming the manifest hash that verify prints
    custody = Path(str(out) + ".custody.jsonl").read_text()
    assert "bundle.sealed" in custody and v.stdout.split("manifest sha256: ")[1][:64] in custody


def test_copy_policies_and_no_redact(runc_target: LabContainer, tmp_path: Path) -> None:
    target = runc_target
    res = exuvia("capture", target.uri, "-o", str(tmp_path / "none.exv"), "--files", "none")
    assert res.returncode == 0, res.stderr
    names = member_names(tmp_path / "none.exv")
    # only logs are copied under --files none
    assert all(n == "files" + APP_LOG for n in names if n.startswith("files/"))

    res = exuvia(
        "capture", target.uri, "-o", str(tmp_path / "all.exv"), "--files", "all", "--no-redact"
    )
    assert res.returncode == 0, res.stderr
    names = set(member_names(tmp_path / "all.exv"))
    assert "files" + TARGET_PATH in names and "files/etc/os-release" in names
    procs = artifacts(tmp_path / "all.exv")["processes"]
    init = next(p for p in procs if p["pid"] == target.pid)
    assert init["environ"]["API_TOKEN"] == FAKE_SECRETS["API_TOKEN"]

    res = exuvia(
        "capture", target.uri, "-o", str(tmp_path / "cap.exv"), "--files", "all",
        "--max-file-size", "1K",
    )  # fmt: skip
    assert res.returncode == 0
    fs = by_path(artifacts(tmp_path / "cap.exv")["filesystem"])
    assert "member" not in fs[TARGET_PATH] and fs[TARGET_PATH]["sha256"]
    skips = member(tmp_path / "cap.exv", "artifacts/skips.jsonl").decode()
    assert "over --max-file-size" in skips


def test_refuses_to_overwrite_evidence(runc_target: LabContainer, tmp_path: Path) -> None:
    out = tmp_path / "x.exv"
    out.write_bytes(b"earlier evidence")
    res = exuvia("capture", runc_target.uri, "-o", str(out))
    assert res.returncode == 2 and "refusing to overwrite" in res.stderr
    assert out.read_bytes() == b"earlier evidence"


def test_hostile_entries_are_recorded_never_followed(lab: Any, tmp_path: Path) -> None:
    """FIFOs are not opened, symlinks (absolute, relative, loops) are not followed."""
    canary = tmp_path / "canary-host-secret"
    canary.write_text("HOST-CANARY-7f3a")
    with lab.runc() as box:
        root = f"/proc/{box.pid}/root"
        os.mkfifo(f"{root}/tmp/fifo")
        os.symlink(str(canary), f"{root}/tmp/abs-escape")
        os.symlink("../../../../../../" + str(canary).lstrip("/"), f"{root}/tmp/rel-escape")
        os.symlink("loop-b", f"{root}/tmp/loop-a")
        os.symlink("loop-a", f"{root}/tmp/loop-b")
        os.symlink(str(tmp_path), f"{root}/tmp/dir-escape")
        out = tmp_path / "h.exv"
        res = exuvia("capture", box.uri, "-o", str(out), "--files", "all")
        assert res.returncode == 0, res.stderr
    assert verify_bundle(out).ok
    fs = by_path(artifacts(out)["filesystem"])
    assert fs["/tmp/fifo"]["type"] == "fifo" and "sha256" not in fs["/tmp/fifo"]
    assert fs["/tmp/abs-escape"]["type"] == "symlink"
    assert fs["/tmp/abs-escape"]["link_target"] == str(canary)
    assert fs["/tmp/loop-a"]["link_target"] == "loop-b"
    assert not any(p.startswith("/tmp/dir-escape/") for p in fs)
    raw = zstandard.ZstdDecompressor().stream_reader(out.open("rb"), read_across_frames=True).read()
    assert b"HOST-CANARY-7f3a" not in raw


def test_interrupted_capture_is_sealed_incomplete_and_verifies(
    runc_target: LabContainer, tmp_path: Path
) -> None:
    def progress(phase: str, _stats: object) -> None:
        if phase == "filesystem":
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "i.exv"
    res = capture(
        resolve(runc_target.uri),
        CaptureOptions(output=out, examiner="t", argv=["test"]),
        progress,
    )
    assert not res.complete and "SIGINT" in res.incomplete_reason
    assert not out.exists()
    assert res.path == tmp_path / "i.exv.incomplete"
    report = verify_bundle(res.path)
    assert report.ok and not report.complete
    assert "artifacts/processes/000001.jsonl" in member_names(res.path)  # records in chunks
    v = exuvia("verify", str(res.path))
    assert v.returncode == 0 and "INCOMPLETE" in v.stdout


def test_full_output_disk_is_one_line_and_keeps_the_partial(
    runc_target: LabContainer, tmp_path: Path
) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mnt)], check=True)
    try:
        res = exuvia("capture", runc_target.uri, "-o", str(mnt / "f.exv"), "--files", "all",
                     "--compress", "none")  # fmt: skip
        assert res.returncode == 2
        assert "Traceback" not in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert "No space left" in res.stderr
        assert not (mnt / "f.exv").exists()
        partial = mnt / "f.exv.partial"
        assert partial.exists()
        report = verify_bundle(partial)
        assert not report.ok and not report.has_manifest
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_gone_target_is_a_clear_error(lab: Any, tmp_path: Path) -> None:
    box = lab.runc()
    uri = box.uri
    box.stop()
    res = exuvia("capture", uri, "-o", str(tmp_path / "g.exv"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_chrooted_pid_target_is_captured_within_its_own_root(
    target_rootfs: Path, tmp_path: Path
) -> None:
    """pid:// of a process chrooted inside its mount namespace: its root, not the
    namespace's, is what gets walked (the read-only view follows the chroot)."""
    wrapper = subprocess.Popen(
        ["unshare", "--mount", "--pid", "--fork", "--kill-child", f"--root={target_rootfs}",
         TARGET_PATH, "--mode=sleeper"],
    )  # fmt: skip
    try:
        kids: list[str] = []
        for _ in range(100):
            kids = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children").read_text().split()
            if kids and os.readlink(f"/proc/{kids[0]}/root") != "/":
                break
            time.sleep(0.05)
        pid = int(kids[0])
        out = tmp_path / "c.exv"
        res = exuvia("capture", f"pid://{pid}", "-o", str(out), "--files", "none")
        assert res.returncode == 0, res.stderr
    finally:
        wrapper.kill()
        wrapper.wait()
    fs = by_path(artifacts(out)["filesystem"])
    assert TARGET_PATH in fs and "/etc/app/app.conf" in fs
    assert "/usr" not in fs and len(fs) < 100


def test_target_exiting_mid_capture_gives_a_sealed_incomplete_bundle(
    lab: Any, tmp_path: Path
) -> None:
    box = lab.runc()
    killed = []

    def progress(phase: str, _stats: object) -> None:
        if phase == "network" and not killed:
            os.kill(box.pid, signal.SIGKILL)  # the whole PID namespace goes with it
            for _ in range(100):
                if not os.path.exists(f"/proc/{box.pid}"):
                    break
                time.sleep(0.02)
            killed.append(True)

    try:
        res = capture(
            resolve(box.uri), CaptureOptions(output=tmp_path / "gone.exv", examiner="t"), progress
        )
    finally:
        box.stop()
    assert killed
    assert not res.complete and "exited" in res.incomplete_reason
    report = verify_bundle(res.path)
    assert report.ok and not report.complete
    arts = artifacts(res.path)
    assert arts["processes"], "what was collected before the exit is kept"
    # the root was held open: the filesystem is still captured after the exit
    fs = by_path(arts["filesystem"])
    assert TARGET_PATH in fs and fs[TARGET_PATH]["sha256"]


def test_not_root_is_one_line_and_leaves_no_file(runc_target: LabContainer, tmp_path: Path) -> None:
    out_dir = Path(tempfile.mkdtemp(prefix="exuvia-nobody-", dir="/tmp"))
    out_dir.chmod(0o777)
    request_cleanup = out_dir  # removed below
    res = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "tui.cli", "capture", f"pid://{runc_target.pid}",
         "-o", str(out_dir / "x.exv")],
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "permission denied" in res.stderr
    assert list(out_dir.iterdir()) == []
    request_cleanup.rmdir()
    # an output directory the user cannot enter is one line too
    res = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "tui.cli", "capture", f"pid://{runc_target.pid}",
         "-o", str(tmp_path / "x.exv")],
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "cannot create" in res.stderr


def test_mounted_secrets_are_hashed_not_copied(lab: Any, tmp_path: Path) -> None:
    with lab.runc() as box:
        root = f"/proc/{box.pid}/root"
        sa = f"{root}/var/run/secrets/kubernetes.io/serviceaccount"
        os.makedirs(sa)
        Path(f"{sa}/token").write_text("eyJhbGciOi.SECRET-TOKEN-VALUE")
        redacted, plain = tmp_path / "r.exv", tmp_path / "p.exv"
        assert exuvia("capture", box.uri, "-o", str(redacted)).returncode == 0
        assert exuvia("capture", box.uri, "-o", str(plain), "--no-redact").returncode == 0
    path = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    rec = by_path(artifacts(redacted)["filesystem"])[path]
    assert rec["secret"] is True and "member" not in rec
    assert rec["sha256"] == hashlib.sha256(b"eyJhbGciOi.SECRET-TOKEN-VALUE").hexdigest()
    raw = (
        zstandard.ZstdDecompressor()
        .stream_reader(redacted.open("rb"), read_across_frames=True)
        .read()
    )
    assert b"SECRET-TOKEN-VALUE" not in raw
    assert "member" in by_path(artifacts(plain)["filesystem"])[path]


def test_capture_output_json_for_scripts(runc_target: LabContainer, tmp_path: Path) -> None:
    out = tmp_path / "j.exv"
    res = exuvia("capture", runc_target.uri, "-o", str(out), "--output", "json", "--files", "none")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)  # stdout holds the one document, nothing else
    assert doc["format"] == "exuvia-capture-result" and doc["complete"] is True
    assert doc["bundle"] == str(out) and doc["exit_status"] == 0
    assert doc["records"]["processes"] >= 4 and doc["bytes"] == out.stat().st_size
    verify = json.loads(exuvia("verify", str(out), "--output", "json").stdout)
    assert verify["ok"] and verify["manifest_sha256"] == doc["manifest_sha256"]
    assert verify["file_sha256"] == doc["file_sha256"]
