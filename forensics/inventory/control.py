"""Deb822 / RFC 822-style paragraphs (dpkg status, status.d entries, os-release).

Untrusted text: lines are parsed leniently (a line that is not "Field: value"
nor a continuation is ignored) and the number of paragraphs is capped.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_PARAGRAPHS = 200_000


def paragraphs(text: str) -> Iterator[dict[str, str]]:
    """Each paragraph as {field: value}; continuation lines joined with newlines."""
    para: dict[str, str] = {}
    last: str | None = None
    count = 0
    for line in text.splitlines():
        if not line.strip():
            if para:
                yield para
                count += 1
                if count >= MAX_PARAGRAPHS:
                    return
            para, last = {}, None
            continue
        if line[0] in " \t":
            if last is not None:
                para[last] += "\n" + line[1:]
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or " " in key.strip():
            last = None
            continue
        last = key.strip()
        para[last] = value.strip()
    if para:
        yield para


def os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5), shell quoting removed."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[key.strip()] = value
    return out
