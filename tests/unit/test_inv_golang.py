"""Go build information: must equal what `go version -m` prints for the same binary."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from forensics.inventory.golang import GoBuildInfo, GoModule, NotGo, parse_modinfo
from tests.support.elfbuild import go_pointer_buildinfo
from tests.support.elfx import analyze_path, blob_of
from tests.support.gobuild import DEP, DEP_VERSION, build_go, go_version_m, have_go

needs_go = pytest.mark.skipif(not have_go(), reason="Go toolchain not installed")


@pytest.fixture(scope="module")
def gobins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not have_go():
        pytest.skip("Go toolchain not installed")
    d = tmp_path_factory.mktemp("go")
    bins = {
        "plain": build_go(d, "plain"),
        "stripped": build_go(d, "stripped", "-s -w"),
        "stamped": build_go(
            d, "stamped", "-X main.v=1 -buildid=abc/def", module="example.com/stamped"
        ),
    }
    # section headers removed (as sstrip does): Go finds the data segment instead
    data = bytearray(bins["stripped"].read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)
    struct.pack_into("<HH", data, 0x3C, 0, 0)
    (d / "sectionless").write_bytes(bytes(data))
    bins["sectionless"] = d / "sectionless"
    (d / "pointer").write_bytes(
        go_pointer_buildinfo(
            "go1.17.13",
            "path\texample.com/old\nmod\texample.com/old\t(devel)\t\n"
            "dep\tgolang.org/x/text\tv0.3.7\th1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=\n"
            "=>\tgolang.org/x/text\tv0.3.8\th1:abc=\n"
            'build\t"-key with space"="value \\"quoted\\""\nbuild\tCGO_ENABLED=0\n',
        )
    )
    bins["pointer"] = d / "pointer"
    return bins


@needs_go
@pytest.mark.parametrize("name", ["plain", "stripped", "stamped", "sectionless", "pointer"])
def test_build_info_equals_go_version_m(gobins: dict[str, Path], name: str) -> None:
    version, lines = go_version_m(gobins[name])
    info = analyze_path(gobins[name])
    assert info.go is not None, info.notes
    assert info.go.go_version == version
    assert info.go.render() == lines
    assert info.language == "Go"


@needs_go
def test_dependency_with_version_and_sum(gobins: dict[str, Path]) -> None:
    bi = analyze_path(gobins["plain"]).go
    assert bi is not None and bi.main is not None
    assert bi.path == "example.com/exuvia/goapp" and bi.main.version == "(devel)"
    dep = next(d for d in bi.deps if d.path == DEP)
    assert dep.version == DEP_VERSION and dep.sum.startswith("h1:")
    assert ("GOOS", "linux") in bi.settings and bi.setting("-compiler") == "gc"


@needs_go
def test_go_binary_facts(gobins: dict[str, Path]) -> None:
    info = analyze_path(gobins["plain"])
    assert info.linking == "static" and info.go_build_id
    assert analyze_path(gobins["sectionless"]).section_headers is False


@needs_go
def test_extract_keeps_only_a_little_of_a_go_binary(gobins: dict[str, Path]) -> None:
    blob = blob_of(gobins["plain"])
    assert len(blob.data) < 64 << 10 < gobins["plain"].stat().st_size


def test_pointer_format_without_go(tmp_path: Path) -> None:
    p = tmp_path / "old"
    p.write_bytes(go_pointer_buildinfo("go1.16", "path\tx\nmod\tx\t(devel)\t\n"))
    bi = analyze_path(p).go
    assert bi is not None and bi.go_version == "go1.16" and bi.path == "x"


def test_parse_modinfo_like_runtime_debug() -> None:
    text = (
        "path\tcmd/x\nmod\tcmd/x\tv1.0.0\th1:m=\ndep\ta.b/c\tv0.1.0\n"
        "=>\t./local\t(devel)\t\n\ndep\td.e/f\tv2.0.0\t\n"
        'build\tvcs.revision=abc\nbuild\t"weird=key"="a b"\nbuild\tempty=\n'
    )
    bi = parse_modinfo("go1.22.0", text)
    assert bi.main == GoModule("cmd/x", "v1.0.0", "h1:m=")
    assert bi.deps[0].replace == GoModule("./local", "(devel)", "")
    assert bi.deps[1] == GoModule("d.e/f", "v2.0.0", "")
    assert bi.settings == [("vcs.revision", "abc"), ("weird=key", "a b"), ("empty", "")]
    assert bi.render() + "\n" == text


@pytest.mark.parametrize(
    "bad",
    [
        "mod\tonly-one-column\n",
        "=>\ta\tb\tc\n",
        "build\tnoequals\n",
        "build\t=v\n",
        'build\tk="unterminated\n',
        "build\tk=has space\n",
    ],
)
def test_parse_modinfo_rejects_what_go_rejects(bad: str) -> None:
    with pytest.raises(NotGo):
        parse_modinfo("go1.22", bad)


def test_render_quotes_like_strconv() -> None:
    bi = GoBuildInfo("go1.22", settings=[("-ldflags", '-X "a b"'), ("k", "tab\there")])
    assert bi.render() == 'build\t-ldflags="-X \\"a b\\""\nbuild\tk="tab\\there"'
