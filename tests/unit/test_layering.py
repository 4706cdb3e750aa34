"""The layers stay apart: the in-pod agent (collectors + forensics) must run
without textual, and the evidence model must not depend on live acquisition."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import importlib, pkgutil, sys
import {pkg}
for m in pkgutil.walk_packages({pkg}.__path__, "{pkg}."):
    importlib.import_module(m.name)
bad = sorted(n for n in sys.modules if n.split(".")[0] in {forbidden!r})
print(",".join(bad))
"""


@pytest.mark.parametrize(
    ("pkg", "forbidden"),
    [
        ("forensics", ["textual", "rich", "tui", "collectors", "kubernetes"]),
        ("collectors", ["textual", "rich", "tui"]),
    ],
)
def test_package_imports_without_forbidden_layers(pkg: str, forbidden: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(pkg=pkg, forbidden=set(forbidden))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{pkg} pulled in {out.stdout.strip()}"
