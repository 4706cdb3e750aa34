"""The examiner's case file: bookmarks, tags and notes about a bundle's events.

It is kept *beside* the bundle, never inside it (the bundle stays exactly as
captured): ``<bundle>.case.json``, or under the user's cache directory
(``$XDG_CACHE_HOME/exuvia/cases/``) when the bundle's directory is not
writable. It is saved atomically (temporary file, then rename) after every
change, so a crash never leaves a half-written case file.

An event is named by where its record is and which of its times it is
(:func:`event_key`: member, line, slot), which stays the same when the
timeline store is rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forensics.errors import BundleError, OutputError
from forensics.timeline.events import Event, event_key

CASE_FORMAT = "exuvia-case"
CASE_VERSION = 1
#: a case file larger than this is refused (it is JSON written by us, never this big)
MAX_CASE_BYTES = 64 << 20


@dataclass
class Note:
    """What the examiner said about one event."""

    key: str
    ts: int
    summary: str
    bookmarked: bool = False
    tags: list[str] = field(default_factory=list)
    text: str = ""
    updated_ns: int = 0

    @property
    def empty(self) -> bool:
        return not (self.bookmarked or self.tags or self.text)


def _user_cases_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "exuvia" / "cases"


def case_path(bundle: Path) -> Path:
    """Where the case file of ``bundle`` is (or will be)."""
    beside = bundle.with_name(bundle.name + ".case.json")
    if beside.exists() or os.access(bundle.parent, os.W_OK):
        return beside
    return _user_cases_dir() / (bundle.name + ".case.json")


class CaseFile:
    """The notes of one bundle, loaded once and saved after each change."""

    def __init__(self, path: Path, bundle: str, notes: dict[str, Note] | None = None) -> None:
        self.path = path
        self.bundle = bundle
        self.notes: dict[str, Note] = notes or {}

    @classmethod
    def for_bundle(cls, bundle: str | Path) -> CaseFile:
        bundle = Path(bundle)
        path = case_path(bundle)
        case = cls(path, bundle.name)
        if path.exists():
            case.notes = _load(path)
        return case

    # -- changes ----------------------------------------------------------------------
    def _note(self, ev: Event) -> Note:
        key = event_key(ev)
        note = self.notes.get(key)
        if note is None:
            note = Note(key, ev.ts, ev.message[:200])
            self.notes[key] = note
        return note

    def get(self, ev: Event) -> Note | None:
        return self.notes.get(event_key(ev))

    def toggle_bookmark(self, ev: Event) -> bool:
        note = self._note(ev)
        note.bookmarked = not note.bookmarked
        self._changed(note)
        return note.bookmarked

    def toggle_tag(self, ev: Event, tag: str) -> bool:
        """Add ``tag`` to the event, or remove it when it is there; True when added."""
        tag = tag.strip()
        if not tag:
            raise ValueError("a tag cannot be empty")
        note = self._note(ev)
        added = tag not in note.tags
        note.tags = [*note.tags, tag] if added else [t for t in note.tags if t != tag]
        self._changed(note)
        return added

    def set_text(self, ev: Event, text: str) -> None:
        note = self._note(ev)
        note.text = text
        self._changed(note)

    def _changed(self, note: Note) -> None:
        note.updated_ns = time.time_ns()
        if note.empty:
            self.notes.pop(note.key, None)
        self.save()

    def sorted_notes(self) -> list[Note]:
        return sorted(self.notes.values(), key=lambda n: (n.ts, n.key))

    # -- storage ----------------------------------------------------------------------
    def save(self) -> None:
        doc = {
            "format": CASE_FORMAT,
            "version": CASE_VERSION,
            "bundle": self.bundle,
            "notes": [asdict(n) for n in self.sorted_notes()],
        }
        data = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        except OSError as err:
            raise OutputError(f"cannot write the case file {self.path}: {err.strerror}") from err
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            raise OutputError(f"cannot write the case file {self.path}: {err.strerror}") from err
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _load(path: Path) -> dict[str, Note]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CASE_BYTES + 1)
    except OSError as err:
        raise BundleError(f"cannot read the case file {path}: {err.strerror}") from err
    if len(data) > MAX_CASE_BYTES:
        raise BundleError(f"the case file {path} is too large")
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise BundleError(f"the case file {path} is not valid JSON ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") != CASE_FORMAT:
        raise BundleError(f"{path} is not an exuvia case file")
    notes: dict[str, Note] = {}
    for raw in doc.get("notes") or []:
        if not isinstance(raw, dict):
            continue
        try:
            note = Note(
                key=str(raw["key"]),
                ts=int(raw["ts"]),
                summary=str(raw.get("summary", "")),
                bookmarked=bool(raw.get("bookmarked")),
                tags=[str(t) for t in raw.get("tags") or []],
                text=str(raw.get("text", "")),
                updated_ns=int(raw.get("updated_ns") or 0),
            )
        except (KeyError, TypeError, ValueError):
            continue
        notes[note.key] = note
    return notes


__all__ = ["CaseFile", "Note", "case_path", "event_key"]
