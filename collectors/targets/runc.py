"""``runc://ID``: a container run directly by runc (``runc state``).

The runc state root defaults to runc's own default (``/run/runc`` for root).
``runc://ID?root=/run/containerd/runc/default`` or the environment variable
``EXUVIA_RUNC_ROOT`` choose another; when the ID is not under the default
root, the well-known roots of containerd, Docker and CRI-O are tried too.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any
from urllib.parse import parse_qs

from forensics.errors import ExuviaError, TargetError, TargetGone

from .base import LocalContainer, TargetInfo
from .cmd import ToolFailed, parse_time, run_json, run_tool, trim_facts
from .pid import add_fallback_logs, process_start_ns, require_process

# Where other runtimes keep runc state (searched when the default root lacks the ID).
_OTHER_ROOTS = (
    "/run/runc",
    "/run/containerd/runc/*",
    "/run/docker/runtime-runc/*",
    "/run/crun",
)
# Image name annotations runtimes put in a bundle's config.json.
_IMAGE_ANNOTATIONS = (
    "org.opencontainers.image.ref.name",
    "io.kubernetes.cri.image-name",
    "io.kubernetes.cri-o.ImageName",
)
_SPEC_DROP = frozenset({"seccomp"})


def runc_version() -> str | None:
    """``runc --version``'s version ("1.1.5+ds1"), or None."""
    try:
        out = run_tool(["runc", "--version"], timeout=10)
    except ExuviaError:  # the version is optional
        return None
    first = out.splitlines()[0] if out else ""
    return first.split("version", 1)[1].strip() if "version" in first else (first or None)


def split_ref(ref: str) -> tuple[str, str | None]:
    """``ID`` or ``ID?root=DIR`` -> (ID, root or None)."""
    cid, _, query = ref.partition("?")
    root = None
    if query:
        params = parse_qs(query, keep_blank_values=False)
        unknown = set(params) - {"root"}
        if unknown:
            raise TargetError(f"unknown runc:// option {sorted(unknown)[0]!r}; only ?root=DIR")
        root = params.get("root", [None])[-1]
    cid = cid.strip()
    if not cid or "/" in cid:
        raise TargetError(f"bad runc container id {cid!r}")
    return cid, root or os.environ.get("EXUVIA_RUNC_ROOT") or None


def _state(cid: str, root: str | None) -> dict[str, Any]:
    argv = ["runc"] + (["--root", root] if root else []) + ["state", cid]
    data = run_json(argv, timeout=15)
    if not isinstance(data, dict):
        raise TargetError(f"runc state {cid} gave unexpected output")
    return data


def _find_state(cid: str, root: str | None) -> tuple[dict[str, Any], str | None]:
    try:
        return _state(cid, root), root
    except ToolFailed as err:
        if "does not exist" not in err.stderr:
            raise
        if root is not None:
            raise TargetError(f"runc container {cid!r} not found under --root {root}") from err
    for pattern in _OTHER_ROOTS:
        for cand in sorted(glob.glob(pattern)):
            if os.path.isfile(os.path.join(cand, cid, "state.json")):
                return _state(cid, cand), cand
    raise TargetError(f"runc container {cid!r} not found (runc list shows the running ones)")


def _bundle_config(bundle: str | None) -> dict[str, Any]:
    if not bundle:
        return {}
    try:
        with open(os.path.join(bundle, "config.json"), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def info_from_state(
    uri: str, state: dict[str, Any], config: dict[str, Any], version: str | None
) -> TargetInfo:
    """TargetInfo from ``runc state`` JSON and the bundle's config.json (no /proc reads)."""
    annotations: dict[str, Any] = {}
    for src in (config.get("annotations"), state.get("annotations")):
        if isinstance(src, dict):
            annotations.update(src)
    image = next((str(annotations[k]) for k in _IMAGE_ANNOTATIONS if annotations.get(k)), None)
    spec_keep: dict[str, Any] = {
        k: config[k] for k in ("process", "root", "hostname", "mounts") if k in config
    }
    linux = config.get("linux")
    if isinstance(linux, dict):
        spec_keep["linux"] = {k: linux[k] for k in ("namespaces", "cgroupsPath") if k in linux}
    facts: dict[str, Any] = {"state": state}
    if spec_keep:
        facts["config"] = trim_facts(spec_keep, drop=_SPEC_DROP)
    cid = str(state.get("id") or "")
    return TargetInfo(
        uri=uri,
        runtime="runc",
        pid=int(state.get("pid") or 0),
        container_id=cid or None,
        name=cid or None,
        image=image,
        created_ns=parse_time(state.get("created")),
        runtime_version=version,
        status=str(state.get("status") or "") or None,
        runtime_facts=facts,
    )


def resolve_runc(ref: str, uri: str, procfs: str = "/proc") -> TargetInfo:
    """``runc://ID[?root=DIR]``."""
    cid, root = split_ref(ref)
    state, used_root = _find_state(cid, root)
    status = state.get("status")
    if status == "stopped" or not state.get("pid"):
        raise TargetGone(f"runc container {cid!r} is not running (status: {status})")
    info = info_from_state(uri, state, _bundle_config(state.get("bundle")), runc_version())
    if used_root:
        info.runtime_facts["root"] = used_root
    require_process(info.pid, procfs, f"runc container {cid!r}")
    info.started_ns = process_start_ns(info.pid, procfs)
    add_fallback_logs(info, procfs)
    return info


def list_local(procfs: str = "/proc") -> list[LocalContainer]:
    """Running containers under runc's default root and the other runtimes' roots."""
    roots: list[str | None] = [None]
    for pattern in _OTHER_ROOTS[1:]:
        roots.extend(sorted(glob.glob(pattern)))
    out: list[LocalContainer] = []
    seen: set[int] = set()
    for root in roots:
        if root is not None and not os.path.isdir(root):
            continue
        argv = ["runc"] + (["--root", root] if root else []) + ["list", "--format", "json"]
        data = run_json(argv, timeout=15)
        for item in data if isinstance(data, list) else []:
            if not isinstance(item, dict) or item.get("status") != "running":
                continue
            pid = int(item.get("pid") or 0)
            if pid <= 0 or pid in seen:
                continue
            seen.add(pid)
            cid = str(item.get("id") or "")
            info = info_from_state("", item, _bundle_config(item.get("bundle")), None)
            query = f"?root={root}" if root else ""
            out.append(
                LocalContainer(
                    runtime="runc",
                    container_id=cid,
                    name=cid,
                    image=info.image,
                    pid=pid,
                    uri=f"runc://{cid}{query}",
                    status="running",
                    created_ns=parse_time(item.get("created")),
                )
            )
    return out
