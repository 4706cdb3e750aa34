"""The evidence bundle: one streamable tar file with hashes, manifest and custody.

The names below are imported on first use (PEP 562), not with the package: every
``forensics.bundle.*`` module import runs this file first, and the in-pod agent, which
writes a bundle and never reads or verifies one, should not pay for the reader and
the verifier at each start (tests/unit/test_k8s_agent.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forensics.bundle.format import FORMAT_VERSION, MANIFEST_NAME
    from forensics.bundle.reader import BundleReader
    from forensics.bundle.verify import VerifyReport, verify_bundle
    from forensics.bundle.writer import BundleWriter, MemberEntry

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "BundleReader",
    "BundleWriter",
    "MemberEntry",
    "VerifyReport",
    "verify_bundle",
]

_WHERE = {
    "FORMAT_VERSION": "format",
    "MANIFEST_NAME": "format",
    "BundleReader": "reader",
    "VerifyReport": "verify",
    "verify_bundle": "verify",
    "BundleWriter": "writer",
    "MemberEntry": "writer",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
