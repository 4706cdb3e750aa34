"""The case model over real bundles: two shell-less runc containers captured by the
real command line, filed into a case by the real CaseWriter, then verified and
summarized by the real `exuvia verify DIR` / `exuvia info DIR`, signed and not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from forensics.bundle.reader import BundleReader
from forensics.case import CaseWriter, bundle_file_name, load_case, verify_case
from forensics.signing import Signer, generate

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, cwd=REPO,
        timeout=300, check=False,
    )  # fmt: skip


def test_a_case_of_real_captures_verifies_and_each_bundle_is_the_one_named(
    lab: object, tmp_path: Path
) -> None:
    targets = [lab.runc(), lab.runc()]  # type: ignore[attr-defined]
    generate(tmp_path / "key")
    signer = Signer.from_file(tmp_path / "key")
    d = tmp_path / "case"
    w = CaseWriter.create(
        d, case_id="IR-local", examiner="tester", signer=signer,
        request={"target": "two runc containers", "workload": None},
    )  # fmt: skip
    names = [t.container_id[:20].lower() for t in targets]
    w.resolved(
        [{"namespace": "local", "name": n, "uid": t.container_id, "node": "this-host",
          "phase": "Running", "owners": [{"kind": "Lab", "name": "demo"}]}
         for n, t in zip(names, targets, strict=True)],
        at_ns=0,
    )  # fmt: skip
    for n, t in zip(names, targets, strict=True):
        file = bundle_file_name("local", n, "app")
        w.add_bundle("local", n, "app", file=file, uri=t.uri, node="this-host")
        w.started("local", n, "app")
        res = _cli("capture", t.uri, "-o", str(d / file), "-q", "--sign", str(tmp_path / "key"))
        assert res.returncode == 0, res.stdout + res.stderr
        m = BundleReader(d / file).manifest()
        w.finished(
            "local", n, "app", status="complete", file=file,
            manifest_sha256=next(x.split()[-1] for x in res.stdout.splitlines()
                                 if x.startswith("manifest sha256:")),
            size=(d / file).stat().st_size, signed_by=signer.fingerprint,
        )  # fmt: skip
        assert m["complete"] is True
    w.seal()

    case = load_case(d)
    assert case.state == "complete" and len(case.captured) == 2
    assert case.siblings() == {"Lab/demo:app": list(case.captured)}
    res = _cli("verify", str(d), "--key", str(tmp_path / "key.pub"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 of 2 bundles verify" in res.stdout and "custody seal:     matches" in res.stdout
    assert f"signature:        valid, by the given key: {signer.fingerprint}" in res.stdout
    res = _cli("info", str(d))
    assert res.returncode == 0 and "state:      complete" in res.stdout, res.stdout

    # the two real bundles exchanged under each other's names: both are caught
    a, b = (d / bundle_file_name("local", n, "app") for n in names)
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    for side in (".custody.jsonl",):
        sa, sb = Path(str(a) + side), Path(str(b) + side)
        ta, tb = sa.read_bytes(), sb.read_bytes()
        sa.write_bytes(tb)
        sb.write_bytes(ta)
    report = verify_case(d)
    assert not report.ok
    for check in report.bundles:
        text = " ".join(check.failures())
        assert check.report is not None and check.report.ok  # each is a sound bundle …
        assert (
            "is not the bundle case.json names" in text and "its target is" in text
        )  # … but not this one
    res = _cli("verify", str(d))
    assert res.returncode == 1 and "FAILED: case IR-local" in res.stdout
    json.loads((d / "case.json").read_text())  # still readable
