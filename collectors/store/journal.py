"""A fleet case's journal into the store: ``exuvia push JOURNAL s3://BUCKET/PREFIX/``.

A fleet into the store (collectors/store/fleet_sink.py) journals its case in a
local directory while it runs: case.json (rewritten atomically as each pod
finishes), the case custody log (whose ``store.case`` entry names the prefix),
and, when the store stopped answering, the bundles and parts kept there. The
fleet itself ends with :func:`push_journal`; when it could not (the store still
gone at the end, or the client killed with ``kill -9``) the same call, through
``exuvia push``, finishes the case later:

* a journal never sealed (the client was killed): each pod still ``capturing``
  is looked for in the store: a sealed ``NAME.exv`` / ``NAME.exv.incomplete``
  (its hashes are the object's metadata) is recorded as such; else its agent's
  spool kept here is salvaged into the store as ``NAME.exv.incomplete``
  (collectors/store/journal_salvage.py) and recorded ``incomplete``; anything
  else is ``failed``, the reason saying what is left where (an unfinished
  upload, a ``.partial`` object, a spool nothing in which is vouched for). Pods not started are
  ``failed``, ``not started: …``. The case is sealed ``interrupted``.
* a bundle sealed while the store was gone and kept in two places
  (``NAME.exv.partial.parts/upload.json``: an unfinished upload, and the parts
  here) is finished: the parts here go into that upload, it is completed and
  sealed as any store capture is (copy with the retention, custody object);
* bundles kept in the journal go up as ``exuvia push`` sends any bundle
  (verified first, read back after), with their custody sidecars and, with
  ``--scan``, their scan results (``NAME.exv.yara.json``, scanned in the journal);
* with ``--scan`` (the rules recorded in ``store.case``), each bundle now in the
  store without results beside it is scanned there (collectors/store/journal_scan.py);
* then ``case.custody.jsonl``, ``case.json.sig`` and ``case.json`` last, with
  the retention and ``If-None-Match: *``.

What was stored is removed from the journal; anything else (kept parts, a spool
that holds data) stays, and is named.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from collectors.store.client import Store, StoreError
from collectors.store.fallback import PARTS_SUFFIX, UPLOAD_FILE
from collectors.store.journal_salvage import (
    META_SALVAGED,
    SPOOL_SUFFIX,
    Salvaged,
    left_behind,
    salvage_spool,
    spool_of,
)
from collectors.store.journal_scan import scan_finished
from collectors.store.lock import LockSpec
from collectors.store.push import Pushed, push_bundle, read_back_sha256
from collectors.store.seal import (
    CUSTODY_SUFFIX,
    INCOMPLETE_SUFFIX,
    META_FILE_SHA,
    META_MANIFEST_SHA,
    PARTIAL_SUFFIX,
    SCAN_SUFFIX,
    Digest,
    object_metadata,
    put_small,
    seal_staged,
)
from collectors.store.uri import S3Url
from forensics.case import CaseWriter
from forensics.case.format import (
    CAPTURING,
    CASE_CAPTURING,
    CASE_FILE,
    COMPLETE,
    CUSTODY_FILE,
    FAILED,
    INCOMPLETE,
    SIGNATURE_FILE,
)
from forensics.case.model import read_case_doc
from forensics.custody import CustodyLog, default_operator
from forensics.errors import BundleError

#: case.json's ``interrupted`` for a case finished from the journal of a killed client
KILLED = "the client died before the case was sealed (finished from its journal)"


def journal_url(directory: Path) -> str | None:
    """The ``s3://…/`` prefix a case journal belongs to (its ``store.case`` entry)."""
    try:
        lines = (directory / CUSTODY_FILE).read_bytes().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("action") == "store.case":
            url = (entry.get("details") or {}).get("url")
            return url if isinstance(url, str) else None
    return None


