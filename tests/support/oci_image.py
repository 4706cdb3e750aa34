"""Write an OCI image layout tar from a root filesystem directory.

The archive (oci-layout, index.json, blobs/sha256/...) holds one manifest, one
image config and one gzip layer. It is importable by ``ctr images import`` and
``podman load`` (and by anything else that reads OCI image layouts). Output is
deterministic: the same rootfs, reference and options give the same bytes.

As a module::

    from tests.support.oci_image import build_oci_archive
    img = build_oci_archive("rootfs/", "localhost/exuvia/target:1", "out.tar",
                            entrypoint=["/app/target"], env=["PATH=/"])

As a script (the command line is stable; other harnesses rely on it)::

    python tests/support/oci_image.py --rootfs DIR --ref NAME:TAG -o OUT.tar \\
        [--entrypoint /app/target [--entrypoint ARG ...]] [--cmd ARG ...] \\
        [--env K=V ...] [--workdir /] [--user UID[:GID]] [--label K=V ...] \\
        [--arch amd64] [--created RFC3339|EPOCH]

``--entrypoint`` and ``--cmd`` may be repeated (one argv element each) or given
once as a JSON array (``--entrypoint '["/pause"]'``).

Only the standard library is used, so the file runs from any Python >= 3.11.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import stat
import sys
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# A fixed timestamp for every file in the layer and for the archive itself:
# 2020-01-01T00:00:00Z, unless SOURCE_DATE_EPOCH says otherwise.
DEFAULT_EPOCH = 1577836800


@dataclass(frozen=True)
class OciImage:
    """What was written."""

    path: str
    ref: str
    manifest_digest: str
    config_digest: str
    layer_digest: str
    diff_id: str
    size: int
    config: dict[str, object] = field(default_factory=dict)

    @property
    def image_id(self) -> str:
        """The image id as podman/docker show it (the config digest, no prefix)."""
        return self.config_digest.split(":", 1)[1]


def _epoch() -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env and env.isdigit():
        return int(env)
    return DEFAULT_EPOCH


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def default_arch() -> str:
    """The OCI architecture name of this machine."""
    machine = platform.machine().lower()
    return {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
        "armv7l": "arm",
        "ppc64le": "ppc64le",
        "s390x": "s390x",
        "riscv64": "riscv64",
    }.get(machine, machine)


def rootfs_tar(rootfs: str | os.PathLike[str], *, mtime: int | None = None) -> bytes:
    """An uncompressed, deterministic tar of ``rootfs`` (a layer's diff).

    Entries are sorted, owned by 0:0 unless the file says otherwise is wanted
    (ownership is taken from the files when running as root, else 0:0), and
    carry one fixed mtime. Regular files, directories, symlinks and hard links
    are kept; sockets, fifos and devices are skipped (a rootfs for a test
    image has none).
    """
    root = Path(rootfs)
    if not root.is_dir():
        raise FileNotFoundError(f"rootfs is not a directory: {root}")
    when = _epoch() if mtime is None else mtime
    keep_owner = os.geteuid() == 0
    buf = io.BytesIO()
    seen_inodes: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            names = sorted(dirnames + filenames)
            for name in names:
                full = Path(dirpath) / name
                rel = full.relative_to(root).as_posix()
                st = full.lstat()
                info = tarfile.TarInfo(rel)
                info.mode = stat.S_IMODE(st.st_mode)
                info.mtime = when
                info.uid = st.st_uid if keep_owner else 0
                info.gid = st.st_gid if keep_owner else 0
                info.uname = ""
                info.gname = ""
                if stat.S_ISDIR(st.st_mode):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif stat.S_ISLNK(st.st_mode):
                    info.type = tarfile.SYMTYPE
                    info.linkname = os.readlink(full)
                    tar.addfile(info)
                elif stat.S_ISREG(st.st_mode):
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in seen_inodes:
                        info.type = tarfile.LNKTYPE
                        info.linkname = seen_inodes[key]
                        tar.addfile(info)
                        continue
                    seen_inodes[key] = rel
                    info.size = st.st_size
                    with full.open("rb") as fh:
                        tar.addfile(info, fh)
            # os.walk recurses in dirnames order; it was sorted in place above
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return out.getvalue()


def image_config(
    diff_id: str,
    *,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    env: list[str] | None = None,
    workdir: str = "/",
    user: str | None = None,
    labels: dict[str, str] | None = None,
    arch: str | None = None,
    created: int | None = None,
) -> dict[str, object]:
    """The OCI image config document."""
    when = _epoch() if created is None else created
    created_s = datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cfg: dict[str, object] = {"WorkingDir": workdir}
    if env:
        cfg["Env"] = list(env)
    if entrypoint:
        cfg["Entrypoint"] = list(entrypoint)
    if cmd:
        cfg["Cmd"] = list(cmd)
    if user:
        cfg["User"] = user
    if labels:
        cfg["Labels"] = dict(sorted(labels.items()))
    return {
        "created": created_s,
        "architecture": arch or default_arch(),
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created_s, "created_by": "exuvia tests/support/oci_image.py"}],
    }


def build_oci_archive(
    rootfs: str | os.PathLike[str],
    ref: str,
    out: str | os.PathLike[str],
    *,
    entrypoint: list[str] | None = None,
    cmd: list[str] | None = None,
    env: list[str] | None = None,
    workdir: str = "/",
    user: str | None = None,
    labels: dict[str, str] | None = None,
    arch: str | None = None,
    created: int | None = None,
) -> OciImage:
    """Write an OCI image layout tar of ``rootfs`` named ``ref`` to ``out``.

    ``ref`` should be a full reference (``docker.io/library/pause:3.9``,
    ``localhost/exuvia/target:1``); it is written both as
    ``io.containerd.image.name`` (containerd) and ``org.opencontainers.image.ref.name``
    (podman, skopeo). The file is written under a temporary name and renamed.
    """
    if not ref or any(c.isspace() for c in ref):
        raise ValueError(f"bad image reference: {ref!r}")
    layer = rootfs_tar(rootfs)
    diff_id = _sha256(layer)
    layer_gz = _gzip(layer)
    layer_digest = _sha256(layer_gz)
    config = image_config(
        diff_id,
        entrypoint=entrypoint,
        cmd=cmd,
        env=env,
        workdir=workdir,
        user=user,
        labels=labels,
        arch=arch,
        created=created,
    )
    config_bytes = _canonical_json(config)
    config_digest = _sha256(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": MT_LAYER_GZIP, "digest": layer_digest, "size": len(layer_gz)}],
    }
    manifest_bytes = _canonical_json(manifest)
    manifest_digest = _sha256(manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [
            {
                "mediaType": MT_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": config["architecture"], "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": ref,
                    "org.opencontainers.image.ref.name": ref,
                },
            }
        ],
    }
    when = _epoch()
    members: list[tuple[str, bytes | None]] = [
        ("blobs", None),
        ("blobs/sha256", None),
        (f"blobs/sha256/{config_digest[7:]}", config_bytes),
        (f"blobs/sha256/{layer_digest[7:]}", layer_gz),
        (f"blobs/sha256/{manifest_digest[7:]}", manifest_bytes),
        ("index.json", _canonical_json(index)),
        ("oci-layout", _canonical_json({"imageLayoutVersion": "1.0.0"})),
    ]
    out_path = Path(out)
    tmp = out_path.with_name(out_path.name + ".partial")
    with tmp.open("wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = when
            info.uid = info.gid = 0
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    tmp.replace(out_path)
    return OciImage(
        path=str(out_path),
        ref=ref,
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        layer_digest=layer_digest,
        diff_id=diff_id,
        size=out_path.stat().st_size,
        config=config,
    )


def _argv_list(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    if len(values) == 1 and values[0].lstrip().startswith("["):
        parsed = json.loads(values[0])
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise SystemExit("error: a JSON --entrypoint/--cmd must be an array of strings")
        return parsed
    return values


def _parse_created(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="oci_image.py", description="Write an OCI image layout tar from a rootfs directory."
    )
    p.add_argument("--rootfs", required=True, help="root filesystem directory")
    p.add_argument("--ref", required=True, help="image reference, e.g. localhost/app:1")
    p.add_argument("-o", "--output", required=True, help="output .tar path")
    p.add_argument("--entrypoint", action="append", help="entrypoint argv element (repeat)")
    p.add_argument("--cmd", action="append", help="cmd argv element (repeat)")
    p.add_argument("--env", action="append", default=[], help="K=V (repeat)")
    p.add_argument("--workdir", default="/")
    p.add_argument("--user", default=None)
    p.add_argument("--label", action="append", default=[], help="K=V (repeat)")
    p.add_argument("--arch", default=None, help=f"default: {default_arch()}")
    p.add_argument("--created", default=None, help="RFC 3339 time or epoch seconds")
    args = p.parse_args(argv)
    for kv in [*args.env, *args.label]:
        if "=" not in kv:
            p.error(f"expected K=V, got {kv!r}")
    labels = dict(kv.split("=", 1) for kv in args.label)
    try:
        img = build_oci_archive(
            args.rootfs,
            args.ref,
            args.output,
            entrypoint=_argv_list(args.entrypoint),
            cmd=_argv_list(args.cmd),
            env=args.env,
            workdir=args.workdir,
            user=args.user,
            labels=labels or None,
            arch=args.arch,
            created=_parse_created(args.created),
        )
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "path": img.path,
                "ref": img.ref,
                "manifest": img.manifest_digest,
                "config": img.config_digest,
                "size": img.size,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
