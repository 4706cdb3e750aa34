"""verify notices a change to any byte; signatures; what the custody log binds."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_mod

from forensics.bundle import verify_bundle
from forensics.bundle.format import CUSTODY_NAME, MANIFEST_NAME, SIGNATURE_NAME
from forensics.bundle.reader import BundleReader
from forensics.bundle.seal import sidecar_path
from forensics.custody import CustodyLog
from forensics.signing import Signer, generate, load_public_key
from tests.support.bundle_craft import write_real_bundle
from tests.support.bundles import member

POSITIONS = 200


def _positions(size: int) -> list[int]:
    """``POSITIONS`` offsets spread over the whole file, first and last byte included."""
    step = (size - 1) / (POSITIONS - 1)
    return sorted({round(i * step) for i in range(POSITIONS)})


@pytest.mark.parametrize("compress", ["zstd", "none"])
@pytest.mark.parametrize("signed", [False, True])
def test_one_flipped_byte_anywhere_fails_verify(
    tmp_path: Path, compress: str, signed: bool
) -> None:
    signer = None
    if signed:
        generate(tmp_path / "key")
        signer = Signer.from_file(tmp_path / "key")
    p = tmp_path / "b.exv"
    write_real_bundle(p, compress=compress, signer=signer)
    assert verify_bundle(p).ok
    good = p.read_bytes()
    positions = _positions(len(good))
    assert len(positions) == POSITIONS and positions[-1] == len(good) - 1
    q = tmp_path / "flip.exv"
    missed = []
    for pos in positions:
        for mask in (0x01, 0x80):
            bad = bytearray(good)
            bad[pos] ^= mask
            q.write_bytes(bytes(bad))
            report = verify_bundle(q)
            if report.ok:
                missed.append((pos, mask))
    assert missed == [], f"{len(missed)} undetected flips of {len(good)} bytes: {missed[:20]}"


# -- signatures ------------------------------------------------------------------


def _keys(tmp_path: Path, name: str = "key") -> tuple[Signer, bytes, Path]:
    pub_path, _fp = generate(tmp_path / name)
    return Signer.from_file(tmp_path / name), load_public_key(pub_path), pub_path


def test_signed_bundle_verifies_with_its_key_and_names_it(tmp_path: Path) -> None:
    signer, pub, _ = _keys(tmp_path)
    p = tmp_path / "b.exv"
    write_real_bundle(p, signer=signer)
    report = verify_bundle(p, public_key=pub)
    assert report.ok, report.failures()
    assert report.signed_by == signer.fingerprint
    # the signature is the member right after the manifest, outside the manifest's list
    names = [m.name for m in BundleReader(p).members()]
    assert names[-2:] == [MANIFEST_NAME, SIGNATURE_NAME]
    listed = {m["name"] for m in BundleReader(p).manifest()["members"]}
    assert SIGNATURE_NAME not in listed


def test_wrong_key_fails(tmp_path: Path) -> None:
    signer, _pub, _ = _keys(tmp_path, "a")
    _other, other_pub, _ = _keys(tmp_path, "b")
    p = tmp_path / "b.exv"
    write_real_bundle(p, signer=signer)
    report = verify_bundle(p, public_key=other_pub)
    assert not report.ok
    assert any("signed by another key" in line for line in report.failures())


class _Forger(Signer):
    """Re-uses a genuine signature document for another manifest: what someone
    without the private key can do after rewriting a bundle."""

    def __init__(self, genuine: dict[str, object], real: Signer) -> None:
        super().__init__(real._key)
        self.genuine = genuine

    def sign_manifest(self, manifest_sha256: str) -> dict[str, object]:
        return {**self.genuine, "manifest_sha256": manifest_sha256}


def test_rewritten_manifest_with_a_copied_signature_fails(tmp_path: Path) -> None:
    signer, pub, _ = _keys(tmp_path)
    a = tmp_path / "a.exv"
    contents = write_real_bundle(a, signer=signer)
    genuine = json.loads(member(a, SIGNATURE_NAME))
    # the attacker alters a member and writes a whole new, self-consistent bundle
    # (every hash recomputed) but can only copy the old signature
    contents["files/etc/passwd"] = b"root::0:0:root:/root:/bin/sh\n"
    b = tmp_path / "b.exv"
    write_real_bundle(b, contents=contents, signer=_Forger(genuine, signer))
    report = verify_bundle(b, public_key=pub)
    assert not report.ok
    assert any("signature does not verify" in line for line in report.failures())
    # and without --key too: a signature that does not verify is an alteration
    assert not verify_bundle(b).ok


def test_unsigned_bundle_with_key_fails_in_one_line(tmp_path: Path) -> None:
    _signer, _pub, pub_path = _keys(tmp_path)
    p = tmp_path / "b.exv"
    write_real_bundle(p)
    r = subprocess.run(
        [sys.executable, "-m", "tui.cli", "verify", str(p), "--key", str(pub_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert [line for line in r.stdout.splitlines() if "no signature" in line] == [
        f"  no signature: the bundle is not signed ({SIGNATURE_NAME} is absent)"
    ]


def test_stripped_signature_is_noticed_through_the_sidecar(tmp_path: Path) -> None:
    signer, _pub, _ = _keys(tmp_path)
    p = tmp_path / "b.exv"
    write_real_bundle(p, compress="none", signer=signer, custody=CustodyLog("alice"))
    assert verify_bundle(p).ok
    # cut the signature member off, rebuilding a plain end of archive
    data = p.read_bytes()
    with tarfile.open(p) as tar:
        sig = tar.getmember(SIGNATURE_NAME)
    p.write_bytes(data[: sig.offset] + b"\0" * 1024)
    report = verify_bundle(p)
    assert not report.ok
    assert any("carries no signature" in line for line in report.failures())


def test_keys_never_enter_the_bundle_or_its_custody_log(tmp_path: Path) -> None:
    signer, _pub, _ = _keys(tmp_path)
    p = tmp_path / "b.exv"
    write_real_bundle(p, compress="none", signer=signer, custody=CustodyLog("alice"))
    private_pem = (tmp_path / "key").read_bytes()
    body = b"".join(private_pem.splitlines()[1:-1])  # the base64 body of the PEM
    for f in (p, sidecar_path(p)):
        data = f.read_bytes()
        assert body not in data and body[:24] not in data
    assert signer.fingerprint.encode() in sidecar_path(p).read_bytes()


# -- what the custody log binds --------------------------------------------------


def test_custody_entries_bind_member_and_bundle_hashes(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    contents = write_real_bundle(p, compress="none", custody=CustodyLog("alice"))
    report = verify_bundle(p)
    assert report.ok and report.sidecar_checked, report.failures()
    manifest = BundleReader(p).manifest()
    listed = {m["name"]: m["sha256"] for m in manifest["members"]}
    inside = [json.loads(line) for line in member(p, CUSTODY_NAME).splitlines()]
    sidecar = [json.loads(line) for line in sidecar_path(p).read_text().splitlines()]
    # the binding table: which entry vouches for which hash
    bound = {
        e["details"]["member"]: e["details"]["sha256"]
        for e in inside
        if e["action"] == "collector.finished"
    }
    assert bound == {n: listed[n] for n in contents if n.startswith("artifacts/")}
    assert sidecar[: len(inside)] == inside  # the sidecar continues the log inside
    sealed = sidecar[-1]
    assert sealed["action"] == "bundle.sealed"
    assert sealed["details"]["manifest_sha256"] == report.manifest_sha256
    assert sealed["details"]["file_sha256"] == report.file_sha256
    # the custody log itself is a member: the manifest lists its hash
    assert listed[CUSTODY_NAME] == hashlib.sha256(member(p, CUSTODY_NAME)).hexdigest()


def test_changing_a_custody_entry_or_a_bound_hash_is_detected(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    contents = write_real_bundle(p, compress="none", custody=CustodyLog("alice"))
    original_custody = member(p, CUSTODY_NAME)

    # 1. an entry of the custody log inside the bundle is changed in place
    edited = original_custody.replace(b'"examiner": "alice"', b'"examiner": "alicf"', 1)
    assert len(edited) == len(original_custody) and edited != original_custody
    data = p.read_bytes()
    q = tmp_path / "custody-edited.exv"
    q.write_bytes(data.replace(original_custody, edited))
    (tmp_path / "custody-edited.exv.custody.jsonl").write_bytes(sidecar_path(p).read_bytes())
    report = verify_bundle(q)
    assert CUSTODY_NAME in report.altered
    assert any("custody log inside the bundle differs" in line for line in report.failures())

    # 2. a bound member is changed and the whole bundle rewritten consistently
    #    (manifest, checkpoints, self_check all recomputed) with the old custody log
    contents["artifacts/a3.jsonl"] = b'{"kind":"x","forged":true}\n'
    r = tmp_path / "rewritten.exv"
    write_real_bundle(r, compress="none", contents={**contents, CUSTODY_NAME: original_custody})
    (tmp_path / "rewritten.exv.custody.jsonl").write_bytes(sidecar_path(p).read_bytes())
    report = verify_bundle(r)
    assert not report.ok
    failures = "\n".join(report.failures())
    assert "binds 'artifacts/a3.jsonl' to sha256" in failures
    assert "the manifest's SHA-256 is not the one sealed" in failures
    assert "the file's SHA-256 is not the one sealed" in failures

    # 3. the hash sealed in the sidecar is changed
    side = sidecar_path(p)
    sealed = json.loads(side.read_text().splitlines()[-1])
    lines = side.read_text().splitlines()
    sealed["details"]["manifest_sha256"] = "0" * 64
    side.write_text("\n".join([*lines[:-1], json.dumps(sealed)]) + "\n")
    report = verify_bundle(p)
    assert any("manifest's SHA-256 is not the one sealed" in f for f in report.failures())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl on this machine")
def test_openssl_keys_sign_and_verify(tmp_path: Path) -> None:
    key, pub = tmp_path / "ossl.pem", tmp_path / "ossl.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    p = tmp_path / "b.exv"
    write_real_bundle(p, signer=Signer.from_file(key))
    assert verify_bundle(p, public_key=load_public_key(pub)).ok


def test_bad_signing_keys_are_one_line_errors_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "not-a-key").write_text("hello\n")
    rsa = tmp_path / "rsa.pem"
    rsa.write_bytes(
        rsa_mod.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    out = tmp_path / "never.exv"
    for key, needle in (
        (tmp_path / "missing", "cannot read key"),
        (tmp_path / "not-a-key", "is not a PEM or OpenSSH private key"),
        (rsa, "is not an Ed25519 key"),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "tui.cli", "capture", "pid://1", "-o", str(out),
             "--sign", str(key)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert r.returncode == 2 and r.stdout == "", r.stderr
        assert r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr
        assert not any(tmp_path.glob("never.exv*"))


# -- regressions: flips the exhaustive flip run (bench/flip_bundle.py) found ---------


def _flip_at(path: Path, needle: bytes, offset: int, mask: int) -> Path:
    data = bytearray(path.read_bytes())
    pos = data.rindex(needle) + offset
    data[pos] ^= mask
    out = path.with_name("flipped-" + path.name)
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_found_by_flipping_version_downgrade_and_signature_slack(
    tmp_path: Path, compress: str
) -> None:
    signer, _pub, _ = _keys(tmp_path)
    p = tmp_path / "b.exv"
    write_real_bundle(p, compress=compress, signer=signer)
    assert verify_bundle(p).ok
    cases = {
        # "2.1" -> "1.1" in the manifest: an older version must not select laxer checks
        "downgrade": (b'"version":"2.1","members"', len(b'"version":"'), 0x03),
        # the signature document's version 1 -> 0 and signed_member were not checked
        "sig-version": (b'"version":1}\n', len(b'"version":'), 0x01),
        "sig-member": (b'"signed_member":"manifest.json"', 4, 0x01),
    }
    for name, (needle, offset, mask) in cases.items():
        flipped = _flip_at(p, needle, offset, mask)
        assert not verify_bundle(flipped).ok, name
    # the bits base64 leaves spare before '==' padding decode to the same bytes:
    # change the last character's value by 1 (a spare bit), not its ASCII code
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    data = bytearray(p.read_bytes())
    pos = data.rindex(b'==","signed_member"') - 1
    data[pos] = alphabet[alphabet.index(data[pos]) ^ 1]
    sig = json.loads(data[data.rindex(b'{"algorithm"') : data.rindex(b'"version":1}') + 12])
    good = json.loads(member(p, SIGNATURE_NAME))
    assert base64.b64decode(sig["signature"]) == base64.b64decode(good["signature"])  # same bytes
    flipped = tmp_path / "b64.exv"
    flipped.write_bytes(bytes(data))
    assert any("not canonical" in f for f in verify_bundle(flipped).failures())


def test_the_tail_of_a_zstd_bundle_is_one_frame_of_raw_blocks(tmp_path: Path) -> None:
    p = tmp_path / "b.exv"
    write_real_bundle(p)
    data = p.read_bytes()
    start = BundleReader(p).manifest()["file_prefix"]["bytes"]
    # magic, single segment + 8-byte content size, then raw blocks (type 0)
    assert data[start : start + 5] == b"\x28\xb5\x2f\xfd\xe0"
    size = int.from_bytes(data[start + 5 : start + 13], "little")
    pos, total = start + 13, 0
    while True:
        head = int.from_bytes(data[pos : pos + 3], "little")
        assert (head >> 1) & 3 == 0  # raw
        total += head >> 3
        pos += 3 + (head >> 3)
        if head & 1:
            break
    assert total == size and pos == len(data)
    assert b'"self_check":"' in data[start:]  # the manifest is stored, readable as is
