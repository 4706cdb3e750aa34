"""Package metadata parsers, on real files of this system where there are some."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import sqlite3
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
import zstandard
from packageurl import PackageURL

from collectors.fs.policy import CopyPolicy
from forensics.inventory import apk, dpkg, java, node, python, rpm
from forensics.inventory.control import os_release, paragraphs
from forensics.inventory.licenses import expression
from forensics.inventory.paths import PathResolver, metadata_kind, wants_copy
from forensics.inventory.purl import purl

DISTRO = ("debian", "12")


# -- dpkg ---------------------------------------------------------------------------
def _real_dpkg(pkg: str) -> dict[str, str]:
    status = Path("/var/lib/dpkg/status")
    if not status.is_file():
        pytest.skip("no dpkg on this system")
    text = status.read_text(errors="replace")
    para = next((p for p in text.split("\n\n") if p.startswith(f"Package: {pkg}\n")), None)
    if para is None:
        pytest.skip(f"{pkg} is not installed")
    files = {dpkg.STATUS: para + "\n"}
    for ext in ("list", "md5sums"):
        p = Path(f"/var/lib/dpkg/info/{pkg}.{ext}")
        if p.is_file():
            files[str(p)] = p.read_text(errors="replace")
    return files


def test_real_dpkg_status_and_info_files() -> None:
    files = _real_dpkg("coreutils")
    pkgs, problems = dpkg.collect(files, DISTRO)
    assert problems == []
    (core,) = pkgs
    assert core.name == "coreutils" and core.arch == "amd64"
    version = core.version.replace("+", "%2B")
    assert core.purl == f"pkg:deb/debian/coreutils@{version}?arch=amd64&distro=debian-12"
    md5 = {f.path: f.digest for f in core.files if f.algo == "md5"}
    cat = next(p for p in md5 if p.endswith("/cat"))
    real = Path(cat) if Path(cat).exists() else Path("/usr" + cat)
    assert md5[cat] == hashlib.md5(real.read_bytes()).hexdigest()
    assert any(f.algo is None and f.path == "/usr/share/doc/coreutils" for f in core.files)


DISTROLESS = """Package: libssl3
Version: 3.0.15-1~deb12u1
Architecture: amd64
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Installed-Size: 6288
Depends: libc6 (>= 2.34)
Section: libs
Priority: optional
Multi-Arch: same
Homepage: https://www.openssl.org/
Source: openssl
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 Internet.
"""


def test_distroless_status_d_with_md5sums() -> None:
    files = {
        "/var/lib/dpkg/status.d/libssl3": DISTROLESS,
        "/var/lib/dpkg/status.d/libssl3.md5sums": (
            "0123456789abcdef0123456789abcdef  usr/lib/x86_64-linux-gnu/libssl.so.3\n"
            "fedcba9876543210fedcba9876543210  usr/share/doc/libssl3/changelog.gz\n"
        ),
        "/var/lib/dpkg/status.d/broken": "Garbage without fields\n",
    }
    pkgs, problems = dpkg.collect(files, DISTRO)
    (ssl,) = pkgs
    assert ssl.version == "3.0.15-1~deb12u1" and ssl.description.startswith("Secure Sockets")
    assert ssl.purl == (
        "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl"
    )
    assert ssl.files[0].path == "/usr/lib/x86_64-linux-gnu/libssl.so.3"
    assert problems == ["/var/lib/dpkg/status.d/broken: no installed package paragraph"]


def test_dpkg_skips_removed_packages() -> None:
    text = (
        "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
        "Package: here\nStatus: install ok installed\nVersion: 2\n"
    )
    pkgs, _ = dpkg.collect({dpkg.STATUS: text}, DISTRO)
    assert [p.name for p in pkgs] == ["here"]


def test_control_paragraphs_are_lenient() -> None:
    paras = list(paragraphs("A: 1\nB: two\n  more\n not a field\n\n\n\nC: 3\nbad line\n"))
    assert paras == [{"A": "1", "B": "two\n more\nnot a field"}, {"C": "3"}]


# -- apk ----------------------------------------------------------------------------
APK_DB = """C:Q1abcdefghijklmnopqrstuvwxyz0=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1698253522
c:a79f7f6c2ef4e6a7a3b8e3c3d3c5a5e5
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:{z}
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q1W/+MeKv7MqFSk0TQwN6yj5d2MXs=

