"""A case read as one, over real replicas: shell-less runc containers of one image
captured by the real command line and filed by the real CaseWriter as the pods of
one Deployment; one of them stages the incident (a binary dropped in /tmp, run and
deleted; the config changed; a listener added), the others run clean. The sibling
comparison names the staged one first; the case timeline merges all three."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from forensics.timeline import Query
from forensics.timeline.case import open_case_timeline
from forensics.timeline.case_pivots import CasePivots
from tests.integration.conftest import CLEAN_ENV, Lab
from tests.support.replica_case import cli, file_replicas

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def staged_case(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    boxes = {
        "web-a": lab.runc(env=CLEAN_ENV),
        "web-b": lab.runc(),
        "web-c": lab.runc(env=CLEAN_ENV),
    }
    d = file_replicas(tmp_path_factory.mktemp("staged") / "case", boxes)
    for box in boxes.values():
        box.stop()
    yield d


def test_the_staged_replica_is_named_first(staged_case: Path) -> None:
    d = staged_case
    res = cli("case", "diff", str(d), "--output", "json")
    assert res.returncode == 0, res.stderr
    (g,) = json.loads(res.stdout)["groups"]
    assert g["group"] == "Deployment/web:app"
    first, *rest = g["ranking"]
    assert first["bundle"] == "local/web-b/app" and first["score"] > 0
    assert all(r["score"] == 0 for r in rest), rest
    found = {(x["kind"], x["key"]): x for x in g["differences"]}
    dropped = found[("executable", "/tmp/.x")]  # the dropped binary, by its captured hash
    assert dropped["bundles"] == ["local/web-b/app"] and dropped["values"]["local/web-b/app"][
        0
    ].startswith("sha256:")
    assert dropped["refs"]["local/web-b/app"][0].startswith("artifacts/binaries")
    assert found[("listener", "tcp 0.0.0.0:4444")]["bundles"] == ["local/web-b/app"]
    assert found[("file", "/etc/app/app.conf")]["bundles"] == ["local/web-b/app"]
    assert all(x["bundles"] == ["local/web-b/app"] for x in g["differences"])
    text = cli("case", "diff", str(d)).stdout
    assert text.index("local/web-b/app") < text.index("local/web-a/app")
    assert "executable /tmp/.x: only in 1 of 3" in text


def test_identical_replicas_show_no_difference(lab: Lab, tmp_path: Path) -> None:
    boxes = {f"web-{i}": lab.runc(env=CLEAN_ENV) for i in range(3)}
    d = file_replicas(tmp_path / "case", boxes)
    for box in boxes.values():
        box.stop()
    res = cli("case", "diff", str(d), "--output", "json")
    assert res.returncode == 0, res.stderr
    (g,) = json.loads(res.stdout)["groups"]
    assert g["differences"] == [], g["differences"]
    assert "no differences: the replicas look alike" in cli("case", "diff", str(d)).stdout


def test_one_timeline_of_every_replica(staged_case: Path, tmp_path: Path) -> None:
    out = tmp_path / "case.jsonl"
    res = cli("timeline", str(staged_case), "-o", str(out))
    assert res.returncode == 0, res.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["pod"] for r in recs} == {"web-a", "web-b", "web-c"}
    assert all(r["namespace"] == "local" and r["container"] == "app" for r in recs)
    assert [r["timestamp_ns"] for r in recs] == sorted(r["timestamp_ns"] for r in recs)
    implant = [r for r in recs if r["kind"] == "process.started" and "implant" in r["message"]]
    assert implant and {r["pod"] for r in implant} == {"web-b"}
    for pod in ("web-a", "web-b", "web-c"):  # each bundle's own timeline, all of it
        alone = cli("timeline", str(staged_case / f"local_{pod}_app.exv"), "-o", "-", "-q")
        assert len(alone.stdout.splitlines()) == sum(r["pod"] == pod for r in recs)
    assert "timeline of case IR-replicas: " in res.stderr


def test_pivots_from_the_implant_find_its_binary_in_the_clean_pods(staged_case: Path) -> None:
    """The dropped /tmp/.x is a copy of the image's /app/target (target.c copies
    itself): pivoting on its process start finds that file, by hash, in every
    other pod, and the same executable path in none."""
    with open_case_timeline(staged_case) as ct:
        (start,) = [
            ce
            for ce in ct.events(Query(kinds=("process.started",)), pods=["web-b"])
            if "implant" in ce.event.message
        ]
        keys, found = CasePivots(ct).pivots(start)
        assert keys.exes == ("/tmp/.x",) and len(keys.hashes) == 1
        same_file = {(p.where.pod, p.detail) for p in found if p.kind == "same file"}
        assert ("web-a", "/app/target") in same_file and ("web-c", "/app/target") in same_file
        assert not [p for p in found if p.kind == "same executable"]
        for p in found:
            assert p.where.pod in ("web-a", "web-c")
