"""Safe HTML pieces for the report: every string from a bundle goes through :func:`esc`.

The page is one self-contained file: inline CSS, inline SVG, no scripts, no
external resources, and a Content-Security-Policy that forbids fetching
anything, so even a mistake could not make a reader's browser reach out.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from forensics.textsafe import printable

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bg2:#f6f8fa;
  --crit:#8b0000; --high:#c0392b; --med:#b9770e; --low:#2e6da4; --info:#57606a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; border-bottom: 2px solid var(--line); padding-bottom: 4px;
  margin-top: 32px; page-break-after: avoid; }
h3 { font-size: 15px; margin: 0; }
.sub { color: var(--muted); margin: 0 0 16px; }
code, .mono, td.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace;
  font-size: 12.5px; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px;
  border-bottom: 1px solid var(--line); }
th { background: var(--bg2); font-weight: 600; }
table.kv th { width: 220px; }
.badge { display: inline-block; min-width: 72px; text-align: center; color: #fff;
  border-radius: 3px; padding: 1px 6px; font-size: 12px; font-weight: 700;
  text-transform: uppercase; }
.critical { background: var(--crit); } .high { background: var(--high); }
.medium { background: var(--med); } .low { background: var(--low); }
.info { background: var(--info); }
.ok { color: #1a7f37; font-weight: 700; } .bad { color: var(--high); font-weight: 700; }
.warn { color: var(--med); font-weight: 700; }
.banner { border: 2px solid var(--med); background: #fff8e6; padding: 8px 12px; margin: 12px 0; }
.banner.failed { border-color: var(--high); background: #fdecea; }
.finding { border: 1px solid var(--line); border-left: 6px solid var(--line);
  padding: 8px 12px; margin: 10px 0; page-break-inside: avoid; }
.finding.sev-critical { border-left-color: var(--crit); }
.finding.sev-high { border-left-color: var(--high); }
.finding.sev-medium { border-left-color: var(--med); }
.finding.sev-low { border-left-color: var(--low); }
.finding p { margin: 6px 0; }
.finding .meta { color: var(--muted); font-size: 12px; }
ul.tree, ul.tree ul { list-style: none; padding-left: 18px; margin: 0; }
ul.tree li { margin: 2px 0; }
ul.tree > li { padding-left: 0; }
.flag { color: var(--high); font-weight: 700; }
figure { margin: 8px 0; } figcaption { color: var(--muted); font-size: 12px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
  padding-top: 8px; }
@media print { body { max-width: none; padding: 0; } a { color: inherit; } }
"""


def esc(value: Any) -> str:
    """Text from a bundle as HTML: control and bidirectional characters made visible
    (``\\x1b``, ``\\u202e``), lone surrogates as ``\\udcxx``, then HTML-escaped
    (``& < > " '``), so no string can become markup, reorder a line or hide."""
    if value is None:
        return "—"
    text = value if isinstance(value, str) else str(value)
    text = printable(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text, quote=True)


def tag(name: str, body: str, cls: str | None = None, **attrs: str) -> str:
    """An element; ``body`` is HTML already (escape text with :func:`esc`)."""
    a = f' class="{esc(cls)}"' if cls else ""
    a += "".join(f' {k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    return f"<{name}{a}>{body}</{name}>"


def kv_table(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table; labels are ours (escaped anyway), values are HTML."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def table(head: list[str], rows: Iterable[list[str]], cls: str | None = None) -> str:
    """A table: ``head`` labels are ours; cells are HTML."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    c = f' class="{esc(cls)}"' if cls else ""
    return f"<table{c}><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


__all__ = ["CSP", "esc", "kv_table", "page", "table", "tag"]