P:busybox
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only
F:bin
R:busybox
F:etc
Z:Q1notachecksumforthedir=
"""


def test_apk_installed_database() -> None:
    sha1 = hashlib.sha1(b"musl").digest()
    text = APK_DB.replace("{z}", "Q1" + base64.b64encode(sha1).decode())
    pkgs = apk.parse_installed(text, "/lib/apk/db/installed", ("alpine", "3.19.1"))
    musl, bb = pkgs
    assert musl.purl == "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
    assert musl.licenses == ["MIT"] and musl.properties["apk:origin"] == "musl"
    assert musl.files[0].path == "/lib/ld-musl-x86_64.so.1"
    assert (musl.files[0].algo, musl.files[0].digest) == ("sha1", sha1.hex())
    assert bb.files[0].path == "/bin/busybox" and bb.files[0].digest is None  # Z after F: a dir's


# -- rpm ----------------------------------------------------------------------------
def _rpm_header(tags: list[tuple[int, int, bytes, int]]) -> bytes:
    """An on-disk rpm header: (tag, type, data, count) entries."""
    index, data = b"", b""
    for tag, typ, payload, count in tags:
        if typ == rpm.T_INT32:
            data += b"\0" * (-len(data) % 4)
        index += struct.pack(">iIiI", tag, typ, len(data), count)
        data += payload
    return struct.pack(">II", len(tags), len(data)) + index + data


def _strs(*xs: str) -> bytes:
    return b"".join(x.encode() + b"\0" for x in xs)


def test_rpm_sqlite_with_hand_made_headers(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    good = _rpm_header(
        [
            (rpm.NAME, rpm.T_STRING, _strs("bash"), 1),
            (rpm.VERSION, rpm.T_STRING, _strs("5.2.26"), 1),
            (rpm.RELEASE, rpm.T_STRING, _strs("3.fc40"), 1),
            (rpm.ARCH, rpm.T_STRING, _strs("x86_64"), 1),
            (rpm.LICENSE, rpm.T_STRING, _strs("GPL-3.0-or-later"), 1),
            (rpm.DIRNAMES, rpm.T_STRING_ARRAY, _strs("/usr/bin/", "/etc/"), 2),
            (rpm.BASENAMES, rpm.T_STRING_ARRAY, _strs("bash", "bashrc"), 2),
            (rpm.DIRINDEXES, rpm.T_INT32, struct.pack(">ii", 0, 1), 2),
            (rpm.FILEDIGESTS, rpm.T_STRING_ARRAY, _strs(digest, ""), 2),
            (rpm.FILEDIGESTALGO, rpm.T_INT32, struct.pack(">i", 8), 1),
        ]
    )
    hostile = struct.pack(">II", 1, 10_000_000) + b"\0" * 16
    db = tmp_path / "rpmdb.sqlite"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
    )
    con.executemany("INSERT INTO Packages (blob) VALUES (?)", [(good,), (hostile,), (b"\1",)])
    con.commit()
    con.close()
    pkgs, problems = rpm.read_sqlite(str(db), "/var/lib/rpm/rpmdb.sqlite", ("fedora", "40"))
    (bash,) = pkgs
    assert bash.purl == "pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40"
    assert [(f.path, f.algo, f.digest) for f in bash.files] == [
        ("/usr/bin/bash", "sha256", digest),
        ("/etc/bashrc", None, None),
    ]
    assert len(problems) == 2 and all("unreadable" in p for p in problems)


def test_rpm_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "rpmdb.sqlite"
    bad.write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    pkgs, problems = rpm.read_sqlite(str(bad), "/x", ("fedora", None))
    assert pkgs == [] and problems


@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpm tools not installed")
def test_real_rpmdb_made_by_rpm(tmp_path: Path) -> None:
    top, dbdir = tmp_path / "top", tmp_path / "db"
    (top / "SPECS").mkdir(parents=True)
    dbdir.mkdir()
    spec = top / "SPECS" / "t.spec"
    spec.write_text(
        "Name: hello-exuvia\nVersion: 1.2\nRelease: 3\nEpoch: 2\nSummary: t\nLicense: MIT\n"
        "BuildArch: noarch\n%description\nt\n%install\nmkdir -p %{buildroot}/usr/bin\n"
        "printf 'hello\\n' > %{buildroot}/usr/bin/hello-exuvia\n%files\n/usr/bin/hello-exuvia\n"
    )
    run = lambda *a: subprocess.run(a, capture_output=True, text=True, timeout=120, check=False)  # noqa: E731
    run(
        "rpmbuild",
        "-bb",
        "--quiet",
        "--define",
        f"_topdir {top}",
        "--define",
        "_db_backend sqlite",
        str(spec),
    )
    rpms = list((top / "RPMS").rglob("*.rpm"))
    if not rpms:
        pytest.skip("rpmbuild could not build here")
    run("rpm", "--initdb", "--dbpath", str(dbdir), "--define", "_db_backend sqlite")
    run(
        "rpm",
        "-i",
        "--justdb",
        "--nodeps",
        "--nosignature",
        "--dbpath",
        str(dbdir),
        "--define",
        "_db_backend sqlite",
        str(rpms[0]),
    )
    db = dbdir / "rpmdb.sqlite"
    if not db.is_file():
        pytest.skip("this rpm does not write sqlite databases")
    pkgs, problems = rpm.read_sqlite(str(db), "/var/lib/rpm/rpmdb.sqlite", ("fedora", "40"))
    assert problems == []
    (p,) = pkgs
    assert (p.name, p.version, p.licenses) == ("hello-exuvia", "2:1.2-3", ["MIT"])
    assert p.purl == "pkg:rpm/fedora/hello-exuvia@1.2-3?arch=noarch&distro=fedora-40&epoch=2"
    assert [(f.path, f.digest) for f in p.files] == [
        ("/usr/bin/hello-exuvia", hashlib.sha256(b"hello\n").hexdigest())
    ]


# -- Python -------------------------------------------------------------------------
def test_real_dist_info_of_this_venv() -> None:
    site = Path(zstandard.__file__).resolve().parents[1]
    dist = next(site.glob("zstandard-*.dist-info"))
    files = {str(dist / n): (dist / n).read_text() for n in ("METADATA", "RECORD")}
    kinds = {p: metadata_kind(p.encode()) or "" for p in files}
    pkgs, problems = python.collect(files, kinds)
    (z,) = pkgs
    assert (z.name, z.version) == ("zstandard", zstandard.__version__)
    assert z.purl == f"pkg:pypi/zstandard@{zstandard.__version__}"
    init = next(f for f in z.files if f.path.endswith("zstandard/__init__.py"))
    assert init.algo == "sha256"
    assert init.digest == hashlib.sha256(Path(init.path).read_bytes()).hexdigest()
    assert problems == []


def test_python_metadata_forms() -> None:
    site = "/usr/lib/python3/dist-packages"
    files = {
        f"{site}/Foo_Bar-1.0.dist-info/METADATA": (
            "Metadata-Version: 2.4\nName: Foo_Bar\nVersion: 1.0\n"
            "License-Expression: MIT OR Apache-2.0\n"
        ),
        f"{site}/Foo_Bar-1.0.dist-info/RECORD": (
            "../../../bin/foo,sha256=AAAA,4\nfoo/__init__.py,,\n"
        ),
        f"{site}/old.egg-info": "Metadata-Version: 1.1\nName: old\nVersion: 0.1\nLicense: UNKNOWN\n"
        "Classifier: License :: OSI Approved :: BSD License\n",
        f"{site}/eggy.egg-info/PKG-INFO": "Name: eggy\nVersion: 2\n",
        f"{site}/eggy.egg-info/installed-files.txt": "../eggy/__init__.py\n",
    }
    kinds = {p: metadata_kind(p.encode()) or "" for p in files}
    pkgs, _ = python.collect(files, kinds)
    by = {p.name: p for p in pkgs}
    assert by["Foo_Bar"].purl == "pkg:pypi/foo-bar@1.0"
    assert by["Foo_Bar"].licenses == ["MIT OR Apache-2.0"]
    assert [f.path for f in by["Foo_Bar"].files] == ["/usr/bin/foo", f"{site}/foo/__init__.py"]
    assert by["old"].licenses == ["BSD License"]
    assert [f.path for f in by["eggy"].files] == [f"{site}/eggy/__init__.py"]


# -- npm ----------------------------------------------------------------------------
def test_node_packages() -> None:
    files = {
        "/app/node_modules/@types/node/package.json": json.dumps(
            {"name": "@types/node", "version": "20.1.0", "license": "MIT"}
        ),
        "/app/node_modules/left-pad/package.json": json.dumps(
            {
                "name": "left-pad",
                "version": "1.3.0",
                "licenses": [{"type": "WTFPL"}],
                "author": {"name": "A"},
            }
        ),
        "/app/node_modules/bad/package.json": "{",
    }
    kinds = {p: metadata_kind(p.encode()) or "" for p in files}
    pkgs, problems = node.collect(files, kinds)
    assert [p.purl for p in pkgs] == ["pkg:npm/%40types/node@20.1.0", "pkg:npm/left-pad@1.3.0"]
    assert pkgs[1].licenses == ["WTFPL"] and pkgs[1].supplier == "A"
    assert pkgs[0].files[0].path == "/app/node_modules/@types/node/"
    assert problems == [
        "/app/node_modules/bad/package.json: not a package.json with a name and version"
    ]


# -- Java ---------------------------------------------------------------------------
def _jar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_jar_with_pom_properties_and_nested_jars() -> None:
    inner = _jar(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\n"
            b"Bundle-SymbolicName: org.x.y;singleton:=true\r\nBundle-Version: 2.1\r\n\r\n"
        }
    )
    outer = _jar(
        {
            "META-INF/MANIFEST.MF": (
                b"Manifest-Version: 1.0\nImplementation-Title: app\nImplementation-Ver\n sion: 9\n"
            ),
            "META-INF/maven/com.example/app/pom.properties": (
                b"#c\ngroupId=com.example\nartifactId=app\nversion=1.0.0\n"
            ),
            "BOOT-INF/lib/y.jar": inner,
        }
    )
    pkgs, problems = java.inspect_jar(io.BytesIO(outer), "/app/app.jar")
    assert problems == []
    assert [p.purl for p in pkgs] == ["pkg:maven/com.example/app@1.0.0", "pkg:maven/org.x.y@2.1"]
    assert pkgs[1].source == "/app/app.jar!/BOOT-INF/lib/y.jar"
    assert pkgs[1].files[0].path == "/app/app.jar"


def test_bad_and_bomb_jars_are_problems() -> None:
    pkgs, problems = java.inspect_jar(io.BytesIO(b"PK\3\4 not a zip"), "/a.jar")
    assert pkgs == [] and "not a readable zip" in problems[0]
    bomb = _jar({"META-INF/MANIFEST.MF": b"A" * (8 << 20)})
    pkgs, problems = java.inspect_jar(io.BytesIO(bomb), "/b.jar")
    assert pkgs == [] and "no pom.properties" in problems[0]


# -- paths, policy, os-release, purl, licenses --------------------------------------
@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (b"/var/lib/dpkg/status", "dpkg-status"),
        (b"/var/lib/dpkg/status.d/libc6", "dpkg-status.d"),
        (b"/var/lib/dpkg/status.d/libc6.md5sums", "dpkg-md5sums"),
        (b"/var/lib/dpkg/info/libc6:amd64.list", "dpkg-list"),
        (b"/var/lib/dpkg/info/libc6:amd64.postinst", None),
        (b"/lib/apk/db/installed", "apk-installed"),
        (b"/usr/lib/sysimage/rpm/rpmdb.sqlite", "rpm-sqlite"),
        (b"/var/lib/rpm/Packages", "rpm-bdb"),
        (b"/usr/lib/python3.12/site-packages/a-1.dist-info/METADATA", "python-metadata"),
        (b"/usr/lib/python3.12/site-packages/a-1.dist-info/sub/METADATA", None),
        (b"/app/node_modules/@s/n/package.json", "npm-package"),
        (b"/app/node_modules/n/lib/package.json", None),
        (b"/app/package.json", None),
        (b"/opt/app/lib/x.jar", "jar"),
        (b"/usr/lib/os-release", "os-release"),
        (b"/usr/bin/ls", None),
    ],
)
def test_metadata_kinds(path: bytes, kind: str | None) -> None:
    assert metadata_kind(path) == kind


def test_changed_policy_copies_metadata_outside_var() -> None:
    pol = CopyPolicy("changed")
    meta = b"/usr/lib/python3/dist-packages/a-1.dist-info/RECORD"
    assert pol.wants(meta, 10_000, changed=False)
    assert not pol.wants(b"/usr/lib/python3/dist-packages/a/core.py", 10_000, changed=False)
    assert pol.wants(b"/var/lib/dpkg/status", 5 << 20, changed=False)  # a big database too
    assert not wants_copy(meta, 100 << 20)  # over its cap
    assert not CopyPolicy("none").wants(meta, 10, changed=False)
    assert not wants_copy(b"/var/lib/rpm/Packages", 10)  # unsupported: not copied for us


def test_path_resolver_follows_directory_symlinks() -> None:
    r = PathResolver({"/bin": "usr/bin", "/lib": "/usr/lib", "/usr/lib64": "lib", "/loop": "/loop"})
    assert r.resolve("/bin/cat") == "/usr/bin/cat"
    assert r.resolve("/lib/x86_64-linux-gnu/libc.so.6") == "/usr/lib/x86_64-linux-gnu/libc.so.6"
    assert r.resolve("/usr/lib64/ld.so") == "/usr/lib/ld.so"
    assert r.resolve("/loop/x") == "/loop/x"  # a cycle ends, it does not hang
    assert r.resolve("/bin") == "/bin"  # the last component is not followed


def test_os_release() -> None:
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n# c\nBAD\n'
    assert os_release(text) == {
        "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
        "ID": "debian",
        "VERSION_ID": "12",
    }


@pytest.mark.parametrize(
    ("args", "ref"),
    [
        (
            ("deb", "libc6", "2.36-9+deb12u4", "debian", {"arch": "amd64", "distro": "debian-12"}),
            None,
        ),
        (("npm", "core", "1.0.0", "@angular", None), None),
        (("golang", "uuid", "v1.6.0", "github.com/google", None), None),
        (("pypi", "Foo_Bar", "1.0", None, None), None),
        (("maven", "b c", "1:2", "org.a", None), None),
        (("rpm", "bash", "5.2-3.fc40", "fedora", {"epoch": "1", "arch": "x86_64"}), None),
        (("cargo", "itoa", "1.0.11", None, None), None),
        (("golang", "stdlib", "1.22.0", None, None), None),
    ],
)
def test_purls_match_packageurl_python(args: tuple, ref: None) -> None:
    ptype, name, version, ns, quals = args
    expected = PackageURL(
        type=ptype, namespace=ns, name=name, version=version, qualifiers=quals
    ).to_string()
    assert purl(ptype, name, version, ns, quals) == expected


@pytest.mark.parametrize(
    ("text", "expr"),
    [
        ("MIT", "MIT"),
        ("mit license", "MIT"),
        ("Apache-2.0 OR MIT", "Apache-2.0 OR MIT"),
        ("(MIT or apache-2.0) AND BSD-3-Clause", "(MIT OR Apache-2.0) AND BSD-3-Clause"),
        ("GPL-2.0-only WITH Classpath-exception-2.0", "GPL-2.0-only WITH Classpath-exception-2.0"),
        ("GPL-2+", None),
        ("MIT AND", None),
        ("(MIT", None),
        ("Some custom license", None),
    ],
)
def test_license_expressions(text: str, expr: str | None) -> None:
    assert expression(text) == expr
