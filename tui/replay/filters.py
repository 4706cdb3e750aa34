"""What the examiner has narrowed the timeline to, and how it reads as chips."""

from __future__ import annotations

from dataclasses import dataclass, replace

from forensics.timeline import Query
from forensics.timeline.text import one_line
from forensics.timeutil import iso_ns


@dataclass(frozen=True)
class Filters:
    """Combined with AND; each one removable on its own (see :meth:`without`)."""

    sources: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    entity: str | None = None
    start: int | None = None
    end: int | None = None
    text: str | None = None

    def query(self, extra_text: str | None = None) -> Query:
        text = " ".join(t for t in (self.text, extra_text) if t) or None
        return Query(
            start=self.start,
            end=self.end,
            sources=tuple(sorted(self.sources)),
            kinds=tuple(sorted(self.kinds)),
            entity=self.entity,
            text=text,
        )

    def chips(self) -> list[tuple[str, str]]:
        """(id, label) per active filter, ids naming what :meth:`without` removes."""
        out = [(f"source-{s}", f"source: {s}") for s in sorted(self.sources)]
        out += [(f"kind-{k.replace('.', '_')}", f"kind: {k}") for k in sorted(self.kinds)]
        if self.entity:
            out.append(("entity", f"entity: {one_line(self.entity)}"))
        if self.start is not None:
            out.append(("start", f"from {iso_ns(self.start)}"))
        if self.end is not None:
            out.append(("end", f"to {iso_ns(self.end)}"))
        if self.text:
            out.append(("text", f"text: {one_line(self.text)}"))
        return out

    def without(self, chip: str) -> Filters:
        if chip.startswith("source-"):
            return replace(self, sources=self.sources - {chip[7:]})
        if chip.startswith("kind-"):
            name = chip[5:].replace("_", ".")
            return replace(self, kinds=frozenset(k for k in self.kinds if k != name))
        if chip == "entity":
            return replace(self, entity=None)
        if chip == "start":
            return replace(self, start=None)
        if chip == "end":
            return replace(self, end=None)
        if chip == "text":
            return replace(self, text=None)
        return self

    def toggle_source(self, source: str) -> Filters:
        return replace(self, sources=self.sources ^ {source})

    @property
    def active(self) -> bool:
        return bool(self.chips())
