"""Findings as tags on the timeline events of their evidence, for the exports.

The exports already carry an examiner's notes (``tag``/``comment`` in
Timesketch JSONL, the ``tags``/``note`` columns of csv, plaso's notes column in
l2tcsv); :class:`FindingTags` is such a notes mapping: every event whose record
is a finding's evidence gets the tags ``exuvia-finding``, ``finding:<rule>``
and ``severity:<level>`` and the finding's title as its note, merged with the
examiner's own note for that event. A bodyfile has no place for either.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from forensics.findings.model import Finding


@dataclass
class TaggedNote:
    """What an export reads of a note (the NoteLike protocol of the exports)."""

    bookmarked: bool = False
    tags: list[str] = field(default_factory=list)
    text: str = ""


class FindingTags(Mapping[str, TaggedNote]):
    """event key (``member#line#slot``) -> the tags of the findings naming its record."""

    def __init__(self, findings: list[Finding], notes: Mapping[str, object] | None = None) -> None:
        self._by_ref: dict[tuple[str, int], TaggedNote] = {}
        for f in findings:
            for ev in f.evidence:
                note = self._by_ref.setdefault((ev.member, ev.line), TaggedNote())
                for t in ("exuvia-finding", f"finding:{f.rule}", f"severity:{f.severity.label}"):
                    if t not in note.tags:
                        note.tags.append(t)
                note.text = f"{note.text}; {f.title}" if note.text else f.title
        self._notes = dict(notes or {})

    @staticmethod
    def _ref(key: str) -> tuple[str, int] | None:
        member, _sep, rest = key.rpartition("#")
        member, _sep, line = member.rpartition("#")
        return (member, int(line)) if line.isdigit() and rest.isdigit() else None

    def __getitem__(self, key: str) -> TaggedNote:
        ref = self._ref(key)
        found = self._by_ref.get(ref) if ref is not None else None
        own = self._notes.get(key)
        if found is None and own is None:
            raise KeyError(key)
        out = TaggedNote()
        if own is not None:
            out.bookmarked = bool(getattr(own, "bookmarked", False))
            out.tags = list(getattr(own, "tags", []))
            out.text = str(getattr(own, "text", ""))
        if found is not None:
            out.tags += [t for t in found.tags if t not in out.tags]
            out.text = f"{out.text}; {found.text}" if out.text else found.text
        return out

    def __iter__(self) -> Iterator[str]:
        yield from self._notes
        for member, line in self._by_ref:
            yield f"{member}#{line}#0"

    def __len__(self) -> int:
        return len(self._notes) + len(self._by_ref)


__all__ = ["FindingTags", "TaggedNote"]
