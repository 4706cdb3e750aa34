"""Build the inventory of a captured target: the library API behind ``exuvia sbom``.

``build_inventory(bundle)`` reads the bundle once (load.py), parses every
package database it holds, analyses every ELF file and process executable,
turns build information embedded in binaries into packages, and works out the
coverage. ``inventory_from_snapshot`` does the same from data already loaded
(tests, and the replay TUI later).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from forensics.bundle.format import encode_path
from forensics.inventory import apk, coverage, dpkg, node, python, rpm
from forensics.inventory.control import os_release
from forensics.inventory.elf import Unparseable, analyze
from forensics.inventory.elfblob import ElfBlob
from forensics.inventory.load import Snapshot, load_bundle
from forensics.inventory.model import Claim, ElfInfo, Executable, Inventory, Package
from forensics.inventory.paths import UNSUPPORTED, PathResolver, metadata_kind
from forensics.inventory.purl import purl, split_path

SECONDS_PER_FILE = 2.0


def build_inventory(bundle: str | Path) -> Inventory:
    return inventory_from_snapshot(load_bundle(bundle))


def _mode_bits(rec: dict[str, Any]) -> int:
    try:
        return int(str(rec.get("mode") or "0"), 8)
    except ValueError:
        return 0


class _Builder:
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.problems: list[str] = list(snap.problems)
        self.packages: list[Package] = []
        self.embedded: list[tuple[Executable, Package, str]] = []
        self._analysed: dict[str, tuple[ElfInfo | None, str | None]] = {}
        fs = snap.records("filesystem")
        self.fs = {r["path"]: r for r in fs if isinstance(r.get("path"), str)}
        self.upper_known = any(r.get("changed") is not None for r in fs)

    # -- package metadata -------------------------------------------------------
    def os_info(self) -> dict[str, str]:
        for path in ("/etc/os-release", "/usr/lib/os-release"):
            data = self.snap.metadata.get(path)
            if data is not None:
                return os_release(data.decode("utf-8", "replace"))
        return {}

    def metadata(self, osr: dict[str, str]) -> None:
        snap = self.snap
        texts = {
            p: d.decode("utf-8", "replace")
            for p, d in snap.metadata.items()
            if metadata_kind(p.encode("utf-8", "surrogatepass")) != "rpm-sqlite"
        }
        kinds = {p: metadata_kind(p.encode("utf-8", "surrogatepass")) or "" for p in texts}
        os_id, release = osr.get("ID"), osr.get("VERSION_ID")
        deb_ns = os_id if os_id in ("debian", "ubuntu") else "debian"
        found, probs = dpkg.collect(texts, (deb_ns, release))
        self.packages += found
        self.problems += probs
        for path in ("/lib/apk/db/installed", "/usr/lib/apk/db/installed"):
            if path in texts:
                self.packages += apk.parse_installed(
                    texts[path], path, (os_id or "alpine", release)
                )
        for path, data in snap.metadata.items():
            if metadata_kind(path.encode("utf-8", "surrogatepass")) == "rpm-sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    db = os.path.join(tmp, "rpmdb.sqlite")
                    Path(db).write_bytes(data)
                    found, probs = rpm.read_sqlite(db, path, (os_id or "rpm", release))
                self.packages += found
                self.problems += probs
        for mod in (python, node):
            found, probs = mod.collect(texts, kinds)
            self.packages += found
            self.problems += probs
        for _path, (found, probs) in sorted(snap.jars.items()):
            self.packages += found
            self.problems += probs
        if osr.get("ID"):
            self.packages.append(
                Package(
                    ecosystem="os",
                    name=osr["ID"],
                    version=osr.get("VERSION_ID", ""),
                    purl=None,
                    source="/etc/os-release",
                    kind="operating-system",
                    description=osr.get("PRETTY_NAME"),
                    homepage=osr.get("HOME_URL"),
                )
            )

    def blind_spots(self) -> None:
        have = set(self.snap.metadata) | set(self.snap.jars)
        for path, rec in self.fs.items():
            if rec.get("type") != "file":
                continue
            kind = metadata_kind(path.encode("utf-8", "surrogatepass"))
            if kind is None:
                continue
            if kind in UNSUPPORTED:
                self.problems.append(f"{path}: {UNSUPPORTED[kind]} present but not supported")
            elif path not in have and not any(p.startswith(path + ":") for p in have):
                self.problems.append(
                    f"{path}: package metadata ({kind}) not in the bundle "
                    f"({rec.get('size')} bytes; not copied by the capture)"
                )

    # -- executables -------------------------------------------------------------
    def _elf(self, exe: Executable, blob: ElfBlob | str | None) -> None:
        if blob is None:
            exe.unparseable = "not in the bundle (not captured)"
            return
        if isinstance(blob, str):
            exe.unparseable = blob
            return
        exe.md5 = exe.md5 or blob.digests.get("md5")
        exe.sha1 = exe.sha1 or blob.digests.get("sha1")
        key = exe.sha256 or f"@{id(blob)}"
        if key not in self._analysed:
            try:
                self._analysed[key] = (analyze(blob, seconds=SECONDS_PER_FILE), None)
            except Unparseable as err:
                self._analysed[key] = (None, str(err))
        exe.elf, exe.unparseable = self._analysed[key]

    def executables(self) -> list[Executable]:
        snap = self.snap
        exes: dict[str, Executable] = {}
        for path, rec in self.fs.items():
            if rec.get("type") != "file":
                continue
            blob = snap.file_blobs.get(path)
            first = rec.get("hardlink_of")
            if blob is None and isinstance(first, str):
                blob = snap.file_blobs.get(first)
            if blob is None:
                continue
            bits = _mode_bits(rec)
            exe = Executable(
                path=path,
                origin="filesystem",
                size=rec.get("size"),
                sha256=rec.get("sha256"),
                mode=rec.get("mode"),
                setuid=bool(bits & 0o4000),
                setgid=bool(bits & 0o2000),
                changed=rec.get("changed"),
                member=rec.get("member")
                or "elf" + encode_path(path.encode("utf-8", "surrogatepass")),
            )
            self._elf(exe, blob)
            exes[path] = exe
        # extracts with no filesystem record (a capture cut before filesystem.jsonl)
        elf_recs = {r.get("path"): r for r in snap.records("elf")}
        for path, blob in snap.file_blobs.items():
            if path not in exes and path not in self.fs:
                rec = elf_recs.get(path) or {}
                exe = Executable(path, "filesystem", size=rec.get("size"), sha256=rec.get("sha256"))
                self._elf(exe, blob)
                exes[path] = exe
        procs = self._processes(exes)
        return sorted(exes.values(), key=lambda e: e.path) + procs

    def _processes(self, exes: dict[str, Executable]) -> list[Executable]:
        snap = self.snap
        bins = {b.get("pid"): b for b in snap.records("binaries")}
        whiteouts = {p for p, r in self.fs.items() if r.get("type") == "whiteout"}
        out: dict[tuple[str, str | None], Executable] = {}
        for proc in snap.records("processes"):
            pid, exe_path = proc.get("pid"), proc.get("exe")
            if not isinstance(pid, int) or not isinstance(exe_path, str) or not exe_path:
                continue
            base = exe_path.removesuffix(" (deleted)")
            if proc.get("exe_deleted") or proc.get("exe_memfd"):
                b = bins.get(pid) or {}
                key = (exe_path, b.get("sha256"))
                if key in out:
                    out[key].pids.append(pid)
                    continue
                memfd = bool(proc.get("exe_memfd"))
                e = Executable(
                    path=exe_path,
                    origin="process",
                    size=b.get("size"),
                    sha256=b.get("sha256"),
                    deleted=not memfd,
                    memfd=memfd,
                    pids=[pid],
                    member=b.get("member") or b.get("elf_member"),
                )
                if memfd:
                    e.added_inferred = "fileless: ran from a memfd"
                elif base in whiteouts:
                    e.added_inferred = None  # in the image, deleted since start
                elif self.upper_known and base not in self.fs:
                    e.added_inferred = (
                        "ran from a deleted file that the image does not have "
                        "(no whiteout): created after the container started"
                    )
                self._elf(e, snap.proc_blobs.get(pid))
                out[key] = e
                if memfd:
                    out.update(self._in_memory(pid, exe_path))
            elif base in exes and pid not in exes[base].pids:
                exes[base].pids.append(pid)
            for m in proc.get("maps") or []:
                mp = m.get("path") if isinstance(m, dict) else None
                if not isinstance(mp, str) or not mp.startswith("/"):
                    continue
                if mp in exes and pid not in exes[mp].pids:
                    exes[mp].pids.append(pid)
                elif m.get("deleted") and mp != base:
                    note = f"pid {pid} maps the deleted file {mp}: its content was not captured"
                    if note not in self.problems:
                        self.problems.append(note)
        return list(out.values())

    def _in_memory(self, pid: int, exe_path: str) -> dict[tuple[str, str | None], Executable]:
        """What the core of a memfd process identifies (capture --memory): each image
        mapped from a memfd, as an executable whose source is its memory."""
        out: dict[tuple[str, str | None], Executable] = {}
        member = f"memory/{pid}.core"
        for img in self.snap.memory_images.get(pid, []):
            e = Executable(
                path=img.path,
                origin="memory",
                memfd=True,
                pids=[pid],
                member=member,
                added_inferred=f"fileless: ran from a memfd; seen in the memory of pid {pid}",
                memory={
                    "member": member,
                    "address": img.start,
                    "core_offset": img.core_offset,
                    "bytes_examined": img.examined,
                    "machine": img.machine,
                    "elf_type": img.e_type,
                    "build_id": img.build_id,
                    "problem": img.problem,
                },
            )
            out[(f"memory:{pid}:{img.path}", str(img.start))] = e
        return out

    # -- packages embedded in binaries --------------------------------------------
    def embedded_packages(self, exes: list[Executable]) -> None:
        for exe in exes:
            info = exe.elf
            if info is None:
                continue
            if info.go is not None:
                self._go(exe, info)
            if info.rust:
                self._rust(exe, info)
            note = info.package_note
            if note and isinstance(note.get("name"), str):
                ptype = str(note.get("type") or "generic")
                osname = note.get("os")
                version = str(note.get("version") or "")
                qual = {
                    "arch": str(note.get("architecture") or "") or None,
                    "distro": f"{osname}-{note.get('osVersion')}"
                    if note.get("osVersion")
                    else None,
                }
                pkg = Package(
                    ecosystem=ptype,
                    name=note["name"],
                    version=version,
                    purl=purl(
                        ptype, note["name"], version or None, str(osname) if osname else None, qual
                    ),
                    source=exe.path,
                )
                self.packages.append(pkg)
                self.embedded.append((exe, pkg, ".note.package"))

    def _go(self, exe: Executable, info: ElfInfo) -> None:
        bi = info.go
        assert bi is not None
        gover = bi.go_version.removeprefix("go")
        std = Package("golang", "stdlib", gover, purl("golang", "stdlib", gover), exe.path)
        deps: list[Package] = [std]
        for d in bi.deps:
            real = d.replace or d
            ns, name = split_path(real.path)
            pkg = Package(
                "golang", real.path, real.version, purl("golang", name, real.version, ns), exe.path
            )
            if real.sum:
                pkg.properties["go:sum"] = real.sum
            if d.replace is not None:
                pkg.properties["go:replaces"] = f"{d.path}@{d.version}"
            deps.append(pkg)
        main = bi.main
        path = (main.path if main else "") or bi.path
        version = main.version if main else ""
        ns, name = split_path(path)
        app = Package(
            "golang",
            path,
            version,
            purl("golang", name, None if version in ("", "(devel)") else version, ns),
            exe.path,
            kind="application",
        )
        app.properties["go:version"] = bi.go_version
        if bi.path:
            app.properties["go:path"] = bi.path
        for key, value in bi.settings:
            app.properties[f"go:build:{key}"] = value
        app.depends = [p.key for p in deps]
        self.packages += [app, *deps]
        self.embedded.append((exe, app, "Go build information"))

    def _rust(self, exe: Executable, info: ElfInfo) -> None:
        crates = info.rust or []
        pkgs = [
            Package(
                "cargo",
                c.name,
                c.version,
                purl("cargo", c.name, c.version),
                exe.path,
                kind="application" if c.root else "library",
                properties={"cargo:source": c.source, "cargo:kind": c.kind},
            )
            for c in crates
        ]
        for c, p in zip(crates, pkgs, strict=True):
            p.depends = [pkgs[i].key for i in c.dependencies]
        self.packages += pkgs
        root = next((p for c, p in zip(crates, pkgs, strict=True) if c.root), None)
        if root is not None:
            self.embedded.append((exe, root, "cargo-auditable data"))

    # -- merging -------------------------------------------------------------------
    def merge(self) -> list[Package]:
        merged: dict[str, Package] = {}
        alias: dict[int, Package] = {}
        for p in self.packages:
            m = merged.get(p.key)
            if m is None:
                p.locations = [p.source]
                p.ref = p.key
                merged[p.key] = m = p
            else:
                if p.source not in m.locations:
                    m.locations.append(p.source)
                m.files.extend(p.files)
                m.depends += [d for d in p.depends if d not in m.depends]
                m.licenses += [x for x in p.licenses if x not in m.licenses]
                for k, v in p.properties.items():
                    m.properties.setdefault(k, v)
            alias[id(p)] = m
        for exe, pkg, why in self.embedded:
            ref = alias[id(pkg)].ref
            if all(c.ref != ref for c in exe.claims):
                exe.claims.append(Claim(ref, "embedded", why))
        return list(merged.values())


def inventory_from_snapshot(snap: Snapshot) -> Inventory:
    b = _Builder(snap)
    osr = b.os_info()
    b.metadata(osr)
    b.blind_spots()
    exes = b.executables()
    b.embedded_packages(exes)
    packages = b.merge()
    links = {
        p: str(r["link_target"])
        for p, r in b.fs.items()
        if r.get("type") == "symlink" and isinstance(r.get("link_target"), str)
    }
    coverage.attribute(exes, packages, PathResolver(links))
    target = snap.records("target")
    return Inventory(
        target=target[0] if target else dict(snap.manifest.get("target") or {}),
        manifest=snap.manifest,
        os=osr,
        packages=packages,
        executables=exes,
        coverage=coverage.summarize(exes),
        problems=b.problems,
        bundle=snap.bundle,
    )
