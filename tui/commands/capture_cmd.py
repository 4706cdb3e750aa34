"""`exuvia capture TARGET -o FILE`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from collectors.capture import ZSTD_LEVEL, ZSTD_THREADS, CaptureOptions, CaptureResult, capture
from collectors.targets import SCHEMES, parse_uri, resolve
from forensics.custody import default_operator
from forensics.errors import ExuviaError, TargetError
from tui.commands import k8s_cmd
from tui.commands.memory_options import add_memory_options, memory_from_args
from tui.commands.options import add_capture_options, add_output_format, print_json
from tui.commands.store_opts import add_store_options, lock_from, path_or_s3, store_from


def register(sub: Any) -> None:
    p = sub.add_parser(
        "capture",
        help="capture a running container into an evidence bundle",
        description="Capture a running shell-less container, read-only, into one "
        "evidence bundle. TARGET is one of: " + ", ".join(SCHEMES) + ".",
    )
    p.add_argument("target", metavar="TARGET", help="e.g. podman://web, runc://ID, pid://1234")
    p.add_argument(
        "-o", "--out", dest="output", required=True, type=path_or_s3, metavar="FILE",
        help="the bundle file (written as FILE.partial, renamed when sealed), or "
        "s3://BUCKET/PREFIX/NAME.exv to stream it into an evidence store; for a fleet "
        "capture (-l, -A, k8s://NS/KIND/NAME) the case directory",
    )  # fmt: skip
    add_output_format(p)
    add_capture_options(p)
    add_memory_options(p)
    p.add_argument(
        "--sign",
        type=Path,
        metavar="KEYFILE",
        help="sign the manifest with this Ed25519 private key (PEM or OpenSSH, unencrypted; "
        "`exuvia keygen` or `openssl genpkey -algorithm ed25519` makes one). Only the "
        "public key's fingerprint is recorded; check with `exuvia verify FILE --key PUB`",
    )
    p.add_argument(
        "--zstd-level",
        type=_zstd_level,
        default=ZSTD_LEVEL,
        metavar="N",
        help=f"zstd compression level, 1-19 (default {ZSTD_LEVEL}; higher is smaller and slower)",
    )
    p.add_argument(
        "--zstd-threads",
        type=int,
        choices=range(9),
        default=ZSTD_THREADS,
        metavar="N",
        help=f"zstd worker threads, 0-8 (default {ZSTD_THREADS}: compress on the writing thread)",
    )
    p.add_argument(
        "--compress-thread",
        choices=("on", "off"),
        default="on",
        help="compress, hash and write the bundle on a worker thread of the capturing "
        "process (default on; off: all on the writing thread, as before)",
    )
    p.add_argument(
        "--scan",
        type=Path,
        metavar="RULES",
        help="scan every regular file the capture reads for its hash (copied or not) with "
        "these YARA rules (a file or a directory of *.yar/*.yara), in the same read; "
        "matches go to artifacts/yara/ in the bundle. k8s:// targets (one pod or a fleet): "
        "each bundle is scanned on the client once sealed, as `exuvia scan` does "
        "(BUNDLE.yara.json beside it; with -o s3://, read back from the stored object as a "
        "stream, the results put beside it). The rules are compiled before anything is "
        "captured (docs/scan.md)",
    )
    k8s_cmd.add_k8s_options(p)
    k8s_cmd.add_fleet_options(p)
    add_store_options(p, fallback=True)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=run)


def _zstd_level(text: str) -> int:
    try:
        level = int(text)
    except ValueError:
        level = 0
    if not 1 <= level <= 19:
        raise argparse.ArgumentTypeError(f"expected a level from 1 to 19, got {text!r}")
    return level


class _Progress:
    def __init__(self, quiet: bool) -> None:  # progress goes to stderr, never stdout
        self.quiet = quiet or not sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, phase: str, stats: Any) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if stats is not None and now - self.last < 0.2:
            return
        self.last = now
        line = f"[{now - self.t0:6.1f}s] {phase}"
        if stats is not None:
            line += (
                f": {stats.entries} entries, {stats.hashed_bytes / 1e6:.1f} MB hashed, "
                f"{stats.copied_files} files copied"
            )
        sys.stderr.write("\r\x1b[2K" + line)
        sys.stderr.flush()

    def done(self) -> None:
        if not self.quiet:
            sys.stderr.write("\r\x1b[2K")


def options_from(args: argparse.Namespace, output: Path) -> CaptureOptions:
    signer = None
    if getattr(args, "sign", None) is not None:
        from forensics.signing import Signer  # noqa: PLC0415 - cryptography only when signing

        signer = Signer.from_file(args.sign)
    try:
        memory = memory_from_args(args)
    except argparse.ArgumentTypeError as err:
        raise ExuviaError(str(err)) from None
    return CaptureOptions(
        output=output,
        examiner=args.examiner or default_operator(),
        case=args.case,
        files=args.files,
        max_file_size=args.max_file_size,
        compress=args.compress,
        level=getattr(args, "zstd_level", ZSTD_LEVEL),
        redact=args.redact,
        argv=list(sys.argv),
        # zstd in the writing process itself: the filesystem reader process already
        # takes the other core, and zstd's worker threads doubled its CPU time
        # for no gain in wall time (docs/performance.md)
        threads=getattr(args, "zstd_threads", ZSTD_THREADS),
        compress_thread=getattr(args, "compress_thread", "on") == "on",
        signer=signer,
        memory=memory,
    )


def result_doc(res: CaptureResult) -> dict[str, Any]:
    """``capture --output json``: the schema in docs/scripting.md."""
    return {
        "format": "exuvia-capture-result",
        "version": 1,
        "bundle": str(res.path),
        "complete": res.complete,
        "incomplete_reason": res.incomplete_reason or None,
        "manifest_sha256": res.manifest_sha256,
        "file_sha256": res.file_sha256,
        "bytes": res.file_bytes,
        "records": dict(sorted(res.counts.items())),
        "skipped": res.skips,
        "custody_log": str(res.custody_path),
        "signed_by": res.signed_by,
        "warnings": res.warnings,
        "exit_status": 0 if res.complete else 3,
    }


def print_result(res: CaptureResult, output_format: str = "text") -> None:
    if output_format == "json":
        print_json(result_doc(res))
        return
    state = "complete" if res.complete else f"INCOMPLETE ({res.incomplete_reason})"
    print(f"bundle:          {res.path} ({state})")
    print(f"manifest sha256: {res.manifest_sha256}")
    print(f"file sha256:     {res.file_sha256}")
    print(f"size:            {res.file_bytes} bytes")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(res.counts.items()))
    print(f"records:         {counts}")
    print(f"skipped:         {res.skips} (see `exuvia info {res.path}`)")
    print(f"custody log:     {res.custody_path}")
    if res.signed_by:
        print(f"signed by:       {res.signed_by}")


def scan_hook(args: argparse.Namespace) -> Any:
    """``--scan RULES`` compiled (RulesError, file:line, before anything is captured)."""
    if getattr(args, "scan", None) is None:
        return None
    from forensics.scan.capture_hook import CaptureScan  # noqa: PLC0415 - the engine on demand
    from forensics.scan.rules import compile_rules  # noqa: PLC0415

    return CaptureScan(compile_rules(args.scan))


def run(args: argparse.Namespace) -> int:
    if args.target.strip().lower().startswith("k8s://") and k8s_cmd.is_fleet(args):
        return k8s_cmd.run_fleet_capture(args)
    if args.selector or args.all_namespaces:
        raise TargetError("-l/--selector and -A select Kubernetes pods: use a k8s:// target")
    if isinstance(args.output, str):
        return run_to_store(args)
    if parse_uri(args.target)[0] == "k8s":
        return k8s_cmd.run_capture(args)  # --scan: the sealed bundle, on the client
    hook = scan_hook(args)  # bad rules fail before anything runs
    opts = options_from(args, args.output)  # a bad signing key fails before anything runs
    opts.scan = hook
    target = resolve(args.target)
    progress = _Progress(args.quiet)
    try:
        res = capture(target, opts, progress)
    finally:
        progress.done()
    for line in res.warnings:  # never silently without what was asked for
        sys.stderr.write(f"exuvia: warning: {line}\n")
    print_result(res, args.output_format)
    return 0 if res.complete else 3


def run_to_store(args: argparse.Namespace) -> int:
    """``-o s3://…``: stream the bundle into the evidence store (docs/evidence-store.md)."""
    from collectors.store.capture import capture_to_store  # noqa: PLC0415 - boto3 only here
    from collectors.store.fallback import fallback_dir  # noqa: PLC0415
    from collectors.store.uri import parse_s3  # noqa: PLC0415

    if parse_uri(args.target)[0] == "k8s":
        return k8s_cmd.run_capture_to_store(args)  # one pod: the fleet's per-pod store path
    url = parse_s3(args.output)
    hook = scan_hook(args)  # --scan: in the same read, into the bundle, as locally
    lock = lock_from(args)
    # boto3's import and client take ~0.5-2 s: build it while the target is resolved
    # (the thread is done before the capture forks anything)
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(store_from, args)
        opts = options_from(args, Path(url.name))
        opts.scan = hook
        target = resolve(args.target)
        store = pending.result()
    progress = _Progress(args.quiet)
    try:
        res = capture_to_store(target, opts, store, url, lock, progress=progress,
                               fallback=fallback_dir(args.fallback_dir))  # fmt: skip
    finally:
        progress.done()
    status = 0 if res.complete else 3  # as for a local capture (docs/scripting.md)
    print_store_result(res, args.output_format, status)
    return status


