"""The target's mounts, from /proc/<pid>/mountinfo (paths as the target sees them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forensics.textsafe import bytes_field

#: filesystems whose contents are kernel state, not files: never walked
PSEUDO_FS = frozenset(
    {
        "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "mqueue", "tracefs",
        "debugfs", "securityfs", "bpf", "fusectl", "configfs", "pstore", "hugetlbfs",
        "binfmt_misc", "autofs", "efivarfs", "nsfs", "rpc_pipefs", "selinuxfs",
    }
)  # fmt: skip
#: top-level directories never walked whatever is mounted there
PSEUDO_DIRS = (b"/proc", b"/sys", b"/dev")


def _unescape(raw: bytes) -> bytes:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    if b"\\" not in raw:
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and i + 3 < len(raw) + 0 and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Mount:
    mount_id: int
    parent_id: int
    dev: str
    root: bytes
    mount_point: bytes
    options: str
    optional: list[str]
    fstype: str
    source: bytes
    super_options: str
    overlay: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "mount_id": self.mount_id,
            "parent_id": self.parent_id,
            "dev": self.dev,
            "options": self.options,
            "optional": self.optional,
            "fstype": self.fstype,
            "super_options": self.super_options,
            "pseudo": self.fstype in PSEUDO_FS,
        }
        data.update(bytes_field("mount_point", self.mount_point))
        data.update(bytes_field("root", self.root))
        data.update(bytes_field("source", self.source))
        if self.overlay:
            data["overlay"] = self.overlay
        return data


def parse_overlay_options(super_options: str) -> dict[str, Any]:
    """lowerdir (list, top first), upperdir, workdir from overlay super options."""
    out: dict[str, Any] = {}
    lowers: list[str] = []
    # options are comma separated; overlay escapes commas in paths with '\,'
    parts: list[str] = []
    cur = ""
    esc = False
    for ch in super_options:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for part in parts:
        key, _, value = part.partition("=")
        if key == "lowerdir":
            lowers.extend(v for v in value.split(":") if v)
        elif key in ("lowerdir+", "datadir+"):
            lowers.append(value)
        elif key in ("upperdir", "workdir"):
            out[key] = value
    if lowers:
        out["lowerdir"] = lowers
    return out


def parse_mountinfo(data: bytes) -> list[Mount]:
    mounts: list[Mount] = []
    for line in data.splitlines():
        fields = line.split(b" ")
        try:
            sep = fields.index(b"-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 3:
            continue
        try:
            mount_id, parent_id = int(fields[0]), int(fields[1])
        except ValueError:
            continue
        fstype = fields[sep + 1].decode("utf-8", "replace")
        super_opts = _unescape(b" ".join(fields[sep + 3 :])).decode("utf-8", "replace")
        mounts.append(
            Mount(
                mount_id=mount_id,
                parent_id=parent_id,
                dev=fields[2].decode("ascii", "replace"),
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                options=fields[5].decode("utf-8", "replace"),
                optional=[f.decode("utf-8", "replace") for f in fields[6:sep]],
                fstype=fstype,
                source=_unescape(fields[sep + 2]),
                super_options=super_opts,
                overlay=parse_overlay_options(super_opts) if fstype == "overlay" else {},
            )
        )
    return mounts


def root_mount(mounts: list[Mount]) -> Mount | None:
    """The mount at '/', the last one wins when '/' is mounted over."""
    found = None
    for m in mounts:
        if m.mount_point == b"/":
            found = m
    return found


def pseudo_mount_points(mounts: list[Mount]) -> set[bytes]:
    return {m.mount_point for m in mounts if m.fstype in PSEUDO_FS}
