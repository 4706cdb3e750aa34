"""License strings from package metadata, sorted into SPDX identifiers and the rest.

Metadata says "MIT", "Apache-2.0 OR MIT", but also "MIT License", "GPL-2+" or
free text. An SBOM may only carry SPDX identifiers and expressions of them where
it says so, so each string is checked against the identifiers known here (the
common ones, plus a few usual aliases); anything else stays a plain name.
"""

from __future__ import annotations

import re

KNOWN_IDS = frozenset(
    """
    0BSD AFL-2.1 AFL-3.0 AGPL-3.0-only AGPL-3.0-or-later Apache-1.1 Apache-2.0
    Artistic-1.0 Artistic-1.0-Perl Artistic-2.0 BSD-1-Clause BSD-2-Clause
    BSD-2-Clause-Patent BSD-3-Clause BSD-3-Clause-Clear BSD-4-Clause BSL-1.0
    CC-BY-3.0 CC-BY-4.0 CC-BY-SA-3.0 CC-BY-SA-4.0 CC0-1.0 CDDL-1.0 CDDL-1.1 CPL-1.0
    curl EPL-1.0 EPL-2.0 EUPL-1.1 EUPL-1.2 FTL GFDL-1.2-only GFDL-1.2-or-later
    GFDL-1.3-only GFDL-1.3-or-later GPL-1.0-only GPL-1.0-or-later GPL-2.0-only
    GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND ICU IJG ISC LGPL-2.0-only
    LGPL-2.0-or-later LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only
    LGPL-3.0-or-later Libpng libtiff MIT MIT-0 MPL-1.1 MPL-2.0 MS-PL MS-RL NCSA
    OpenSSL OFL-1.1 PHP-3.01 PostgreSQL PSF-2.0 Python-2.0 Ruby Sleepycat
    Unicode-3.0 Unicode-DFS-2016 Unlicense UPL-1.0 Vim W3C WTFPL X11 Zlib ZPL-2.1
    bzip2-1.0.6
    """.split()  # noqa: SIM905 - a word list reads best as words
)
KNOWN_EXCEPTIONS = frozenset(
    """
    Classpath-exception-2.0 GCC-exception-3.1 LLVM-exception OpenSSL-exception
    Autoconf-exception-3.0 Bison-exception-2.2 Font-exception-2.0
    """.split()  # noqa: SIM905 - a word list reads best as words
)
ALIASES = {
    "mit license": "MIT",
    "the mit license": "MIT",
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache 2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "bsd-3": "BSD-3-Clause",
    "isc license": "ISC",
    "isc license (iscl)": "ISC",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "python software foundation license": "PSF-2.0",
    "gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
}
_CASE = {i.lower(): i for i in KNOWN_IDS}
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def canonical_id(text: str) -> str | None:
    """The SPDX identifier ``text`` stands for, or None."""
    t = text.strip()
    return _CASE.get(t.lower()) or ALIASES.get(t.lower())


def expression(text: str) -> str | None:
    """``text`` as a valid SPDX expression of known identifiers, or None.

    A single identifier comes back canonical; a compound one as written, when
    every identifier and exception in it is known and it is well formed.
    """
    single = canonical_id(text)
    if single is not None:
        return single
    tokens = _TOKEN.findall(text)
    if not tokens:
        return None
    out: list[str] = []
    depth = 0
    expect_id = True
    after_with = False
    for tok in tokens:
        up = tok.upper()
        if tok == "(":
            if not expect_id:
                return None
            depth += 1
            out.append(tok)
        elif tok == ")":
            depth -= 1
            if depth < 0 or expect_id:
                return None
            out.append(tok)
        elif up in ("AND", "OR", "WITH"):
            if expect_id:
                return None
            after_with = up == "WITH"
            expect_id = True
            out.append(up)
        else:
            if not expect_id:
                return None
            if after_with:
                if tok not in KNOWN_EXCEPTIONS:
                    return None
                out.append(tok)
            else:
                plus = tok.endswith("+")
                lid = _CASE.get(tok.rstrip("+").lower())
                if lid is None:
                    return None
                out.append(lid + ("+" if plus else ""))
            after_with = False
            expect_id = False
    if depth != 0 or expect_id:
        return None
    return " ".join(out).replace("( ", "(").replace(" )", ")")


def is_compound(expr: str) -> bool:
    return " " in expr
