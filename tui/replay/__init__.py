"""The replay app: `exuvia replay BUNDLE` (see docs/replay.md)."""
