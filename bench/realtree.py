"""A real benchmark input: a container root made of this machine's own files.

``build()`` assembles, once, under /var/cache/exuvia-bench/realtree/ (or
``$EXUVIA_BENCH_CACHE``), a target root holding copies of this machine's
/usr/lib/x86_64-linux-gnu, /usr/share/doc, the Python standard libraries and,
until the tree holds at least 100,000 files and 2 GiB, more of /usr (in the
fixed order of SOURCES; whole sources, so the same machine gives the same
tree). Paths inside the root are the original absolute paths. Symlinks stay
symlinks (never followed), files hard-linked to each other in the sources stay
hard-linked in the tree, modes, owners and times are kept; sockets, FIFOs and
devices are left out (/usr has none). Contents are reflinked where the
filesystem can (FICLONE), copied otherwise (``copy_file_range``). They are not
hard-linked to the originals by default: that would give every file
``st_nlink > 1``, which both tar and exuvia treat specially (tar keeps a table of
such inodes, exuvia remembers up to 100,000 of them), unlike a real image
layer; ``--hardlink`` does it anyway when disk space is short. A static
``/app/sleeper`` (``pause()`` forever) is the container's process.

``start_container(root)`` runs that root under real runc, on an overlay
(lower = the cached root, so nothing the container does reaches the cache),
as the integration tests' runc targets are run: own PID, mount, IPC, UTS and
network namespaces, no rlimits. It yields a ``Container`` with ``.pid``,
``.cid`` and ``.uri`` (``runc://ID``) and removes everything on exit.

``captured_bundle()`` is the bundle of that container captured with
``exuvia capture --files all`` (cached next to the tree, rebuilt with
``refresh=True``), for the timeline and export benchmarks.

    sudo .venv/bin/python bench/realtree.py            # build (if needed), print counts
    sudo .venv/bin/python bench/realtree.py --bundle   # and capture the bundle
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("EXUVIA_BENCH_CACHE", "/var/cache/exuvia-bench"))
MIN_FILES = 100_000
MIN_BYTES = 2 << 30
FICLONE = 0x40049409

#: copied in this order until MIN_FILES and MIN_BYTES are both reached; the
#: first four are always taken
ALWAYS = 4


def _sources() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    srcs = [
        Path("/usr/lib/x86_64-linux-gnu"),
        Path("/usr/share/doc"),
        stdlib,
        Path("/usr/lib/python3"),
        Path("/usr/lib/python3.11"),
        Path("/usr/include"),
        Path("/usr/share"),  # the rest of it (doc is already there)
        Path("/usr/lib/gcc"),
        Path("/usr/lib/llvm-14"),
        Path("/usr/bin"),
        Path("/usr/lib"),  # the rest of it
    ]
    seen: list[Path] = []
    for s in srcs:
        real = s.resolve()
        if real.is_dir() and real not in seen:
            seen.append(real)
    return seen


SLEEPER_C = "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n"


@dataclass
class Tree:
    root: Path
    files: int  # regular files
    entries: int  # everything: directories, symlinks, files
    bytes: int  # sum of regular files' sizes
    sources: list[str]
    mode: str

    def describe(self) -> str:
        return (
            f"real tree {self.root}: {self.files:,} files, {self.entries:,} entries, "
            f"{self.bytes / (1 << 30):.2f} GiB ({self.mode}) from {', '.join(self.sources)}"
        )


class _Copier:
    def __init__(self, dest: Path, hardlink: bool) -> None:
        self.dest = dest
        self.hardlink = hardlink
        self.links: dict[tuple[int, int], Path] = {}
        self.files = self.entries = self.bytes = 0
        self.reflink: bool | None = None  # unknown until the first file
        self.used_reflink = False

    def _content(self, src: Path, dst: Path, st: os.stat_result) -> None:
        if self.hardlink:
            os.link(src, dst)
            return
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            if self.reflink is not False:
                try:
                    fcntl.ioctl(fo.fileno(), FICLONE, fi.fileno())
                    self.reflink = self.used_reflink = True
                    return
                except OSError as err:
                    if err.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
                        raise
                    self.reflink = False
            left = st.st_size
            while left > 0:
                n = os.copy_file_range(fi.fileno(), fo.fileno(), min(left, 1 << 30))
                if n == 0:
                    break
                left -= n

    def _meta(self, dst: Path, st: os.stat_result, link: bool = False) -> None:
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=not link)
        if not link:
            os.chmod(dst, stat.S_IMODE(st.st_mode))
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=not link)

    def copy_tree(self, src: Path) -> None:
        """Copy ``src`` to the same absolute path under dest; skip what is there."""
        dirs: list[tuple[Path, os.stat_result]] = []
        top = self.dest / src.relative_to("/")
        for parent in reversed(top.parents):
            if parent != self.dest and not parent.exists() and self.dest in parent.parents:
                parent.mkdir()
                self._meta(parent, os.stat("/" / parent.relative_to(self.dest)))
        for dirpath, dirnames, filenames in os.walk(src):
            d = Path(dirpath)
            out = self.dest / d.relative_to("/")
            dst_is_new = not out.exists()
            if dst_is_new:
                out.mkdir()
                self.entries += 1
            dirs.append((out, os.lstat(d)))
            keep = []
            for name in dirnames:
                full = d / name
                if full.is_symlink():
                    filenames.append(name)  # os.walk lists symlinks to dirs as dirs
                elif os.lstat(full).st_dev == os.lstat(d).st_dev:
                    keep.append(name)  # never cross into another filesystem
            dirnames[:] = sorted(keep)
            for name in sorted(filenames):
                self._entry(d / name, out / name)
        for out, st in reversed(dirs):  # times after the contents are in
            self._meta(out, st)

    def _entry(self, src: Path, dst: Path) -> None:
        st = os.lstat(src)
        if os.path.lexists(dst):
            return  # already taken from an earlier source
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
            self._meta(dst, st, link=True)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            first = self.links.get(key) if st.st_nlink > 1 else None
            if first is not None:
                os.link(first, dst)
            else:
                self._content(src, dst, st)
                if not self.hardlink:
                    self._meta(dst, st)
                if st.st_nlink > 1:
                    self.links[key] = dst
            self.files += 1
            self.bytes += st.st_size
        else:
            return  # sockets, FIFOs, devices: not part of the tree
        self.entries += 1


def _sleeper(root: Path) -> None:
    app = root / "app"
    app.mkdir(exist_ok=True)
    src = root / "sleeper.c"
    src.write_text(SLEEPER_C)
    try:
        subprocess.run(["gcc", "-static", "-O2", "-o", str(app / "sleeper"), str(src)], check=True)
    finally:
        src.unlink()
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        (root / d).mkdir(exist_ok=True)


def build(
    cache: Path = CACHE,
    *,
    min_files: int = MIN_FILES,
    min_bytes: int = MIN_BYTES,
    hardlink: bool = False,
    quiet: bool = False,
) -> Tree:
    """The cached real tree, assembled first if it is not there yet.

    Concurrent callers (several benchmarks started at once on a fresh machine)
    serialise on an flock of ``realtree/build.lock``: one builds, the others
    wait for it and then read its manifest, instead of deleting each other's
    ``root.partial``."""
    base = cache / "realtree"
    manifest = base / "tree.json"
    if manifest.exists():
        return _load(manifest)
    if os.geteuid() != 0:
        raise SystemExit("building the real tree needs root (owners, runc)")
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "build.lock", "a") as lock:
        if not quiet:
            print("realtree: waiting for the build lock ...", file=sys.stderr, flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest.exists():  # built by the holder we waited for
            return _load(manifest)
        return _build_locked(
            base, manifest, min_files=min_files, min_bytes=min_bytes, hardlink=hardlink, quiet=quiet
        )


def _load(manifest: Path) -> Tree:
    info = json.loads(manifest.read_text())
    return Tree(Path(info["root"]), **{k: v for k, v in info.items() if k != "root"})


def _build_locked(
    base: Path, manifest: Path, *, min_files: int, min_bytes: int, hardlink: bool, quiet: bool
) -> Tree:
    partial = base / "root.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    copier = _Copier(partial, hardlink)
    taken: list[str] = []
    t0 = time.monotonic()
    for i, src in enumerate(_sources()):
        if i >= ALWAYS and copier.files >= min_files and copier.bytes >= min_bytes:
            break
        if not quiet:
            print(f"realtree: copying {src} ...", file=sys.stderr, flush=True)
        copier.copy_tree(src)
        taken.append(str(src))
    if copier.files < min_files or copier.bytes < min_bytes:
        raise SystemExit(
            f"this machine's /usr gives only {copier.files} files, {copier.bytes} bytes "
            f"(need {min_files}, {min_bytes})"
        )
    _sleeper(partial)
    root = base / "root"
    partial.rename(root)
    mode = "hard links" if hardlink else ("reflinked" if copier.used_reflink else "copied")
    tree = Tree(root, copier.files, copier.entries, copier.bytes, taken, mode)
    tmp = manifest.with_suffix(".partial")
    tmp.write_text(json.dumps({**tree.__dict__, "root": str(root)}, indent=1))
    tmp.rename(manifest)
    if not quiet:
        print(f"realtree: built in {time.monotonic() - t0:.0f}s", file=sys.stderr)
    return tree


@dataclass
class Container:
    cid: str
    pid: int
    bundle: Path

    @property
    def uri(self) -> str:
        return f"runc://{self.cid}"

    @property
    def root(self) -> str:
        return f"/proc/{self.pid}/root"


def _runc_config(hostname: str) -> dict[str, object]:
    sys.path.insert(0, str(REPO))
    from tui.demo.launch import runc_config  # noqa: PLC0415 - the repo is on the path now

    return runc_config(["/app/sleeper"], ["PATH=/app"], hostname)


@contextlib.contextmanager
def start_container(root: Path, cache: Path = CACHE) -> Iterator[Container]:
    """Run ``root`` under runc on an overlay; yield it; remove every trace after."""
    if shutil.which("runc") is None:
        raise SystemExit("runc is not installed")
    cid = f"exuvia-bench-{uuid.uuid4().hex[:8]}"
    bundle = cache / "run" / cid
    merged = bundle / "rootfs"
    mounted = started = False
    try:
        for sub in ("upper", "work", "rootfs"):
            (bundle / sub).mkdir(parents=True)
        opts = f"lowerdir={root},upperdir={bundle / 'upper'},workdir={bundle / 'work'}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
        mounted = True
        (bundle / "config.json").write_text(json.dumps(_runc_config("exuvia-bench"), indent=1))
        subprocess.run(
            ["runc", "run", "-d", "--bundle", str(bundle), "--pid-file", str(bundle / "pid"), cid],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        started = True
        pid = int((bundle / "pid").read_text())
        yield Container(cid, pid, bundle)
    finally:
        if started:
            subprocess.run(["runc", "delete", "-f", cid], check=False, capture_output=True)
        if mounted:
            subprocess.run(["umount", str(merged)], check=False, capture_output=True)
        shutil.rmtree(bundle, ignore_errors=True)


def exuvia_capture_argv(uri: str, out: Path, *extra: str) -> list[str]:
    """``exuvia capture URI --files all -o OUT -q`` run from this checkout."""
    return [
        sys.executable,
        "-m",
        "tui.cli",
        "capture",
        uri,
        "--files",
        "all",
        "--max-file-size",
        "1G",
        "-q",
        "-o",
        str(out),
        *extra,
    ]


def captured_bundle(cache: Path = CACHE, *, refresh: bool = False, quiet: bool = False) -> Path:
    """The real tree's container captured with ``--files all`` (cached; concurrent
    callers serialise on ``realtree/capture.lock``, as :func:`build` does)."""
    tree = build(cache, quiet=quiet)
    out = cache / "realtree" / "bundle.exv"
    if out.exists() and not refresh:
        return out
    with open(out.parent / "capture.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists() and not refresh:  # captured by the holder we waited for
            return out
        return _capture_locked(tree, cache, out, quiet=quiet)


def _capture_locked(tree: Tree, cache: Path, out: Path, *, quiet: bool) -> Path:
    # exuvia writes OUT.partial and renames it when sealed: no half bundle under
    # the final name; the custody log goes next to it as OUT.custody.jsonl
    for p in out.parent.glob("bundle.*"):
        p.unlink()
    with start_container(tree.root, cache) as c:
        t0 = time.monotonic()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        subprocess.run(
            exuvia_capture_argv(c.uri, out),
            check=True,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    if not quiet:
        print(
            f"realtree: captured {out} ({out.stat().st_size / 1e6:.0f} MB) in "
            f"{time.monotonic() - t0:.1f}s",
            file=sys.stderr,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--bundle", action="store_true", help="also capture (or show) the bundle")
    ap.add_argument("--refresh-bundle", action="store_true", help="capture the bundle again")
    ap.add_argument("--hardlink", action="store_true", help="hard-link instead of copying")
    args = ap.parse_args()
    tree = build(args.cache, hardlink=args.hardlink)
    print(tree.describe())
    if args.bundle or args.refresh_bundle:
        path = captured_bundle(args.cache, refresh=args.refresh_bundle)
        print(f"bundle {path}: {path.stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
