"""Compact, key-sorted JSON as UTF-8 bytes, with one encoder built once.

``json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))``
builds a new encoder on every call; a capture writes two records per file, so
that set-up alone was a measurable share of its time (docs/performance.md).
The output is byte-for-byte what that call gives.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_c_make = getattr(json.encoder, "c_make_encoder", None)
#: the C encoder json.dumps would build per call: (markers, default, encoder,
#: indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan)
_iterencode: Callable[[Any, int], Any] | None = (
    _c_make(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )
    if _c_make is not None
    else None
)
#: JSON string literal of a str (quotes included, non-ASCII kept)
quote: Callable[[str], str] = json.encoder.encode_basestring


def dumps(obj: Any) -> bytes:
    """``obj`` as compact JSON with sorted keys, UTF-8 encoded.

    No circular-reference check: records are trees built by this program.
    """
    if _iterencode is not None:
        return "".join(_iterencode(obj, 0)).encode()
    return _ENCODER.encode(obj).encode()
