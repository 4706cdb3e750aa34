"""The sibling comparison over real replicas: shell-less runc containers of one image
captured by the real command line and filed by the real CaseWriter as the pods of
one Deployment; one of them stages the incident (a binary dropped in /tmp, run and
deleted; the config changed; a listener added), the others run clean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import CLEAN_ENV, Lab
from tests.support.replica_case import cli, file_replicas

pytestmark = pytest.mark.integration


def test_the_staged_replica_is_named_first(lab: Lab, tmp_path: Path) -> None:
    boxes = {
        "web-a": lab.runc(env=CLEAN_ENV),
        "web-b": lab.runc(),
        "web-c": lab.runc(env=CLEAN_ENV),
    }
    d = file_replicas(tmp_path / "case", boxes)
    for box in boxes.values():
        box.stop()
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
