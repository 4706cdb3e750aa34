"""Ed25519 signatures over a bundle's manifest or a case's case.json (optional;
docs/bundle-format.md, docs/case-format.md).

What is signed is the document's SHA-256, with a domain prefix that names it::

    b"exuvia-bundle-signature-v1\\0manifest.json\\0" + <manifest sha256, 64 hex digits>
    b"exuvia-case-signature-v1\\0case.json\\0" + <case.json sha256, 64 hex digits>

The manifest lists every other member's SHA-256 (the checkpoints, the custody
log, the file-prefix hash), so the signature covers the whole bundle. The
signature document (:func:`Signer.sign_manifest`) names the public key and its
fingerprint; the private key never leaves the examiner's machine and is never
written anywhere by exuvia.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from forensics.errors import ExuviaError

SIGNATURE_FORMAT = "exuvia-signature"
MANIFEST = "manifest.json"
CASE = "case.json"
#: what each signed document's signature message starts with
DOMAINS = {
    MANIFEST: b"exuvia-bundle-signature-v1\0manifest.json\0",
    CASE: b"exuvia-case-signature-v1\0case.json\0",
}
#: the field of the signature document holding the signed document's SHA-256
HASH_FIELDS = {MANIFEST: "manifest_sha256", CASE: "case_sha256"}
MAX_KEY_FILE = 64 << 10
_COMMON_FIELDS = frozenset(
    {
        "format",
        "version",
        "algorithm",
        "signed_member",
        "public_key",
        "key_fingerprint",
        "signature",
    }
)


class KeyFileError(ExuviaError):
    """A key file is unreadable, not Ed25519, or encrypted."""


def fingerprint(public_raw: bytes) -> str:
    """``SHA256:<base64>`` of the raw 32-byte public key (as OpenSSH prints them)."""
    digest = hashlib.sha256(public_raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def message(sha256: str, signed: str = MANIFEST) -> bytes:
    return DOMAINS[signed] + sha256.encode("ascii")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _read_key_file(path: str | Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as err:
        raise KeyFileError(f"cannot read key {path}: {err.strerror}") from err
    if len(data) > MAX_KEY_FILE:
        raise KeyFileError(f"{path} is not a key file (larger than {MAX_KEY_FILE} bytes)")
    return data


class Signer:
    """Holds an Ed25519 private key in memory only."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_raw = _raw_public(key.public_key())
        self.fingerprint = fingerprint(self.public_raw)

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        """Load a PEM (PKCS#8) or OpenSSH Ed25519 private key, unencrypted."""
        data = _read_key_file(path)
        try:
            if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY"):
                key: Any = serialization.load_ssh_private_key(data, password=None)
            else:
                key = serialization.load_pem_private_key(data, password=None)
        except TypeError as err:  # encrypted and no password given
            raise KeyFileError(f"{path}: encrypted private keys are not supported ({err})") from err
        except (ValueError, UnsupportedAlgorithm) as err:
            raise KeyFileError(f"{path} is not a PEM or OpenSSH private key") from err
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} is not an Ed25519 key ({type(key).__name__})")
        return cls(key)

    def sign_manifest(self, manifest_sha256: str) -> dict[str, Any]:
        return self.sign(manifest_sha256, MANIFEST)

    def sign(self, sha256: str, signed: str) -> dict[str, Any]:
        """The signature document for ``signed`` (``manifest.json`` or ``case.json``)
        whose SHA-256 is ``sha256``."""
        sig = self._key.sign(message(sha256, signed))
        return {
            "format": SIGNATURE_FORMAT,
            "version": 1,
            "algorithm": "ed25519",
            "signed_member": signed,
            HASH_FIELDS[signed]: sha256,
            "public_key": base64.b64encode(self.public_raw).decode(),
            "key_fingerprint": self.fingerprint,
            "signature": base64.b64encode(sig).decode(),
        }


def load_public_key(path: str | Path) -> bytes:
    """The raw 32 bytes of an Ed25519 public key file (PEM or OpenSSH ``ssh-ed25519``).

    A private key file is accepted too (its public half is used)."""
    data = _read_key_file(path)
    key: Any
    try:
        if data.lstrip().startswith(b"ssh-ed25519 "):
            key = serialization.load_ssh_public_key(data.strip())
        elif b"PRIVATE KEY" in data:
            return Signer.from_file(path).public_raw
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyFileError(f"{path} is not a PEM or OpenSSH public key") from err
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} is not an Ed25519 public key ({type(key).__name__})")
    return _raw_public(key)


def check_signature(
    doc: Any, sha256: str, signed: str = MANIFEST
) -> tuple[str | None, bytes | None]:
    """Check a signature document against the hash of the document it signs
    (the manifest, or case.json).

    Returns (problem or None, the raw public key it names or None)."""
    hash_field = HASH_FIELDS[signed]
    if not isinstance(doc, dict) or doc.get("format") != SIGNATURE_FORMAT:
        return "the signature member is not an exuvia signature", None
    if doc.get("algorithm") != "ed25519":
        return f"unsupported signature algorithm {doc.get('algorithm')!r}", None
    if (
        set(doc) != _COMMON_FIELDS | {hash_field}
        or doc.get("version") != 1
        or doc.get("signed_member") != signed
    ):
        return "the signature member's fields are not those exuvia writes (altered)", None
    try:
        pub = base64.b64decode(str(doc.get("public_key")), validate=True)
        sig = base64.b64decode(str(doc.get("signature")), validate=True)
        key = Ed25519PublicKey.from_public_bytes(pub)
    except (binascii.Error, ValueError):
        return "the signature member's key or signature is malformed", None
    # base64 has spare bits before its padding: only the canonical text is accepted
    if (base64.b64encode(pub).decode(), base64.b64encode(sig).decode()) != (
        doc.get("public_key"),
        doc.get("signature"),
    ):
        return "the signature member's base64 is not canonical (altered)", None
    if doc.get("key_fingerprint") != fingerprint(pub):
        return "the signature's key fingerprint does not match its public key", pub
    what = "manifest" if signed == MANIFEST else signed
    if doc.get(hash_field) != sha256:
        return f"the signature is for another {what} (its {hash_field} differs)", pub
    try:
        key.verify(sig, message(sha256, signed))
    except InvalidSignature:
        return f"the signature does not verify: the {what} or the signature was altered", pub
    return None, pub


def generate(private_path: Path) -> tuple[Path, str]:
    """Write a new key pair: ``private_path`` (PKCS#8 PEM, mode 0600) and
    ``<private_path>.pub`` (PEM). Refuses to overwrite. Returns (pub path, fingerprint)."""
    key = Ed25519PrivateKey.generate()
    pub_path = private_path.with_name(private_path.name + ".pub")
    for p in (private_path, pub_path):
        if os.path.lexists(p):
            raise KeyFileError(f"{p} already exists; refusing to overwrite a key")
    priv = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(priv)
        pub_path.write_bytes(pub)
    except OSError as err:
        raise KeyFileError(f"cannot write the key pair: {err.strerror}") from err
    return pub_path, fingerprint(_raw_public(key.public_key()))


def dumps(doc: dict[str, Any]) -> bytes:
    """The one canonical serialization of a signature document."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
