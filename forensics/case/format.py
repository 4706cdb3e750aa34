"""Names, versions and states of a case directory (docs/case-format.md).

A case is a directory::

    case.json                 what was asked, what it resolved to, every bundle and its state
    case.json.sig             optional Ed25519 signature of case.json (``--sign``)
    case.custody.jsonl        the case's chain-of-custody log, one entry per action
    NS_POD_CONTAINER.exv      one bundle per pod container (``.exv.incomplete`` when cut)
    NS_POD_CONTAINER.exv.custody.jsonl   each bundle's own sealed custody log
"""

from __future__ import annotations

import re

from forensics.errors import BundleError, BundleVersionError

CASE_FILE = "case.json"
SIGNATURE_FILE = "case.json.sig"
CUSTODY_FILE = "case.custody.jsonl"
CASE_FORMAT = "exuvia-case"
CASE_VERSION = "1.0"
BUNDLE_SUFFIX = ".exv"
INCOMPLETE_SUFFIX = ".incomplete"
#: case.json is JSON we wrote; anything this large is refused unread
MAX_CASE_BYTES = 64 << 20

# a bundle's state in case.json
PENDING = "pending"  # not started yet
CAPTURING = "capturing"  # in flight when case.json was written
COMPLETE = "complete"  # a sealed, complete bundle
INCOMPLETE = "incomplete"  # a sealed bundle that says what it lacks (stream cut, pod gone...)
FAILED = "failed"  # nothing captured: the reason says why (no bundle file, or none usable)
BUNDLE_STATES = (PENDING, CAPTURING, COMPLETE, INCOMPLETE, FAILED)
FINAL_STATES = (COMPLETE, INCOMPLETE, FAILED)

# the case's state
CASE_CAPTURING = "capturing"  # still being written (or the writer died: see the bundles)
CASE_COMPLETE = "complete"  # every bundle complete
CASE_PARTIAL = "partial"  # sealed; some bundles incomplete or failed
CASE_INTERRUPTED = "interrupted"  # sealed after Ctrl-C / SIGTERM: in-flight bundles incomplete
CASE_FAILED = "failed"  # sealed; nothing was captured
CASE_STATES = (CASE_CAPTURING, CASE_COMPLETE, CASE_PARTIAL, CASE_INTERRUPTED, CASE_FAILED)

#: Kubernetes names (DNS labels for namespaces and containers, DNS subdomains for
#: pods) never contain "_", so "_" separates the parts of a bundle's file name
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def bundle_file_name(namespace: str, pod: str, container: str) -> str:
    """``NS_POD_CONTAINER.exv``; ValueError for a part that is not a Kubernetes name."""
    for part in (namespace, pod, container):
        if not _K8S_NAME.match(part) or len(part) > 253:
            raise ValueError(f"not a Kubernetes name: {part!r}")
    return f"{namespace}_{pod}_{container}{BUNDLE_SUFFIX}"


def safe_file_name(name: object) -> str | None:
    """``name`` when it is a plain file name inside the case directory (no
    separator, no dot first, no control bytes); else None. case.json is read as
    untrusted input: a name from it is never a path."""
    if isinstance(name, str) and _SAFE_FILE.match(name) and name not in (".", ".."):
        return name
    return None


def check_case_version(version: object) -> None:
    """Refuse a newer major version, and anything that is not a version."""
    text = str(version)
    major, dot, minor = text.partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise BundleError(f"case.json has no valid format version ({text[:40]!r})")
    if int(major) > int(CASE_VERSION.split(".", maxsplit=1)[0]):
        raise BundleVersionError(
            f"case format {text} is newer than this exuvia understands (it reads "
            f"{CASE_VERSION.split('.', maxsplit=1)[0]}.x)"
        )
