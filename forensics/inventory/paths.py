"""Where package metadata lives in a target, and how big it may be to be copied.

The capture's copy policy asks :func:`wants_copy` so that these files are in
the bundle even when nothing else in their directory is; the inventory asks
:func:`metadata_kind` to pick them out of the bundle. Both see the same rules.
"""

from __future__ import annotations

SMALL = 1 << 20  # one package's metadata file
DATABASE = 64 << 20  # a whole package database (dpkg status, apk installed, rpmdb)
JAR = 64 << 20  # a Java archive (read for its manifest and pom.properties)

DPKG = b"/var/lib/dpkg/"
RPM_DIRS = (b"/var/lib/rpm/", b"/usr/lib/sysimage/rpm/", b"/usr/share/rpm/")
APK_DBS = (b"/lib/apk/db/installed", b"/usr/lib/apk/db/installed")
OS_RELEASE = (b"/etc/os-release", b"/usr/lib/os-release")
SITE_DIRS = (b"/site-packages/", b"/dist-packages/")
JAR_SUFFIXES = (b".jar", b".war", b".ear")
PY_SUFFIXES = (b".dist-info/METADATA", b".dist-info/RECORD", b".egg-info/PKG-INFO")
PY_SUFFIXES2 = (b".egg-info/installed-files.txt", b".egg-info")

LIMITS: dict[str, int] = {
    "dpkg-status": DATABASE,
    "dpkg-status.d": SMALL,
    "dpkg-list": SMALL * 4,
    "dpkg-md5sums": SMALL * 4,
    "apk-installed": DATABASE,
    "rpm-sqlite": DATABASE,
    "python-metadata": SMALL,
    "python-record": SMALL * 4,
    "python-pkginfo": SMALL,
    "python-installed-files": SMALL,
    "npm-package": SMALL,
    "jar": JAR,
    "os-release": SMALL,
}
#: recognised, reported as present, but not read (and so not copied for it)
UNSUPPORTED = {"rpm-bdb": "Berkeley DB rpmdb", "rpm-ndb": "ndb rpmdb"}


def metadata_kind(path: bytes) -> str | None:
    """The kind of package metadata file at ``path`` in the target, or None."""
    if path.startswith(DPKG):
        rest = path[len(DPKG) :]
        if rest == b"status":
            return "dpkg-status"
        if rest.startswith(b"status.d/") and b"/" not in rest[9:]:
            return "dpkg-md5sums" if rest.endswith(b".md5sums") else "dpkg-status.d"
        if rest.startswith(b"info/") and b"/" not in rest[5:]:
            if rest.endswith(b".list"):
                return "dpkg-list"
            if rest.endswith(b".md5sums"):
                return "dpkg-md5sums"
        return None
    if path.endswith(b"/package.json"):
        i = path.rfind(b"/node_modules/")
        if i < 0:
            return None
        parts = path[i + 14 :].split(b"/")
        if len(parts) == 2 and not parts[0].startswith(b"@"):
            return "npm-package"
        if len(parts) == 3 and parts[0].startswith(b"@"):
            return "npm-package"
        return None
    if path.endswith(PY_SUFFIXES) or path.endswith(PY_SUFFIXES2):
        return _python_kind(path)
    if path.endswith(JAR_SUFFIXES):
        return "jar"
    if path in OS_RELEASE:
        return "os-release"
    if path in APK_DBS:
        return "apk-installed"
    if path.startswith(RPM_DIRS):
        name = path.rsplit(b"/", 1)[1]
        if name == b"rpmdb.sqlite":
            return "rpm-sqlite"
        if name == b"Packages":
            return "rpm-bdb"
        if name == b"Packages.db":
            return "rpm-ndb"
    return None


def _python_kind(path: bytes) -> str | None:
    """Only metadata directly in a site-packages/dist-packages directory."""
    for site in SITE_DIRS:
        i = path.rfind(site)
        if i < 0:
            continue
        parts = path[i + len(site) :].split(b"/")
        if len(parts) == 1 and parts[0].endswith(b".egg-info"):
            return "python-pkginfo"  # the single-file form
        if len(parts) != 2:
            return None
        meta_dir, name = parts
        if meta_dir.endswith(b".dist-info"):
            return {b"METADATA": "python-metadata", b"RECORD": "python-record"}.get(name)
        if meta_dir.endswith(b".egg-info"):
            return {
                b"PKG-INFO": "python-pkginfo",
                b"installed-files.txt": "python-installed-files",
            }.get(name)
    return None


def wants_copy(path: bytes, size: int) -> bool:
    """Whether the capture should copy this file for the inventory."""
    kind = metadata_kind(path)
    return kind is not None and kind in LIMITS and size <= LIMITS[kind]


class PathResolver:
    """Resolves directory symlinks of the target (e.g. /bin -> usr/bin, usrmerge)
    from its filesystem records, so package claims and files meet on one path."""

    MAX_HOPS = 40

    def __init__(self, symlinks: dict[str, str]) -> None:
        self._links = symlinks
        self._cache: dict[str, str] = {}

    def resolve(self, path: str) -> str:
        """The path with every symlinked directory component followed (not the last)."""
        if not self._links:
            return path
        if not path.startswith("/"):
            path = "/" + path
        cut = path.rfind("/")
        head = path[:cut] or "/"
        resolved = self._cache.get(head)
        if resolved is None:
            resolved = self._dir(head)
        return path if resolved == head else resolved.rstrip("/") + path[cut:]

    def _dir(self, path: str) -> str:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        parts = [p for p in path.split("/") if p not in ("", ".")]
        out: list[str] = []
        hops = 0
        while parts:
            comp = parts.pop(0)
            if comp == "..":
                if out:
                    out.pop()
                continue
            cand = "/" + "/".join([*out, comp])
            target = self._links.get(cand)
            if target is not None and hops < self.MAX_HOPS:
                hops += 1
                if target.startswith("/"):
                    out = []
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            out.append(comp)
        result = "/" + "/".join(out)
        self._cache[path] = result
        return result