def push_journal(
    store: Store, directory: Path, base: S3Url, lock: LockSpec, *, examiner: str | None = None
) -> list[Pushed]:
    """The case in ``directory`` into ``base``; StoreError naming the journal if
    the store refuses (nothing is removed from it then)."""
    recorded = journal_url(directory)
    if recorded is not None and recorded != str(base):
        raise StoreError(f"{directory} is the journal of the case {recorded}, not {base}")
    try:
        present = set(store.list_keys(base.bucket, base.key))
        if base.child(CASE_FILE).key in present:
            raise StoreError(f"{base} already holds case.json; that case is finished")
        doc = _load(directory)
        salvaged: list[Pushed] = []
        if doc.get("state") == CASE_CAPTURING:
            salvaged = _seal_killed(store, directory, base, present, lock,
                                    examiner or default_operator())  # fmt: skip
            doc = _load(directory)
        pushed = [_finish_split(store, parts, base, lock)
                  for parts in sorted(directory.glob("*" + PARTIAL_SUFFIX + PARTS_SUFFIX))
                  if (parts / UPLOAD_FILE).is_file()]  # fmt: skip
        pushed[:0] = salvaged
        split = len(pushed)
        until = lock.until()
        scans: list[Pushed] = []
        for b in doc["bundles"]:
            f = b.get("file")
            if f and (directory / f).is_file() and base.child(f).key not in present:
                pushed.append(push_bundle(store, directory / f, base.child(f), lock))
                side = directory / (f + SCAN_SUFFIX)  # --scan's results of a local bundle
                if side.is_file():
                    scans.append(_put_case_file(store, side, base.child(side.name), lock,
                                                until, present))  # fmt: skip
        stored = [p.url.rsplit("/", 1)[-1] for p in pushed[split:]]
        pushed.extend(scans)
        # --scan: what the fleet could not scan in the store (collectors/store/journal_scan.py)
        pushed.extend(scan_finished(store, directory, base, lock, doc, present))
        for name in (CUSTODY_FILE, SIGNATURE_FILE, CASE_FILE):  # case.json last
            if (directory / name).exists():
                pushed.append(_put_case_file(store, directory / name, base.child(name), lock,
                                             until, present))  # fmt: skip
    except (StoreError, OSError) as err:
        raise StoreError(
            f"{err}; the case is kept in {directory}/ (case.json there names every pod and "
            f"where its bundle is); once the store answers: exuvia push {directory} {base}"
        ) from None
    _tidy(directory, stored)
    return pushed


