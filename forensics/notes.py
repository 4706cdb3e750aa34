"""The examiner's notes file: bookmarks, tags and notes about a bundle's events.

It is kept *beside* the bundle, never inside it (the bundle stays exactly as
captured): ``<bundle>.notes.json``, or under the user's cache directory
(``$XDG_CACHE_HOME/exuvia/notes/``) when the bundle's directory is not
writable. (Not to be confused with a fleet *case*, forensics.case: a directory
of bundles described by its ``case.json``.) Notes files written before the
rename, ``<bundle>.case.json`` (format ``exuvia-case``), are still read and
kept where they are. It is saved atomically (temporary file, then rename) after every
change, so a crash never leaves a half-written notes file.

An event is named by where its record is and which of its times it is
(:func:`event_key`: member, line, slot), which stays the same when the
timeline store is rebuilt.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forensics.atomic import sidecar_path, user_cache_dir, write_atomic
from forensics.errors import BundleError
from forensics.timeline.events import Event, event_key

NOTES_FORMAT = "exuvia-notes"
NOTES_VERSION = 1
#: what notes files were called before fleet cases took the word "case"
LEGACY_FORMAT = "exuvia-case"
LEGACY_SUFFIX = ".case.json"
SUFFIX = ".notes.json"
#: a notes file larger than this is refused (it is JSON written by us, never this big)
MAX_NOTES_BYTES = 64 << 20


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


def _user_dir(legacy: bool = False) -> Path:
    return user_cache_dir("cases" if legacy else "notes")


def notes_path(bundle: Path) -> Path:
    """Where the notes file of ``bundle`` is (or will be): an existing one first
    (a legacy ``.case.json`` one is kept in use), else beside the bundle when its
    directory is writable, else under the user's cache directory."""
    beside = bundle.with_name(bundle.name + SUFFIX)
    candidates = (
        beside,
        bundle.with_name(bundle.name + LEGACY_SUFFIX),
        _user_dir() / (bundle.name + SUFFIX),
        _user_dir(legacy=True) / (bundle.name + LEGACY_SUFFIX),
    )
    for path in candidates:
        if path.exists():
            return path
    return sidecar_path(bundle, SUFFIX, candidates[2])


class NotesFile:
    """The notes of one bundle, loaded once and saved after each change."""

    def __init__(self, path: Path, bundle: str, notes: dict[str, Note] | None = None) -> None:
        self.path = path
        self.bundle = bundle
        self.notes: dict[str, Note] = notes or {}

    @classmethod
    def for_bundle(cls, bundle: str | Path) -> NotesFile:
        bundle = Path(bundle)
        path = notes_path(bundle)
        nf = cls(path, bundle.name)
        if path.exists():
            nf.notes = _load(path)
        return nf

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
            "format": NOTES_FORMAT,
            "version": NOTES_VERSION,
            "bundle": self.bundle,
            "notes": [asdict(n) for n in self.sorted_notes()],
        }
        data = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
        write_atomic(self.path, data, "notes file", mode=0o600)


def _load(path: Path) -> dict[str, Note]:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_NOTES_BYTES + 1)
    except OSError as err:
        raise BundleError(f"cannot read the notes file {path}: {err.strerror}") from err
    if len(data) > MAX_NOTES_BYTES:
        raise BundleError(f"the notes file {path} is too large")
    try:
        doc: Any = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise BundleError(f"the notes file {path} is not valid JSON ({err})") from err
    if not isinstance(doc, dict) or doc.get("format") not in (NOTES_FORMAT, LEGACY_FORMAT):
        raise BundleError(f"{path} is not an exuvia notes file")
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


__all__ = ["Note", "NotesFile", "event_key", "notes_path"]
