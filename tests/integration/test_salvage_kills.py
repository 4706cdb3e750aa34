"""kill -9 of real `--files all` captures of a real runc target at 20 seeded random
moments spread over the capture: never a false complete, the records behind the
last checkpoint readable, and every .partial salvaged into a sealed .incomplete
that verifies.

A moment is how much of the capture has been written (a seeded fraction of the
complete capture's size, reached by the `.partial`), not a time after its start:
the spread then does not depend on how fast the (shared, loaded) machine is at
that moment. (Timed kills, tuned on the complete capture's duration, found the
later captures faster or slower than it: too many finished, or all were early.)

"Written before the last checkpoint" is measured independently of the records
themselves: every `files/` member the last checkpoint vouches for was copied
while the walk emitted that file's `fs_entry` record, so the record of (nearly)
every such file must be readable from the vouched record chunks (>= 95 %, the
records of the last few files copied may follow the checkpoint). The records
read must also be records of the complete capture of the same target.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from forensics.bundle import verify_bundle
from forensics.bundle.format import decode_path, record_collector
from forensics.bundle.reader import BundleReader
from forensics.bundle.salvage import salvage
from forensics.timeline.build import build_store
from tests.support.bundles import artifacts

REPO = Path(__file__).parents[2]
KILLS = 20
EXUVIA = [sys.executable, "-m", "tui.cli"]


def _stderr(out: Path) -> Path:
    return out.with_name(out.name + ".stderr")  # beside the output, never inside it


def _start(box: Any, out: Path) -> subprocess.Popen[bytes]:
    with _stderr(out).open("wb") as err:  # kept: a capture that fails says why
        return subprocess.Popen(
            [*EXUVIA, "capture", box.uri, "-o", str(out), "--files", "all", "-q"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


def _wait_for(path: Path, proc: subprocess.Popen[bytes], limit: float = 120) -> float:
    """Seconds until ``path`` exists (the capture's output has been created)."""
    t0 = time.monotonic()
    out = path.with_name(path.name.removesuffix(".partial"))
    while not path.exists():
        if proc.poll() is not None and not path.exists():
            raise AssertionError(
                f"the capture ended (exit {proc.returncode}) before its .partial: "
                + _stderr(out).read_text(errors="replace")[-2000:]
            )
        assert time.monotonic() - t0 < limit
        time.sleep(0.005)
    return time.monotonic()


def _wait_written(partial: Path, proc: subprocess.Popen[bytes], size: int) -> None:
    """Until ``partial`` holds ``size`` bytes, or the capture has ended or renamed it."""
    while proc.poll() is None:
        try:
            if partial.stat().st_size >= size:
                return
        except FileNotFoundError:
            return  # renamed to its final name: finished
        time.sleep(0.001)


def _vouched_records(partial: Path, names: list[str]) -> tuple[list[dict[str, Any]], set[str]]:
    """fs_entry records of the vouched chunks, and the paths of the vouched files/ members."""
    keep = set(names)
    got = BundleReader(partial).read_members(
        lambda n: n in keep and record_collector(n) == "filesystem"
    )
    recs = [json.loads(line) for data in got.values() for line in data.splitlines() if line]
    files = {
        decode_path(n[len("files") :]).decode("utf-8", "replace")
        for n in names
        if n.startswith("files/")
    }
    return recs, files


def test_kill_9_at_20_moments_keeps_the_records_behind_the_checkpoints(
    lab: Any, tmp_path: Path
) -> None:
    rng = random.Random(15)
    print(f"load before: {os.getloadavg()}")
    with lab.runc() as box:
        data = Path(f"{box.root}/data")
        data.mkdir()
        for d in range(24):
            sub = data / f"d{d:02d}"
            sub.mkdir()
            for i in range(250):
                (sub / f"f{i:03d}").write_bytes(rng.randbytes(rng.randrange(64, 6000)))
        for i in range(12):
            (data / f"blob{i:02d}").write_bytes(rng.randbytes(1 << 20))
        # the complete capture: its size and its records
        full = tmp_path / "full.exv"
        proc = _start(box, full)
        began = _wait_for(full.with_name(full.name + ".partial"), proc)
        assert proc.wait(timeout=600) == 0
        duration = time.monotonic() - began
        whole = verify_bundle(full)
        assert whole.ok and whole.complete
        complete_paths = {r["path"] for r in artifacts(full)["filesystem"]}
        assert len(complete_paths) > 6000
        size = full.stat().st_size
        print(f"complete capture: {size} bytes, {duration:.2f}s after its .partial appeared, "
              f"{whole.records_vouched} records")  # fmt: skip

        moments = sorted(rng.uniform(0.001, 0.97) for _ in range(KILLS))
        outcomes: list[str] = []
        ratios: list[float] = []
        for k, moment in enumerate(moments):  # the fraction of the capture written
            out = tmp_path / f"k{k:02d}.exv"
            partial = out.with_name(out.name + ".partial")
            proc = _start(box, out)
            _wait_for(partial, proc)
            _wait_written(partial, proc, int(size * moment))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert not out.with_name(out.name + ".incomplete").exists()
            if out.exists():  # it finished before the kill: then it is whole
                r = verify_bundle(out)
                assert r.ok and r.complete and not partial.exists(), r.failures()[:5]
                outcomes.append("complete")
                continue
            r = verify_bundle(partial)
            if r.has_manifest:  # killed between sealing and the rename: whole
                assert r.ok and r.complete, r.failures()[:5]
                outcomes.append("sealed-partial")
                continue
            # never a false complete: a .partial without a manifest is cut off (3)
            assert r.exit_status == 3 and r.cut_off, (moment, r.failures()[:5])
            v = subprocess.run([*EXUVIA, "verify", str(partial)], cwd=REPO,
                               capture_output=True, text=True, check=False)  # fmt: skip
            assert v.returncode == 3 and v.stdout.startswith("CUT OFF"), v.stdout + v.stderr
            if r.checkpoints_valid == 0:  # killed before the first checkpoint
                assert r.records_vouched == 0
                sv = subprocess.run([*EXUVIA, "salvage", str(partial)], cwd=REPO,
                                    capture_output=True, text=True, check=False)  # fmt: skip
                assert sv.returncode == 2 and len(sv.stderr.splitlines()) == 1, sv.stderr
                outcomes.append(f"cut@{moment:.1%}:cp0,0rec,{len(r.unverifiable)}unverified")
                continue
            recs, files = _vouched_records(partial, r.vouched_names)
            paths = {rec["path"] for rec in recs}
            assert paths <= complete_paths  # records of this target, read whole
            assert r.records_by_collector.get("filesystem", 0) == len(recs)
            if files:
                ratio = len(files & paths) / len(files)
                ratios.append(ratio)
                assert ratio >= 0.95, (moment, len(files), len(files & paths))
            # the sealed copy holds exactly those records, and verifies
            res = salvage(partial, examiner="test")
            s = verify_bundle(res.path)
            assert s.ok and not s.complete, s.failures()[:5]
            assert s.records_vouched == r.records_vouched == res.records
            manifest = BundleReader(res.path).manifest()
            assert manifest["salvaged_from"]["checkpoint"] == r.last_checkpoint
            assert manifest["salvaged_from"]["sha256"] == r.file_sha256
            if k % 5 == 0 and recs:  # the timeline of a .partial holds its records' events
                meta = build_store(partial, tmp_path / f"t{k}.sqlite", tz=UTC)
                assert meta["cut_off"]["records"] == r.records_vouched
                assert meta["by_source"].get("fs", 0) >= len(recs)
            outcomes.append(
                f"cut@{moment:.1%}:cp{r.last_checkpoint},{r.records_vouched}rec,"
                f"{len(r.unverifiable)}unverified"
            )
    print(f"load after: {os.getloadavg()}")
    print("kill outcomes:", outcomes)
    print("files vouched whose record is readable:", [round(x, 3) for x in ratios])
    cut = [o for o in outcomes if o.startswith("cut")]
    assert len(cut) >= KILLS // 2, outcomes  # the moments spread over the capture
    # the later the kill, the more was kept (the records really are behind the checkpoints)
    kept = [int(o.split(",")[1].removesuffix("rec")) for o in cut]
    assert kept[-1] > kept[0] and max(kept) > 1000, kept
