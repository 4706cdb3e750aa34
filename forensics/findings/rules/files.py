"""Files written or deleted since the container started, where the image's own
programs and configuration live."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from forensics.findings.facts import Facts, Rec, exe_path, file_evidence
from forensics.findings.model import Severity, Strength
from forensics.findings.rules import Hit, Rule

FAMILY = "files"

WATCHED = ("/etc", "/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/app", "/boot")
#: written by container runtimes themselves at start (bind-mount targets, markers)
RUNTIME_FILES = (
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/run/.containerenv",
    "/.dockerenv",
)


def entrypoint_dir(facts: Facts) -> str | None:
    """The directory of the container's main executable (e.g. /app, /srv/app)."""
    init = facts.init_process()
    path = exe_path(init) if init is not None else None
    if path is None or not path.startswith("/") or init is None or init.get("exe_memfd"):
        return None
    d = posixpath.dirname(path)
    return d if d not in ("", "/") else None


def _under(path: str, dirs: tuple[str, ...]) -> str | None:
    for d in dirs:
        if path == d or path.startswith(d.rstrip("/") + "/"):
            return d
    return None


def _executable(f: Rec) -> bool:
    try:
        mode = int(str(f.get("mode") or "0"), 8)
    except ValueError:
        return False
    return f.get("type") == "file" and bool(mode & 0o111)


def changed_system(facts: Facts, rule: Rule) -> Iterator[Hit]:
    extra = entrypoint_dir(facts)
    dirs = tuple(rule.params["dirs"]) + ((extra,) if extra else ())
    ignore = set(rule.params["ignore"])
    for f in facts.changed:
        path = f.get("path")
        if not isinstance(path, str) or path in ignore or f.get("type") == "dir":
            continue
        where = _under(path, dirs)
        if where is None:
            continue
        deleted = f.get("type") == "whiteout" or f.get("deleted") is True
        what = "deleted" if deleted else "written"
        severity = Severity.HIGH if deleted or _executable(f) else None
        kind = "executable " if _executable(f) else ""
        ts = f.get("ctime_ns") if not deleted else None
        values = {"path": path, "what": what, "dir": where, "kind": kind}
        ev = (file_evidence(f, f"the entry ({what} since start: overlay upper layer)"),)
        attrs = {"path": path, "deleted": deleted, "sha256": f.get("sha256"),
                 "size": f.get("size"), "member": f.get("member")}  # fmt: skip
        yield Hit(f"path:{path}", values, ev, ts if isinstance(ts, int) else None, attrs,
                  severity)  # fmt: skip


RULES = (
    Rule(
        "files.changed-system",
        Severity.MEDIUM,
        Strength.DERIVED,
        "{kind}file {what} since start under {dir}: {path}",
        "The overlay's upper layer holds what changed since the container started. "
        "Programs, libraries and configuration under /etc, /bin, /sbin, /usr, /lib, /app "
        "and the entrypoint's directory come from the image: a change there at run time "
        "is persistence, tampering or a reconfigured service (a changed executable or a "
        "deletion ranks high).",
        changed_system,
        params={"dirs": WATCHED, "ignore": RUNTIME_FILES},
        caveats="Applications that write their own state under /app or /etc (caches, "
        "generated configuration) show up too. Without a visible upper layer "
        "(not overlayfs, or a Kubernetes capture without node access) nothing is known "
        "to have changed and the rule cannot fire: the report lists that blind spot.",
    ),
)
