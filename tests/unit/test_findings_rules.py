"""The findings rules' edge cases, on facts built by hand.

Every rule also fires on a real staged target in tests/integration/test_findings.py
(and none fires on the clean targets there); these tests pin down the cases a
lab does not stage: aliases, loopback, grace periods, inherited variables,
the capture's own agent, caps on the number of findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forensics.findings.engine import analyze_facts
from forensics.findings.facts import Facts, LogHit, Rec
from forensics.findings.rules import MAX_PER_RULE, all_rules, run_rules

NS = 1_000_000_000
T0 = 1_800_000_000 * NS


def proc(pid: int, line: int, **kw: Any) -> Rec:
    data: dict[str, Any] = {"kind": "process", "pid": pid, "nspid": pid - 99, "name": "app",
                            "cmdline": ["/app/server"], "exe": "/app/server", "start_ns": T0,
                            "uid": {"real": 0, "effective": 0}, "environ": {},
                            "fds": []}  # fmt: skip
    data.update(kw)
    return Rec("artifacts/processes.jsonl", line, data)


def sock(line: int, **kw: Any) -> Rec:
    data: dict[str, Any] = {"kind": "socket", "family": "inet", "proto": "tcp", "inode": line}
    data.update(kw)
    return Rec("artifacts/network.jsonl", line, data)


def facts(*procs: Rec, sockets: list[Rec] | None = None, **kw: Any) -> Facts:
    f = Facts(bundle="x.exv", target={"pid": 100}, processes=list(procs), sockets=sockets or [],
              **kw)  # fmt: skip
    return f


def rules_fired(f: Facts) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for finding in run_rules(f):
        out.setdefault(finding.rule, []).append(finding)
    return out


def test_every_rule_is_documented_and_unique() -> None:
    ids = [r.id for _fam, r in all_rules()]
    assert len(ids) == len(set(ids)) and len(ids) >= 17
    doc = (Path(__file__).parents[2] / "docs" / "findings.md").read_text()
    for family, rule in all_rules():
        assert f"`{rule.id}`" in doc, f"docs/findings.md does not describe {rule.id}"
        assert rule.id.split(".")[0] in family or family.startswith(rule.id.split(".")[0])
        assert rule.caveats, f"{rule.id} says nothing about false positives"


def test_a_quiet_container_has_no_findings() -> None:
    f = facts(proc(100, 1), sockets=[sock(1, state="LISTEN", local_addr="0.0.0.0",
                                         local_port=80, owners=[{"pid": 100}])])  # fmt: skip
    assert analyze_facts(f).findings == []


def test_symlink_aliases_and_busybox_applets_are_not_disguises() -> None:
    f = facts(
        proc(100, 1),
        proc(101, 2, cmdline=["python3", "x.py"], exe="/usr/bin/python3.11"),
        proc(102, 3, cmdline=["/bin/sh", "-c", "x"], exe="/usr/bin/busybox"),
        proc(103, 4, cmdline=["sh"], exe="/usr/bin/busybox"),
        proc(104, 5, cmdline=["worker", "--mode=worker"], exe="/app/server"),
        proc(105, 6, cmdline=["nginx: worker process"], exe="/usr/sbin/nginx"),
    )
    f.symlinks = {"/bin": "usr/bin", "/usr/bin/python3": "python3.11", "/usr/bin/sh": "busybox"}
    f.executables = {"python3.11": ["/usr/bin/python3.11"], "busybox": ["/usr/bin/busybox"],
                     "nginx": ["/usr/sbin/nginx"]}  # fmt: skip
    assert "cmdline.claims-other-program" not in rules_fired(f)
    # but a bare name of another program of the image is a disguise
    f.processes.append(proc(106, 7, cmdline=["nginx"], exe="/tmp/miner"))
    (hit,) = rules_fired(f)["cmdline.claims-other-program"]
    assert hit.attrs["claimed"] == "/usr/sbin/nginx" and hit.attrs["pid"] == 106


def test_kernel_threads_and_the_capture_agent_are_left_out() -> None:
    f = facts(
        proc(100, 1),
        proc(2, 2, name="kworker/0:1", cmdline=[], exe=None, kernel_thread=True),
        proc(150, 3, name="python3", cmdline=["/usr/bin/python3", "-m", "collectors.agent"],
             exe="/usr/local/bin/python3.11", cap_eff_names=["CAP_SYS_PTRACE"]),
    )  # fmt: skip
    f.target["runtime_facts"] = {"agent": {"pid": 150, "container_processes": [150]}}
    assert rules_fired(f) == {}


def test_listeners_of_the_main_process_or_at_start_up_are_expected() -> None:
    listen = {"state": "LISTEN", "local_addr": "0.0.0.0", "remote_addr": "0.0.0.0"}
    f = facts(
        proc(100, 1),
        proc(101, 2, start_ns=T0 + NS // 2),  # a worker started by a supervisor at once
        proc(102, 3, start_ns=T0 + 30 * NS),
        sockets=[
            sock(1, local_port=80, owners=[{"pid": 100}, {"pid": 102}], **listen),  # inherited
            sock(2, local_port=81, owners=[{"pid": 101}], **listen),
            sock(3, local_port=4444, owners=[{"pid": 102}], **listen),
            sock(4, proto="udp", state="UNCONN", local_port=40000, owners=[{"pid": 102}]),
            sock(5, local_port=9999, owners=[], **listen),  # a sidecar's: no owner here
        ],
    )
    (late,) = rules_fired(f)["net.late-listener"]
    assert late.attrs["local_port"] == 4444 and late.attrs["started_after_s"] == 30.0


def test_outbound_leaves_out_loopback_and_accepted_connections() -> None:
    owners = [{"pid": 100}]
    f = facts(proc(100, 1), sockets=[
        sock(1, state="LISTEN", local_addr="0.0.0.0", local_port=8080, owners=owners),
        sock(2, state="ESTABLISHED", local_port=8080, remote_addr="198.51.100.9",
             remote_port=51000, owners=owners),  # a client of ours
        sock(3, state="ESTABLISHED", local_port=40000, remote_addr="127.0.0.1",
             remote_port=8080, owners=owners),
        sock(4, state="ESTABLISHED", family="inet6", proto="tcp6", local_port=40001,
             remote_addr="::ffff:127.0.0.1", remote_port=8080, owners=owners),
        sock(5, state="TIME_WAIT", local_port=40002, remote_addr="192.0.2.1", remote_port=80,
             owners=owners),
        sock(6, state="ESTABLISHED", local_port=40003, remote_addr="192.0.2.1", remote_port=5432,
             owners=owners),
    ])  # fmt: skip
    (out,) = rules_fired(f)["net.outbound"]
    assert out.attrs["remote_port"] == 5432 and out.attrs["pids"] == [100]


def test_preload_variables_inherited_or_not() -> None:
    f = facts(
        proc(100, 1, environ={"LD_LIBRARY_PATH": "/opt/lib", "JAVA_TOOL_OPTIONS": "-Xmx1g"}),
        proc(101, 2, environ=["LD_LIBRARY_PATH=/opt/lib", "NODE_OPTIONS=--require /tmp/h.js"]),
        proc(102, 3, environ={"LD_LIBRARY_PATH": "/tmp/x:/opt/lib", "LD_PRELOAD": "/x.so"}),
    )
    hits = {(h.attrs["pid"], h.attrs["variable"]): h for h in rules_fired(f)["env.preload"]}
    assert set(hits) == {(101, "NODE_OPTIONS"), (102, "LD_LIBRARY_PATH"), (102, "LD_PRELOAD")}
    assert hits[(102, "LD_PRELOAD")].severity.label == "high"
    assert hits[(101, "NODE_OPTIONS")].severity.label == "medium"


def test_token_held_by_the_main_process_is_its_own_business() -> None:
    token = "/var/run/secrets/kubernetes.io/serviceaccount/..2026_01_01/token"
    f = facts(
        proc(100, 1, fds=[{"fd": 5, "target": token}]),
        proc(101, 2, cmdline=["cat", "/run/secrets/kubernetes.io/serviceaccount/token"]),
    )
    (hit,) = rules_fired(f)["secrets.sa-token"]
    assert hit.attrs["pid"] == 101 and hit.severity.label == "medium"  # seen on a command line


def test_root_and_capabilities() -> None:
    uid = {"real": 1000, "effective": 1000}
    f = facts(
        proc(100, 1, uid=uid, cap_eff_names=[]),
        proc(101, 2, uid={"real": 1000, "effective": 0}, cap_eff_names=["CAP_CHOWN"]),
        proc(102, 3, uid=uid, cap_eff_names=["CAP_SYS_ADMIN"]),
        proc(103, 4, uid=uid, cap_eff_names=["CAP_SYS_ADMIN"], tracer_pid=777),
    )
    fired = rules_fired(f)
    (root,) = fired["priv.root-in-nonroot"]
    assert root.attrs["pid"] == 101
    groups = {tuple(h.attrs["capabilities"]): h.attrs["pids"] for h in fired["priv.capabilities"]}
    assert groups == {("CAP_CHOWN",): [101], ("CAP_SYS_ADMIN",): [102, 103]}
    (traced,) = fired["priv.traced"]
    assert traced.attrs == {"pid": 103, "tracer_pid": 777, "tracer_inside": False}
    assert "outside the container" in traced.title


def test_runtime_files_and_dirs_do_not_count_as_changed() -> None:
    def fs(path: str, ftype: str = "file", mode: str = "0644") -> Rec:
        return Rec("artifacts/filesystem.jsonl", 1, {"path": path, "type": ftype, "mode": mode,
                                                       "changed": True})  # fmt: skip

    f = facts(proc(100, 1, exe="/srv/app/bin/server"))
    f.upper_known = True
    f.changed = [fs("/etc/hosts"), fs("/etc/resolv.conf"), fs("/etc", "dir"), fs("/var/log/a.log"),
                 fs("/tmp/x"), fs("/srv/app/bin/plugin.so", mode="0755"),
                 fs("/usr/lib/libc.so.6", ftype="whiteout")]  # fmt: skip
    hits = {h.attrs["path"]: h.severity.label for h in rules_fired(f)["files.changed-system"]}
    assert hits == {"/srv/app/bin/plugin.so": "high", "/usr/lib/libc.so.6": "high"}


def test_log_patterns_group_per_pattern() -> None:
    f = facts(proc(100, 1))
    f.log_hits = [LogHit("logs/runtime/00-stdio.log", n, "scanner", f"GET / sqlmap/1.{n}")
                  for n in range(1, 30)]  # fmt: skip
    (hit,) = rules_fired(f)["logs.attack-tooling"]
    assert hit.attrs["lines"] == 29 and len(hit.evidence) == 20 and hit.severity.label == "medium"


def test_past_the_cap_the_rest_are_counted_not_dropped() -> None:
    many = [proc(100 + i, i + 1, exe="/tmp/x (deleted)", exe_deleted=True)
            for i in range(MAX_PER_RULE + 7)]  # fmt: skip
    found = [f for f in run_rules(facts(*many)) if f.rule == "exe.deleted"]
    assert len(found) == MAX_PER_RULE + 1
    assert found[-1].attrs == {"count": 7} and "7 more findings" in found[-1].title
