"""A pod cut off by ``kill -9`` of its client: its agent's stream, kept in the
journal, salvaged into the store by ``exuvia push JOURNAL`` (collectors/store/journal.py).

The spool ``JOURNAL/NAME.exv.agent-stream`` is the agent's bundle exactly as it
came over the exec stream: cut off mid-stream (checkpoints, no manifest), or
whole (the client died while it made its own bundle of it, e.g. with the store
gone and the parts of that bundle going to ``NAME.exv.partial.parts/``). Either
way it is salvaged by the code ``exuvia salvage`` runs (forensics/bundle/salvage.py:
only the members its checkpoints, or its manifest, vouch for; ``complete:
false``; ``salvaged_from``), into a private directory of the journal (never
under a final name until whole), and pushed as ``NAME.exv.incomplete`` the way
``exuvia push`` sends a bundle (verified before, read back after, the lock given
to push, ``If-None-Match: *``, its custody object). The spool is removed by the
caller only once that object was read back and matched, and case.json says so.
A spool nothing in which is vouched for stays, named in the pod's ``failed`` reason.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from collectors.store.client import Store, StoreError
from collectors.store.fallback import PARTS_SUFFIX, UPLOAD_FILE
from collectors.store.lock import LockSpec
from collectors.store.push import Pushed, push_bundle
from collectors.store.seal import INCOMPLETE_SUFFIX, PARTIAL_SUFFIX
from collectors.store.uri import S3Url
from forensics.bundle.salvage import salvage
from forensics.errors import BundleError, OutputError

SPOOL_SUFFIX = ".agent-stream"
#: the object metadata of a salvaged bundle: the SHA-256 of the spool it came from
META_SALVAGED = "exuvia-salvaged-from-sha256"
_PRIVATE = ".salvage-"


@dataclass
class Salvaged:
    file: str
    pushed: Pushed
    reason: str


def spool_of(directory: Path, f: str) -> Path | None:
    """The pod's spool when it holds anything."""
    spool = directory / (f + SPOOL_SUFFIX)
    return spool if spool.is_file() and spool.stat().st_size else None


def salvage_spool(  # noqa: PLR0917 - one call site
    store: Store, directory: Path, base: S3Url, f: str, lock: LockSpec, examiner: str,
    present: set[str],
) -> Salvaged | str:  # fmt: skip
    """Salvage the spool of bundle ``f`` into ``base/f.incomplete``; the reason it
    could not be when nothing in it is vouched for (StoreError when the store fails)."""
    spool = directory / (f + SPOOL_SUFFIX)
    url = base.child(f + INCOMPLETE_SUFFIX)
    for stale in directory.glob(_PRIVATE + "*"):  # an earlier push killed while it salvaged
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp = Path(tempfile.mkdtemp(dir=directory, prefix=_PRIVATE))
    except OSError as err:
        raise StoreError(f"cannot write in {directory}: {err.strerror}") from None
    try:
        try:
            res = salvage(spool, tmp / url.name, examiner=examiner, whole_ok=True,
                          argv=["exuvia", "push", str(directory), str(base)])  # fmt: skip
        except (BundleError, OutputError) as err:
            return f"not salvaged: {err}"
        pushed = push_bundle(store, res.path, url, lock, meta={META_SALVAGED: res.source_sha256})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if pushed.file_sha256 != res.file_sha256:  # push_bundle read it back: what it sent
        raise StoreError(f"{url} does not hold the bundle salvaged from {spool}")
    if res.banner.startswith("WHOLE"):
        what = (f"the agent's stream was whole (its manifest vouches for {res.members} "
                f"members, {res.records} records) but the client died before its own bundle "
                f"of it was sealed")  # fmt: skip
    else:
        dropped = f", {res.dropped} after it cut off" if res.dropped else ""
        what = (f"up to checkpoint {res.checkpoint}: {res.members} members, {res.records} "
                f"records{dropped}")  # fmt: skip
    reason = (
        f"salvaged after the client died mid-capture, from the agent's stream kept in {spool} "
        f"(sha256 {res.source_sha256[:16]}…; {what}; the pod's Kubernetes facts and the "
        f"client's own custody log were never written; the spool is removed once this object "
        f"was read back and matched); " + "; ".join(left_behind(directory, base, f, present))
    )
    return Salvaged(url.name, pushed, reason)


def left_behind(directory: Path, base: S3Url, f: str, present: set[str]) -> list[str]:
    """What else a pod cut off left, and what push does with it: nothing (an
    unfinished upload is left to the bucket's lifecycle rule; kept parts stay)."""
    staging = base.child(f + PARTIAL_SUFFIX)
    if staging.key in present:
        out = [f"its sealed bundle is kept as {staging} (no retention)"]
    else:
        out = [f"no object holds the client's own bundle (at most an unfinished upload of "
               f"{staging}, never readable; push neither completes nor aborts it: the bucket's "
               f"AbortIncompleteMultipartUpload lifecycle rule removes it)"]  # fmt: skip
    parts = directory / (f + PARTIAL_SUFFIX + PARTS_SUFFIX)
    if (parts / UPLOAD_FILE).is_file():
        out.append(f"the parts the store did not take are in {parts}/")
    elif parts.is_dir():
        out.append(f"the parts of it the store did not take are kept in {parts}/ (a bundle "
                   f"never sealed; push leaves them)")  # fmt: skip
    return out
