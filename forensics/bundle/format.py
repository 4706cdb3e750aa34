"""Names, versions and encodings of the bundle format (docs/bundle-format.md)."""

from __future__ import annotations

import string

from forensics.errors import BundleVersionError

FORMAT_NAME = "exuvia-bundle"
#: major.minor; readers accept any minor of their major and refuse a newer major.
FORMAT_VERSION = "2.0"
FORMAT_MAJOR = 2

HEADER_NAME = "exuvia.json"
MANIFEST_NAME = "manifest.json"
#: the only member allowed after the manifest: its Ed25519 signature (1.1, optional)
SIGNATURE_NAME = "manifest.sig"
#: the manifest's last field: SHA-256 of the manifest's bytes before it (1.1)
SELF_CHECK_KEY = "self_check"
CUSTODY_NAME = "custody.jsonl"
SKIPS_NAME = "artifacts/skips.jsonl"
CHECKPOINT_DIR = "checkpoints/"
ARTIFACT_DIR = "artifacts/"
FILES_DIR = "files"
LOGS_DIR = "logs/"

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


_CHUNK_DIGITS = 6


def record_collector(name: str) -> str | None:
    """The collector whose records a member holds: ``artifacts/<c>.jsonl`` (1.x,
    one member) or a chunk ``artifacts/<c>/NNNNNN.jsonl`` (2.0); else None."""
    if not name.startswith(ARTIFACT_DIR) or not name.endswith(".jsonl"):
        return None
    rest = name[len(ARTIFACT_DIR) : -len(".jsonl")]
    head, sep, tail = rest.rpartition("/")
    if sep and len(tail) == _CHUNK_DIGITS and tail.isdigit() and head and "/" not in head:
        return head
    return rest if "/" not in rest else None


def is_record_member(name: str) -> bool:
    """A JSON Lines member of collector records (``artifacts/<c>.jsonl`` or a chunk
    ``artifacts/<c>/NNNNNN.jsonl``); the skip list is not counted as records."""
    return name.startswith(ARTIFACT_DIR) and name.endswith(".jsonl") and name != SKIPS_NAME


# Bytes kept literally in member names; everything else (non-UTF-8 bytes, control
# characters, '%', '\\') is percent-encoded so names are valid UTF-8 for any tar
# tool while still mirroring the target's paths.
_SAFE = frozenset((string.ascii_letters + string.digits + "/._-+=,:@~ ()[]{}!#$&'*;^").encode())


_SAFE_BYTES = bytes(sorted(_SAFE))


def encode_path(raw: bytes) -> str:
    """Percent-encode a target path into a member-name-safe UTF-8 string."""
    if not raw.translate(None, _SAFE_BYTES):  # the common case: nothing to escape
        return raw.decode("ascii")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    out: list[str] = []
    if text is not None:
        for ch in text:
            code = ord(ch)
            if code < 0x80:
                out.append(ch if code in _SAFE else f"%{code:02X}")
            else:
                out.append(ch)
        return "".join(out)
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)


def decode_path(name: str) -> bytes:
    """Inverse of :func:`encode_path`."""
    out = bytearray()
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "%" and i + 2 < len(name) + 0 and _is_hex(name[i + 1 : i + 3]):
            out.append(int(name[i + 1 : i + 3], 16))
            i += 3
            continue
        out += ch.encode("utf-8")
        i += 1
    return bytes(out)


def _is_hex(s: str) -> bool:
    return len(s) == 2 and all(c in string.hexdigits for c in s)


def file_member_name(path: bytes) -> str:
    """Member name for the copied content of the target's file at ``path``."""
    if not path.startswith(b"/"):
        path = b"/" + path
    return FILES_DIR + encode_path(path)


def check_version(version: object) -> None:
    """Refuse a bundle written by a newer major version, with a clear message."""
    if not isinstance(version, str) or not version.split(".", 1)[0].isdigit():
        raise BundleVersionError(f"bundle has no readable format version ({version!r})")
    major = int(version.split(".", 1)[0])
    if major > FORMAT_MAJOR:
        raise BundleVersionError(
            f"bundle format {version} is newer than this exuvia understands "
            f"({FORMAT_VERSION}); upgrade exuvia to read it"
        )
