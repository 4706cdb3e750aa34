"""Package URLs (purl-spec), built without a dependency; tests check them against
packageurl-python's own rendering."""

from __future__ import annotations

from urllib.parse import quote as _quote

_LOWER_NAME = frozenset({"pypi", "github", "bitbucket", "gitlab", "composer"})


def _q(s: str) -> str:
    return _quote(s.encode("utf-8"), safe="").replace("%3A", ":")


def purl(
    ptype: str,
    name: str,
    version: str | None = None,
    namespace: str | None = None,
    qualifiers: dict[str, str | None] | None = None,
) -> str:
    """``pkg:type/namespace/name@version?qualifiers`` with the spec's encoding."""
    ptype = ptype.lower()
    if ptype in _LOWER_NAME:
        name = name.lower()
        namespace = namespace.lower() if namespace else namespace
    if ptype == "pypi":
        name = name.replace("_", "-")
    out = f"pkg:{ptype}/"
    if namespace:
        out += "/".join(_q(seg) for seg in namespace.strip("/").split("/") if seg) + "/"
    out += _q(name)
    if version:
        out += "@" + _q(version)
    quals = {k.lower(): v for k, v in (qualifiers or {}).items() if v}
    if quals:
        out += "?" + "&".join(f"{k}={_q(str(v))}" for k, v in sorted(quals.items()))
    return out


def split_path(path: str) -> tuple[str | None, str]:
    """A Go module or npm-like path split into (namespace, name) at its last '/'."""
    ns, _, name = path.rstrip("/").rpartition("/")
    return (ns or None), name