def print_store_result(
    res: Any, output_format: str, status: int, scan: dict[str, Any] | None = None
) -> None:
    """A capture into the store (StoreCaptureResult): its warnings on stderr, then
    the text summary or ``exuvia-capture-result`` (with ``scan`` for a pod's --scan)."""
    for line in res.warnings:  # never silently without what was asked for
        sys.stderr.write(f"exuvia: warning: {line}\n")
    if output_format == "json":
        print_json({
            "format": "exuvia-capture-result", "version": 1, "bundle": res.url,
            "complete": res.complete, "incomplete_reason": res.incomplete_reason or None,
            "manifest_sha256": res.manifest_sha256, "file_sha256": res.file_sha256,
            "bytes": res.file_bytes, "records": dict(sorted(res.counts.items())),
            "skipped": res.skips, "custody_log": res.custody_url, "signed_by": res.signed_by,
            "version_id": res.version_id, "retention": res.retention, "warnings": res.warnings,
            **({"scan": scan} if scan is not None else {}), "exit_status": status,
        })  # fmt: skip
        return
    state = "complete" if res.complete else f"INCOMPLETE ({res.incomplete_reason})"
    print(f"bundle:          {res.url} ({state})")
    print(f"version id:      {res.version_id or '-'}")
    r = res.retention
    lock_text = f"{r['mode']} until {r['retain_until']}" if r["retain_until"] else "no retention"
    print(f"object lock:     {lock_text}{', legal hold' if r['legal_hold'] else ''}")
    print(f"manifest sha256: {res.manifest_sha256}")
    print(f"file sha256:     {res.file_sha256}")
    print(f"size:            {res.file_bytes} bytes")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(res.counts.items()))
    print(f"records:         {counts}")
    print(f"skipped:         {res.skips} (see `exuvia info {res.url}`)")
    print(f"custody log:     {res.custody_url}")
    if res.signed_by:
        print(f"signed by:       {res.signed_by}")