def _finish_split(store: Store, parts: Path, base: S3Url, lock: LockSpec) -> Pushed:
    """A bundle sealed while the store was gone, kept in two places (``upload.json``:
    the upload holding some parts, the others here): the parts kept here are
    uploaded into that upload, it is completed, and the bundle is sealed as
    every store capture is (copy with the retention, custody object)."""
    doc = json.loads((parts / UPLOAD_FILE).read_bytes())
    staging = S3Url(str(doc["bucket"]), str(doc["key"]))
    if staging.bucket != base.bucket or not staging.key.startswith(base.key):
        raise StoreError(f"{parts / UPLOAD_FILE} names {staging}, which is not under {base}")
    custody = CustodyLog(examiner=default_operator())
    custody.entries = [json.loads(line) for line in
                       (parts / ("bundle" + CUSTODY_SUFFIX)).read_bytes().splitlines()
                       if line.strip()]  # fmt: skip
    target = next((str((e.get("details") or {}).get("target", "")) for e in custody.entries
                   if e.get("action") == "capture.started"), "")  # fmt: skip
    # as the upload was created (an upload.json of before 2026-12-07 does not say:
    # then parts carried their SHA-256 over https only)
    sums = bool(doc.get("part_checksums", not (store.endpoint or "").startswith("http://")))
    done = list(doc["parts_in_store"])
    for number in doc["parts_here"]:
        data = (parts / f"{int(number):05d}.part").read_bytes()
        extra = {"ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode()}
        resp = store.call(f"uploading part {number} of {staging}", store.client.upload_part,
                          Bucket=staging.bucket, Key=staging.key, UploadId=doc["upload_id"],
                          PartNumber=int(number), Body=data,
                          **(extra if sums else {}))  # fmt: skip
        done.append({"PartNumber": int(number), "ETag": resp["ETag"], **(extra if sums else {})})
    custody.record("store.resumed", parts=doc["parts_here"], directory=str(parts),
                   upload_id=doc["upload_id"])  # fmt: skip
    done.sort(key=lambda p: int(p["PartNumber"]))
    staged = store.call(f"completing the upload of {staging}",
                        store.client.complete_multipart_upload, Bucket=staging.bucket,
                        Key=staging.key, UploadId=doc["upload_id"], IfNoneMatch="*",
                        MultipartUpload={"Parts": done})  # fmt: skip
    url = S3Url(staging.bucket, staging.key[: -len(PARTIAL_SUFFIX)])
    digest = Digest(doc["manifest_sha256"], doc["file_sha256"], int(doc["bytes"]),
                    bool(doc["complete"]))  # fmt: skip
    until = lock.until()
    sealed = seal_staged(store, url, staged, digest, custody=custody, lock=lock, until=until,
                         meta=object_metadata({"exuvia-target": target[:512]}),
                         signer=None)  # fmt: skip
    back = read_back_sha256(store, sealed.final)
    if back != digest.file_sha256:  # the parts kept here are removed only when it matched
        raise StoreError(f"read back, {sealed.final} has SHA-256 {back[:16]}…, not the sealed "
                         f"bundle's {digest.file_sha256[:16]}…")  # fmt: skip
    shutil.rmtree(parts)
    return Pushed(str(sealed.final), digest.file_bytes, digest.file_sha256,
                  digest.manifest_sha256, sealed.version_id, lock.describe(until))  # fmt: skip


def _put_case_file(  # noqa: PLR0917 - one call site
    store: Store, path: Path, url: S3Url, lock: LockSpec, until: Any, present: set[str]
) -> Pushed:
    """One of the case's files, read back after. Already there (a client that died
    between the custody log and case.json) with the same bytes: left as it is."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    version = None
    if url.key not in present:
        version = put_small(store, url, data, lock, until=until, meta={}).get("VersionId")
    if read_back_sha256(store, url) != sha:
        raise StoreError(f"read back, {url} differs from {path}; refusing to overwrite evidence")
    return Pushed(str(url), len(data), sha, None, version, lock.describe(until))


def _load(directory: Path) -> dict[str, Any]:
    try:
        return read_case_doc(directory)
    except BundleError as err:  # as a StoreError: push_journal names the journal
        raise StoreError(str(err)) from None


def _seal_killed(  # noqa: PLR0917 - one call site
    store: Store, directory: Path, base: S3Url, present: set[str], lock: LockSpec, examiner: str
) -> list[Pushed]:
    """Seal the case a killed client left: each pod in flight as the store has it,
    or salvaged from its agent's stream kept here (collectors/store/journal_salvage.py)."""
    salvaged: list[Pushed] = []
    w = CaseWriter.resume(directory, examiner=examiner)
    w.note("case.resumed", journal=str(directory), url=str(base))
    for b in w.bundle_entries():
        if b["status"] != CAPTURING or not b.get("file"):
            continue
        where = (b["namespace"], b["pod"], b["container"])
        f = str(b["file"])
        for name, status in ((f, COMPLETE), (f + INCOMPLETE_SUFFIX, INCOMPLETE)):
            if base.child(name).key in present:
                meta = store.head(base.bucket, base.child(name).key)
                m = meta.get("Metadata") or {}
                w.finished(*where, status=status, file=name,
                           manifest_sha256=m.get(META_MANIFEST_SHA),
                           file_sha256=m.get(META_FILE_SHA), size=meta.get("ContentLength"),
                           reason=None if status == COMPLETE else
                           ("salvaged from the agent's stream kept in the journal after the "
                            "client died (an earlier push stored it)" if META_SALVAGED in m else
                            "sealed in the store before the client died; its manifest says what "
                            "it lacks"))  # fmt: skip
                break
        else:
            spool = spool_of(directory, f)
            got = None
            if spool is not None:
                got = salvage_spool(store, directory, base, f, lock, examiner, present)
            if isinstance(got, Salvaged):
                p = got.pushed
                w.finished(*where, status=INCOMPLETE, file=got.file, reason=got.reason,
                           manifest_sha256=p.manifest_sha256, file_sha256=p.file_sha256,
                           size=p.bytes)  # fmt: skip
                # read back and matched, and case.json says where it is now: the spool goes
                (directory / (f + SPOOL_SUFFIX)).unlink()
                salvaged.append(p)
                continue
            w.finished(*where, status=FAILED, reason=_cut_off(directory, base, f, present, got))
    w.seal(interrupted=KILLED)
    return salvaged


def _cut_off(directory: Path, base: S3Url, f: str, present: set[str], why: str | None) -> str:
    left = left_behind(directory, base, f, present)
    spool = spool_of(directory, f)
    if spool is not None:
        left.append(f"what the agent sent is kept in {spool}" + (f" ({why})" if why else ""))
    return "cut off: the client died mid-capture; " + "; ".join(left)


def _tidy(directory: Path, stored: list[str]) -> None:
    """Remove what is now in the store, and empty spools; name what stays."""
    sidecars = [n + suffix for n in stored for suffix in (CUSTODY_SUFFIX, SCAN_SUFFIX)]
    for name in (CASE_FILE, CUSTODY_FILE, SIGNATURE_FILE, *stored, *sidecars):
        (directory / name).unlink(missing_ok=True)
    for spool in directory.glob("*" + SPOOL_SUFFIX):
        if spool.is_file() and not spool.stat().st_size:
            spool.unlink()
    left = sorted(p.name for p in directory.iterdir())
    if not left:
        directory.rmdir()
        return
    sys.stderr.write(f"exuvia: kept in {directory}/ (not in the store): {', '.join(left)}\n")
