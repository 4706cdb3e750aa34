"""exuvia's evidence model: bundle format, hashing, custody, timeline.

Nothing in this package touches a live system, and it never imports textual,
tui or collectors.
"""

from __future__ import annotations

__version__ = "0.1.0"
